"""Data preparation: load text, hold out validation, tokenize and pack into training blocks.

Everything goes through `datasets`, so local files are tokenized once and cached (the
fingerprint covers the files, the tokenizer and the block size: change any and it re-runs),
and a Hub dataset can be streamed instead of downloaded.
"""

import bz2
import codecs
import glob
import gzip
import itertools
import json
import lzma
import os
import random
import sys
from collections import Counter
from pathlib import Path
from types import FunctionType

import numpy as np
from datasets import (
    Dataset,
    DatasetDict,
    IterableDataset,
    concatenate_datasets,
    load_dataset,
)

from recipes.errors import UserError


class CodeVersioned:
    """A `Dataset.map` function whose cache key covers the code it runs.

    datasets fingerprints a map by hashing its function with dill, and dill pickles a function
    that can be imported (any module-level one) by reference, module and name: edit
    `pack_texts` and the next run silently reuses the cache the old code built. This wrapper
    carries the bytecode of every function in the module, helpers included, into that hash;
    comments and blank lines do not change bytecode, so they leave the cache alone.
    """

    def __init__(self, fn):
        self.fn = fn
        module = sys.modules[fn.__module__]
        self.code = [
            obj.__code__
            for _, obj in sorted(vars(module).items())
            if isinstance(obj, FunctionType) and obj.__module__ == module.__name__
        ]

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


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

# Persian web text that loads with datasets >= 4 (parquet, no loading script).
PERSIAN_ALTERNATIVE = "dataset_name: HuggingFaceFW/fineweb-2, dataset_config_name: pes_Arab"

# How a text file becomes examples (`text_sample_by`); "auto" picks one of these per file.
READINGS = {
    "paragraph": "blank-line paragraphs",
    "line": "one passage per line",
    "document": "one example per file",
}
# Under universal newlines (how datasets reads text), each of these is an empty line.
_EMPTY_LINE = (b"\n\n", b"\n\r\n", b"\r\r")


