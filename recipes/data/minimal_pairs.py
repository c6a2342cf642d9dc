"""Minimal pairs: a file of sentence pairs that differ in one point of grammar, the good one
first. BLiMP's format (Warstadt et al. 2020), JSON Lines, one pair per line:

    {"sentence_good": "The cats sleep.", "sentence_bad": "The cats sleeps.", "UID": "agreement"}

`sentence_good` and `sentence_bad` are required, non-empty strings. Any of GROUP_FIELDS that
the file's first pair has (BLiMP's `field`, `linguistics_term`, `UID`) groups the accuracy,
and then every pair must have it. Other keys (BLiMP's `pairID`, ...) are ignored.
"""

from dataclasses import dataclass, field
from pathlib import Path

from recipes.data.files import json_objects
from recipes.errors import UserError

REQUIRED = ("sentence_good", "sentence_bad")
# BLiMP's grouping, coarsest first: field (morphology, syntax, ...), linguistics_term
# (phenomenon), UID (paradigm); `phenomenon` is what a hand-written file may call its groups.
GROUP_FIELDS = ("field", "linguistics_term", "UID", "phenomenon")

EXAMPLE = '{"sentence_good": "The cats sleep.", "sentence_bad": "The cats sleeps."}'


@dataclass
class MinimalPairs:
    path: str
    good: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)  # group field -> value per pair

    def __len__(self) -> int:
        return len(self.good)


def load_minimal_pairs(path: str, option: str = "--minimal_pairs") -> MinimalPairs:
    """The pairs in `path`, checked line by line: a bad line stops with its file, line number,
    what is wrong and the fix (`option`: the setting that named the file)."""
    where = f"`{option}`: {path}"
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"{where} is not a file: give a .jsonl file of minimal pairs, one per line."
        )
    pairs = MinimalPairs(str(path))
    with file.open(encoding="utf-8-sig") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as err:
            raise UserError(f"{where} is not UTF-8 ({err.reason}): convert it.") from None
    for lineno, row in json_objects(lines, where, EXAMPLE):
        if not pairs.good:  # the first pair decides which groups the file has
            pairs.groups = {name: [] for name in GROUP_FIELDS if name in row}
        for name in REQUIRED:
            value = row.get(name)
            if not isinstance(value, str) or not value.strip():
                what = "has no" if name not in row else "has an empty or non-string"
                raise UserError(
                    f"{where} line {lineno} {what} `{name}`: every line needs both "
                    f"`sentence_good` and `sentence_bad`, e.g. {EXAMPLE}."
                )
        for name, values in pairs.groups.items():
            if name not in row:
                raise UserError(
                    f"{where} line {lineno} has no `{name}`, which the first pair has: give every "
                    f"pair a `{name}` (it groups the accuracy), or drop it from the first."
                )
            values.append(str(row[name]))
        pairs.good.append(row["sentence_good"])
        pairs.bad.append(row["sentence_bad"])
    if not pairs.good:
        raise UserError(f"{where} holds no pairs: write one JSON object per line, e.g. {EXAMPLE}.")
    return pairs
