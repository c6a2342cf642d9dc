"""Data preparation: load text (files: recipes/data/files.py; a Hub dataset) and hold out
validation; tokenizing and packing are recipes/data/packing.py.

Everything goes through `datasets`, so local files are tokenized once and cached (the
fingerprint covers the files, the tokenizer and the block size: change any and it re-runs),
and a Hub dataset can be streamed instead of downloaded.
"""

import itertools
import random
from collections import Counter
from pathlib import Path

from datasets import (
    Dataset,
    DatasetDict,
    IterableDataset,
    concatenate_datasets,
    load_dataset,
)

from recipes.data.files import (
    BUILDERS,
    check_json_lines,
    check_utf8,
    data_suffix,
    describe_readings,
    has_blank_line,
    open_bytes,
    resolve_data_files,
    text_readings,
)
from recipes.data.packing import CodeVersioned
from recipes.errors import UserError

# Persian web text that loads with datasets >= 4 (parquet, no loading script).
PERSIAN_ALTERNATIVE = "dataset_name: HuggingFaceFW/fineweb-2, dataset_config_name: pes_Arab"


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
    """(rest, held out): the rule every recipe holds `size` rows (passages, documents, labelled
    examples) out of its training data by, when no held-out data is named. (BERT can hold out
    the end of every document instead: recipes/data/nsp.py `hold_out_document_ends`.)

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
    with open_bytes(path) as fh:
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