def data_suffix(path) -> str:
    """The suffix that names the format: `.txt` for `a.txt` and for `a.txt.gz`."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _open_bytes(path):
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
        with _open_bytes(path) as fh:
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
            with _open_bytes(path) as fh:
                try:
                    json.load(fh)
                    continue
                except ValueError:
                    pass  # not one JSON document: read it as JSON Lines
        with _open_bytes(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as err:
                    reason = f"{err.msg} at column {err.colno}" if hasattr(err, "colno") else err
                    raise UserError(
                        f"`{field}`: {path} line {lineno} is not valid JSON ({reason}). Each "
                        'line of a .jsonl file is one JSON object, e.g. {"text": "...", '
                        '"label": "..."}: fix or delete that line.'
                    ) from None
                if not isinstance(row, dict):
                    raise UserError(
                        f"`{field}`: {path} line {lineno} is a JSON {type(row).__name__}, not an "
                        'object. Each line of a .jsonl file is one JSON object, e.g. {"text": '
                        '"...", "label": "..."}: fix or delete that line.'
                    )


def has_blank_line(path) -> bool:
    """Whether an empty line stands between two lines of text: where datasets'
    `sample_by="paragraph"` splits (LF, CRLF or CR line ends). Empty lines at the start or the
    end of a file do not count. Reads 1 MB at a time and stops at the first."""
    tail, seen_text, blank_seen = b"", False, False
    with _open_bytes(path) as fh:
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


def load_raw_datasets(args, split_validation: bool = True, documents: bool = False) -> dict:
    """Load {"train": ..., "validation": ...} with one column, "text".

    `args` is a DataSourceArguments (or subclass). Validation comes from validation_files, the
    dataset's own validation split, or is held out of train (`split_validation`). `documents`
    (the BERT recipe): examples are documents, and `text_sample_by: auto` reads text files in
    BERT's format, where a blank line or the end of a file ends a document.
    """
    readings = {}
    if args.train_files:
        data_files = resolve_data_files(args)
        builder = BUILDERS[data_suffix(data_files["train"][0])]
        skip = builder == "text" and args.on_decode_error == "skip"
        if builder != "parquet" and not skip:  # .json/.csv cannot skip lines: always check them
            for split, files in data_files.items():
                check_utf8(files, f"{split}_files", can_skip=builder == "text")
        if builder == "text":
            readings = {
                split: text_readings(files, args.text_sample_by, documents)
                for split, files in data_files.items()
            }
            if args.text_sample_by == "auto":
                print(
                    describe_readings(readings["train"] | readings.get("validation", {}), documents)
                )
            raw = {
                split: _load_text_files(by_file, args.streaming, skip)
                for split, by_file in readings.items()
            }
        else:
            try:
                raw = load_dataset(builder, data_files=data_files, streaming=args.streaming)
            except Exception:
                # the json loader names neither file nor line: find them (read only on failure)
                if builder == "json":
                    for split, files in data_files.items():
                        check_json_lines(files, f"{split}_files")
                raise
    else:
        raw = load_hub_dataset(args)

    where = {
        split: f"`{split}_files` ({', '.join(map(str, files))})"
        for split, files in (data_files.items() if args.train_files else [])
    }
    raw = {
        split: _text_only(
            ds, args.text_column, where.get(split, f"`dataset_name: {args.dataset_name}` ({split})")
        )
        for split, ds in raw.items()
    }
    if args.train_files and args.on_decode_error == "skip":
        raw = {split: _drop_undecodable(ds, split) for split, ds in raw.items()}
    if "validation" not in raw and split_validation:
        size = _validation_size(raw["train"], args, readings.get("train"), documents)
        raw["train"], raw["validation"] = hold_out(raw["train"], size)
    return {k: raw[k] for k in ("train", "validation") if k in raw}


def _load_text_files(readings: dict[str, str], streaming: bool, skip_undecodable: bool):
    """Text files, each read as `readings` says: one `datasets` text loader per run of files
    read alike, concatenated in file order (most corpora are one run)."""
    # utf-8-sig: a byte-order mark (Windows editors write one) is dropped, not read as text
    kwargs = {"encoding": "utf-8-sig", "streaming": streaming, "split": "train"}
    if skip_undecodable:
        kwargs["encoding_errors"] = "replace"  # then dropped by _drop_undecodable, with a count
    parts = [
        load_dataset("text", data_files=[f for f, _ in run], sample_by=reading, **kwargs)
        for reading, run in itertools.groupby(readings.items(), key=lambda item: item[1])
    ]
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def load_hub_dataset(args) -> DatasetDict:
    """`load_dataset(dataset_name, dataset_config_name)`; a failure is a UserError that says why
    (a script-based dataset: which parquet one to use instead)."""
    try:
        return load_dataset(args.dataset_name, args.dataset_config_name, streaming=args.streaming)
    except Exception as err:  # datasets raises several types; the message is what matters
        text = str(err)
        if "scripts are no longer supported" in text or "trust_remote_code" in text:
            hint = ""
            if "oscar" in args.dataset_name.lower():
                hint = f" For Persian web text as in the tutorial use `{PERSIAN_ALTERNATIVE}`."
            raise UserError(
                f"`dataset_name: {args.dataset_name}` is a script-based dataset, which datasets "
                f">= 4 no longer loads. Pick a parquet-hosted dataset.{hint}"
            ) from None
        raise UserError(
            f"could not load `dataset_name: {args.dataset_name}` "
            f"(config {args.dataset_config_name}): {text}"
        ) from None


def _text_only(ds, column: str, where: str):
    columns = ds.column_names
    if columns is not None and column not in columns:
        features = ds.features or {}
        texts = [
            c
            for c in columns
            if getattr(features.get(c), "dtype", None) in ("string", "large_string")
        ]
        if len(texts) == 1:
            fix = f"set `text_column: {texts[0]}`"
        elif texts:
            fix = f"set `text_column` to one of {', '.join(texts)}"
        else:
            fix = "it has no text column; give it one"
        raise UserError(
            f"`text_column: {column}` is not a column of {where}; its columns are "
            f"{', '.join(columns)}: {fix}."
        )
    if columns is not None and columns != [column]:
        ds = ds.select_columns([column])
    if column != "text":
        ds = ds.rename_column(column, "text")
    return ds


def _drop_lines_with_replacements(batch):
    texts, dropped = [], []
    for text in batch["text"]:
        lines = text.split("\n")
        kept = [line for line in lines if "\ufffd" not in line]
        texts.append("\n".join(kept) if len(kept) < len(lines) else text)
        dropped.append(len(lines) - len(kept))
    return {"text": texts, "dropped_lines": dropped}


def _drop_undecodable(ds, split: str):
    # `encoding_errors="replace"` turned bad bytes into U+FFFD: drop those lines (not the
    # whole paragraph or document around them) and say how many.
    ds = ds.map(CodeVersioned(_drop_lines_with_replacements), batched=True)
    if isinstance(ds, Dataset):  # a stream cannot be counted ahead
        n = sum(ds["dropped_lines"])
        if n:
            print(f"on_decode_error=skip: dropped {n} undecodable line(s) from the {split} data")
    ds = ds.remove_columns("dropped_lines")
    return ds.filter(lambda batch: [bool(t.strip()) for t in batch["text"]], batched=True)


# ---- Holding data out ----------------------------------------------------------------------
def hold_out(train, size: int, seed: int | None = None, group_column: str | None = None):
    """(rest, held out): the one rule every recipe holds `size` examples out of its training
    data by, when no held-out data is named.

    - a stream (no len()): its first `size` examples;
    - no `seed` (pretraining text): the first `size` rows, as run_mlm.py's `train[:5%]`:
      contiguous text, so the held-out passages are not interleaved with training passages
      from the same scene;
    - a `seed` (labelled rows, often sorted by label): `size` rows drawn at random;
    - and a `group_column` (the rows' "group" column holds it): whole groups until they hold
      at least `size` rows, taken in turn from each label's groups (a group's label: its most
      frequent "label"), so the held-out labels stay balanced and no group is on both sides.
    """
    if isinstance(train, IterableDataset):
        return train.skip(size), train.take(size)
    if seed is None:
        return train.select(range(size, len(train))), train.select(range(size))
    if not group_column:
        held = train.train_test_split(test_size=size, seed=seed)
        return held["train"], held["test"]
    groups, labels = train["group"], train["label"]
    members = {}
    for group, label in zip(groups, labels):
        members.setdefault(group, Counter())[label] += 1
    by_label = {}
    rng = random.Random(seed)
    for group in rng.sample(sorted(members, key=str), len(members)):
        by_label.setdefault(members[group].most_common(1)[0][0], []).append(group)
    turns = [g for row in itertools.zip_longest(*by_label.values()) for g in row if g is not None]
    chosen, taken = set(), 0
    for group in turns:
        if taken >= size:
            break
        chosen.add(group)
        taken += members[group].total()
    if len(chosen) == len(members):
        raise UserError(
            f"`group_column: {group_column}`: the training data has only {len(members)} "
            "group(s), too few to hold whole ones out; name `validation_files` and `test_files`."
        )
    held = [i for i, g in enumerate(groups) if g in chosen]
    rest = [i for i, g in enumerate(groups) if g not in chosen]
    return train.select(rest), train.select(held)


def _validation_size(train, args, readings: dict[str, str] | None, documents: bool) -> int:
    """How many examples pretraining holds out: `streaming_validation_examples` of a stream,
    else `validation_split_percentage`% of the examples, at least one (NSP: two documents, as
    it draws a random B from another document, on each side)."""
    if isinstance(train, IterableDataset):
        return args.streaming_validation_examples
    least = 4 if documents else 2
    if len(train) < least:
        raise UserError(
            f"the training data has {len(train)} {'document' if documents else 'example'}(s), "
            f"too few to hold out a validation split: "
            f"{_too_few_examples_fix(args, readings, documents, len(train))}."
        )
    return max(least // 2, int(len(train) * args.validation_split_percentage / 100))


def _too_few_examples_fix(args, readings: dict | None, documents: bool, n: int) -> str:
    """A fix that works for this data and this recipe (tested: tests/e2e/test_bad_input.py)."""
    if documents and n >= 2:  # enough to pair, too few to hold two out whole
        return "hold out the end of every document instead: `validation_holdout: document_ends`"
    add = "add text" + (" (NSP needs two documents or more)" if documents else "")
    if not args.validation_files and not documents:  # NSP would still need two to train on
        add += " or set `validation_files`"
    if not readings or len(readings) != 1:  # rows of .jsonl/.parquet/.csv, or a Hub dataset
        return add
    ((path, reading),) = readings.items()
    has_blank = has_blank_line(path)
    with _open_bytes(path) as fh:
        n_lines = sum(1 for line in fh if line.strip())
    if documents:  # a blank line ends a document (auto, paragraph), or one per line, or file
        if has_blank and reading == "document":
            return (
                f"{Path(path).name} has blank lines: set `text_sample_by: auto` to make them "
                "end documents (BERT's format)"
            )
        if n_lines > 1 and reading != "line":
            return (
                f"{Path(path).name} is one document: put a blank line between documents "
                "(BERT's format: one sentence per line), or set `text_sample_by: line` if each "
                "line is a document"
            )
        return add
    if n_lines > 1 and reading != "line":  # auto reads lines here, or blank-line paragraphs
        return f"{Path(path).name} has {n_lines} lines: set `text_sample_by: auto` (or `line`)"
    return add


def text_batches(ds, batch_size: int = 1000, limit: int | None = None):
    """Yield lists of non-empty texts from a (streaming or not) dataset: a tokenizer trainer's
    iterator, so no text is dumped into intermediate files first."""
    batch, seen = [], 0
    for example in ds:
        text = example["text"]
        if not text or text.isspace():
            continue
        batch.append(text)
        seen += 1
        if len(batch) == batch_size:
            yield batch
            batch = []
        if limit is not None and seen >= limit:
            break
    if batch:
        yield batch


def pack_texts(batch, tokenizer, block_size: int, special_ids: list[int]):
    """Tokenize a batch of texts and cut the concatenation into full blocks of block_size.

    Each non-blank text becomes `<s> text </s>` (the tokenizer's own specials), texts are
    concatenated and chunked; the tail shorter than a block is dropped (at most one block per
    map batch of 1000 texts). No padding anywhere, so every position the model computes is
    real text. A text longer than the model's positions is fine here (it is cut into blocks),
    so nothing warns about it.
    """
    texts = [t for t in batch["text"] if t and not t.isspace()]  # no `<s> </s>` for nothing
    ids = np.fromiter(
        (i for seq in _token_ids(tokenizer, texts) for i in seq), dtype=np.int32
    )  # one flat array: numpy slicing beats Python list concatenation by ~10x
    n_blocks = len(ids) // block_size
    blocks = ids[: n_blocks * block_size].reshape(n_blocks, block_size)
    special = np.isin(blocks, special_ids).astype(np.int8)
    # numpy arrays go into Arrow as they are; .tolist() would box every id as a Python int
    return {"input_ids": blocks, "special_tokens_mask": special}


def _token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """`tokenizer(texts)["input_ids"]`, from the `tokenizers` backend's encode_batch_fast,
    which skips the character offsets packing never uses: ~20% less CPU time per batch. Texts
    longer than `model_max_length` are expected (packing cuts them into blocks): no warning."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a Python tokenizer has no backend
        kwargs = dict(add_special_tokens=True, return_attention_mask=False, verbose=False)
        return tokenizer(texts, **kwargs)["input_ids"]
    # What tokenizer(texts) sets first: an earlier call that truncated or padded leaves it on.
    if backend.truncation is not None:
        backend.no_truncation()
    if backend.padding is not None:
        backend.no_padding()
    backend.encode_special_tokens = tokenizer.split_special_tokens
    return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=True)]


