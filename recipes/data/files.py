"""Finding and checking data files: globs and folders, formats by suffix (compressed too), text
that is not UTF-8, malformed JSON lines, and how each text file is read (by line or paragraph).
"""

import bz2
import codecs
import glob
import gzip
import json
import lzma
import os
from pathlib import Path

from recipes.errors import UserError

# File extension -> the `datasets` builder that reads it.
BUILDERS = {
    ".txt": "text",
    ".text": "text",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
# Compressed files (`corpus.txt.gz`): datasets decompresses them as it reads, and so do we.
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
# Under universal newlines (how datasets reads text), each of these is an empty line.
_EMPTY_LINE = (b"\n\n", b"\n\r\n", b"\r\r")


def data_suffix(path) -> str:
    """The suffix that names the format: `.txt` for `a.txt` and for `a.txt.gz`."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def open_bytes(path):
    return COMPRESSIONS.get(Path(path).suffix.lower(), open)(path, "rb")


def resolve_files(patterns: list[str], field: str) -> list[str]:
    """Expand globs and folders (every file below a folder, hidden ones aside); every pattern
    must match at least one non-empty file, and all files must be of one type."""
    files = []
    for pattern in patterns:
        path = os.path.expanduser(pattern)
        if os.path.isdir(path):
            matches = sorted(
                str(p)
                for p in Path(path).rglob("*")
                if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts)
            )
        else:
            matches = sorted(m for m in glob.glob(path, recursive=True) if os.path.isfile(m))
        if not matches:
            hint = ""
            hidden = (
                [p for p in Path(path).rglob("*") if p.is_file()] if os.path.isdir(path) else []
            )
            if hidden:  # a folder of dotfiles only: say why they were not taken
                hint = (
                    f" Hidden files (a name, or a folder's, starting with '.') are skipped: "
                    f"{len(hidden)} here, e.g. {hidden[0]}; rename them to train on them."
                )
            if pattern.startswith("data/shakespeare"):  # the shipped configs' corpus
                hint = " Run `make data` to fetch the default corpus."
            raise UserError(f"`{field}`: {pattern} matches no file.{hint}")
        for m in matches:
            if os.path.getsize(m) == 0:
                raise UserError(f"`{field}`: {m} is empty. Remove it from the list or fill it.")
        files += matches
    unknown = [f for f in files if data_suffix(f) not in BUILDERS]
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise UserError(
            f"`{field}`: cannot read {unknown[0]}{more}: use files ending in "
            f"{', '.join(BUILDERS)} (or those + {', '.join(COMPRESSIONS)}), e.g. a glob such as "
            f"`{Path(unknown[0]).parent / '*.txt'}`."
        )
    suffixes = sorted({data_suffix(f) for f in files})
    if len({BUILDERS[s] for s in suffixes}) > 1:
        raise UserError(
            f"`{field}`: mixes file types ({', '.join(suffixes)}); use one, e.g. "
            f"`{Path(files[0]).parent / ('*' + suffixes[0])}`."
        )
    return files


def resolve_data_files(args) -> dict[str, list[str]]:
    """{"train": [...], "validation": [...]} from `train_files` and `validation_files` (and
    "test" from `test_files`, where the arguments have it). A file named by both is held out,
    never trained on: `train_files: ["corpus/*.txt"]` with `validation_files: ["corpus/b.txt"]`
    trains on the others and evaluates on b.txt."""
    data_files = {"train": resolve_files(args.train_files, "train_files")}
    for split in ("validation", "test"):
        named = getattr(args, f"{split}_files", None)
        if not named:
            continue
        held_out = resolve_files(named, f"{split}_files")
        data_files[split] = held_out
        both = {os.path.realpath(f) for f in held_out}
        train = [f for f in data_files["train"] if os.path.realpath(f) not in both]
        if not train:
            raise UserError(
                f"every file of `train_files` is also in `{split}_files`: list other files "
                f"to train on, or leave `{split}_files` out to hold out a share of train_files."
            )
        if len(train) < len(data_files["train"]):
            print(
                f"{len(data_files['train']) - len(train)} file(s) of train_files are held out "
                f"(named in {split}_files), not trained on"
            )
        data_files["train"] = train
    return data_files


def check_utf8(files: list[str], field: str, can_skip: bool) -> None:
    """Stop at the first line of `files` that is not UTF-8, naming the file, line and fix
    (`can_skip`: the field's recipe can drop such lines, `on_decode_error: skip`)."""
    # 1 MB chunks: bounded memory and ~1 GB/s; lines are counted only once a file fails.
    for path in files:
        decoder = codecs.getincrementaldecoder("utf-8")()
        with open_bytes(path) as fh:
            try:
                while chunk := fh.read(1 << 20):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                pass
            else:
                continue
            fh.seek(0)
            for lineno, line in enumerate(fh, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as err:
                    skip = " or set `on_decode_error: skip` to drop undecodable lines" * can_skip
                    raise UserError(
                        f"`{field}`: {path} line {lineno} is not valid UTF-8 ({err.reason} at "
                        f"byte {err.start}). Convert the file (e.g. `iconv -f latin1 -t utf-8`)"
                        f"{skip}."
                    ) from None


def check_json_lines(files: list[str], field: str) -> None:
    """Stop at the first line of a .jsonl file that is not a JSON object, naming the file, the
    line and the fix (the json loader's own error names neither). A .json file that parses
    whole (one array or object) is fine as it is."""
    for path in files:
        if data_suffix(path) == ".json":
            with open_bytes(path) as fh:
                try:
                    json.load(fh)
                    continue
                except ValueError:
                    pass  # not one JSON document: read it as JSON Lines
        with open_bytes(path) as fh:
            for _ in json_objects(fh, f"`{field}`: {path}", '{"text": "...", "label": "..."}'):
                pass


def json_objects(lines, where: str, example: str):
    """(line number, object) for each non-empty line of JSON Lines. The first line that is not
    a JSON object stops with `where` (the setting and file), the line, what is wrong and the
    fix; the json module's own error names neither file nor line."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            reason = f"{err.msg} at column {err.colno}" if hasattr(err, "colno") else err
            raise UserError(
                f"{where} line {lineno} is not valid JSON ({reason}). Each line of a .jsonl "
                f"file is one JSON object, e.g. {example}: fix or delete that line."
            ) from None
        if not isinstance(row, dict):
            raise UserError(
                f"{where} line {lineno} is a JSON {type(row).__name__}, not an object. Each "
                f"line of a .jsonl file is one JSON object, e.g. {example}: fix or delete that "
                "line."
            )
        yield lineno, row


def has_blank_line(path) -> bool:
    """Whether an empty line stands between two lines of text: where datasets'
    `sample_by="paragraph"` splits (LF, CRLF or CR line ends). Empty lines at the start or the
    end of a file do not count. Reads 1 MB at a time and stops at the first."""
    tail, seen_text, blank_seen = b"", False, False
    with open_bytes(path) as fh:
        while chunk := fh.read(1 << 20):
            if blank_seen and chunk.strip():
                return True
            if not seen_text:  # leading empty lines separate nothing
                chunk = chunk.lstrip()
                seen_text = bool(chunk)
            text = tail + chunk
            hits = [i for i in (text.find(e) for e in _EMPTY_LINE) if i >= 0]
            if hits and seen_text:
                if text[min(hits) :].strip():
                    return True
                blank_seen = True
            tail = text[-2:]
    return False


def text_readings(files: list[str], sample_by: str, documents: bool = False) -> dict[str, str]:
    """file -> how it is read: `sample_by`, or with "auto" blank-line paragraphs for a file
    that has blank lines, else one passage per line (`documents`: the whole file, BERT's
    format)."""
    if sample_by != "auto":
        return dict.fromkeys(files, sample_by)
    without_blank_lines = "document" if documents else "line"
    return {f: "paragraph" if has_blank_line(f) else without_blank_lines for f in files}


def describe_readings(readings: dict[str, str], documents: bool = False) -> str:
    """One line: which reading `text_sample_by: auto` chose for which files."""
    names = {
        "paragraph": "documents separated by blank lines (BERT's format)"
        if documents
        else "blank-line paragraphs",
        "line": "one passage per line",
        "document": "one document per file (no blank lines)",
    }
    parts = []
    for reading, name in names.items():
        files = [Path(f).name for f, r in readings.items() if r == reading]
        if files:
            listed = ", ".join(files[:3]) + (
                f" and {len(files) - 3} more" if len(files) > 3 else ""
            )
            parts.append(f"{len(files)} file(s) as {name} ({listed})")
    return f"text_sample_by auto: {'; '.join(parts)}. Set `text_sample_by` to choose."