def tokenize_lines(batch, tokenizer, max_seq_length: int):
    """The tutorial's way: one example per non-empty text, truncated, padded later."""
    texts = [t for t in batch["text"] if t and not t.isspace()]
    return tokenizer(
        texts,
        truncation=True,
        max_length=max_seq_length,
        return_special_tokens_mask=True,
        return_attention_mask=False,
    )


# Text below which one process tokenizes faster than a pool: it already encodes on every core
# (the tokenizers library's own threads) and starting workers costs ~1-3 s (2 cores, measured).
PARALLEL_TOKENIZING_BYTES = 16 << 20


def _default_num_proc(ds: Dataset) -> int | None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text_bytes = ds.data.nbytes * len(ds) / max(ds.data.num_rows, 1)  # this split's share
    return cores if cores > 1 and text_bytes >= PARALLEL_TOKENIZING_BYTES else None


def tokenize_datasets(raw: dict, tokenizer, args, num_proc: int | None) -> dict:
    """Tokenize every split: packed blocks (default) or one padded example per line.
    `num_proc=None`: one worker per core for 16 MB of text or more, else this process."""
    out = {}
    for split, ds in raw.items():
        if args.line_by_line:
            fn, fn_kwargs = tokenize_lines, {"max_seq_length": args.max_seq_length}
        else:
            fn, fn_kwargs = (
                pack_texts,
                {
                    "block_size": args.max_seq_length,
                    "special_ids": sorted(set(tokenizer.all_special_ids)),
                },
            )
        fn_kwargs["tokenizer"] = tokenizer
        map_kwargs = dict(batched=True, batch_size=1000, remove_columns=["text"])
        if isinstance(ds, Dataset):
            workers = _default_num_proc(ds) if num_proc is None else num_proc
            map_kwargs.update(num_proc=workers, desc=f"Tokenizing {split}")
        out[split] = ds.map(CodeVersioned(fn), fn_kwargs=fn_kwargs, **map_kwargs)
    return out


def check_enough_data(tokenized: dict, raw: dict, tokenizer, args) -> None:
    """A corpus smaller than one block yields zero examples: say so instead of a cryptic error.
    A stream is read only up to its first block (at most one map batch is tokenized)."""
    for split, ds in tokenized.items():
        if len(ds) > 0 if isinstance(ds, Dataset) else next(iter(ds), None) is not None:
            continue
        # the split is smaller than one block here, so counting its tokens is quick
        texts = [e["text"] for e in raw[split]]
        n_tokens = sum(map(len, _token_ids(tokenizer, [t for t in texts if t.strip()])))
        # Each fix named here gets past this check (tests/e2e/test_bad_input.py runs them).
        fixes = ["add text"]
        if n_tokens >= 8:  # DataArguments' smallest max_seq_length
            fixes.append(f"lower `max_seq_length` to {n_tokens} or less")
        if n_tokens and not args.line_by_line:
            fixes.append("set `line_by_line: true` (one padded example per line)")
        hint = ""
        if args.streaming and split == "train" and not args.validation_files:
            held_out = sum(1 for _ in raw["validation"])
            if held_out < args.streaming_validation_examples:  # the stream ran out
                hint = (
                    f" With streaming the first {args.streaming_validation_examples} examples "
                    f"are held out for validation and the data has only {held_out}: lower "
                    f"`streaming_validation_examples` well below {held_out}, or set "
                    "`validation_files`."
                )
        raise UserError(
            f"the {split} data has {n_tokens} tokens, fewer than one training block of "
            f"max_seq_length={args.max_seq_length}: {', or '.join(fixes)}.{hint}"
        )
