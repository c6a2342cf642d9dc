"""Data preparation: load text, hold out validation, tokenize and pack into training blocks.

Everything goes through `datasets`, so local files are tokenized once and cached (the
fingerprint covers the files, the tokenizer and the block size: change any and it re-runs),
and a Hub dataset can be streamed instead of downloaded.
"""

import codecs
import glob
import os
import sys
from pathlib import Path
from types import FunctionType

import numpy as np
from datasets import Dataset, DatasetDict, IterableDataset, load_dataset

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

# Persian web text that loads with datasets >= 4 (parquet, no loading script).
PERSIAN_ALTERNATIVE = "dataset_name: HuggingFaceFW/fineweb-2, dataset_config_name: pes_Arab"


def resolve_files(patterns: list[str], field: str) -> list[str]:
    """Expand globs; every pattern must match at least one non-empty file."""
    files = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            hint = " Run `make data` to fetch the default corpus." if "data/" in pattern else ""
            raise UserError(f"`{field}`: {pattern} matches no file.{hint}")
        for m in matches:
            if os.path.getsize(m) == 0:
                raise UserError(f"`{field}`: {m} is empty. Remove it from the list or fill it.")
        files += matches
    suffixes = {Path(f).suffix.lower() for f in files}
    unknown = suffixes - set(BUILDERS)
    if unknown:
        raise UserError(
            f"`{field}`: cannot read files ending in {', '.join(sorted(unknown))}; "
            f"use {', '.join(BUILDERS)}."
        )
    if len({BUILDERS[s] for s in suffixes}) > 1:
        raise UserError(f"`{field}`: mixes file types ({', '.join(sorted(suffixes))}); use one.")
    return files


def _check_utf8(files: list[str], field: str, can_skip: bool) -> None:
    # 1 MB chunks: bounded memory and ~1 GB/s; lines are counted only once a file fails.
    for path in files:
        decoder = codecs.getincrementaldecoder("utf-8")()
        with open(path, "rb") as fh:
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


def load_raw_datasets(args, split_validation: bool = True) -> dict:
    """Load {"train": ..., "validation": ...} with one column, "text".

    `args` is a DataSourceArguments (or subclass). Validation comes from validation_files, the
    dataset's own validation split, or is held out of train (`split_validation`).
    """
    if args.train_files:
        data_files = {"train": resolve_files(args.train_files, "train_files")}
        if args.validation_files:
            data_files["validation"] = resolve_files(args.validation_files, "validation_files")
        builder = BUILDERS[Path(data_files["train"][0]).suffix.lower()]
        kwargs = {}
        if builder == "text":
            kwargs["sample_by"] = args.text_sample_by
        if builder == "text" and args.on_decode_error == "skip":
            kwargs["encoding_errors"] = "replace"  # then dropped below, with a count
        elif builder != "parquet":  # .json/.csv cannot skip lines: always check them
            for split, files in data_files.items():
                _check_utf8(files, f"{split}_files", can_skip=builder == "text")
        raw = load_dataset(builder, data_files=data_files, streaming=args.streaming, **kwargs)
    else:
        raw = _load_hub_dataset(args)

    raw = {split: _text_only(ds, args.text_column, split) for split, ds in raw.items()}
    if args.train_files and args.on_decode_error == "skip":
        raw = {split: _drop_undecodable(ds, split) for split, ds in raw.items()}
    if "validation" not in raw and split_validation:
        raw["train"], raw["validation"] = _hold_out(raw["train"], args)
    return {k: raw[k] for k in ("train", "validation") if k in raw}


def _load_hub_dataset(args) -> DatasetDict:
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


def _text_only(ds, column: str, split: str):
    columns = ds.column_names
    if columns is not None and column not in columns:
        raise UserError(
            f"`text_column: {column}` is not a column of the {split} data; it has {columns}."
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


def _hold_out(train, args):
    if isinstance(train, IterableDataset):
        # No len() when streaming: hold out the first N examples, train on the rest.
        n = args.streaming_validation_examples
        return train.skip(n), train.take(n)
    # The first N% (as run_mlm.py's `train[:5%]`): contiguous text, so the held-out passages
    # are not interleaved with training passages from the same scene.
    if len(train) < 2:
        raise UserError(
            f"the training data has {len(train)} example(s), too few to hold out a validation "
            "split: add text, set `validation_files`, or (for .txt) `text_sample_by: line`."
        )
    n_val = max(1, int(len(train) * args.validation_split_percentage / 100))
    return train.select(range(n_val, len(train))), train.select(range(n_val))


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

    Each text becomes `<s> text </s>` (the tokenizer's own specials), texts are concatenated
    and chunked; the tail shorter than a block is dropped (at most one block per map batch of
    1000 texts). No padding anywhere, so every position the model computes is real text.
    """
    ids = np.fromiter(
        (i for seq in _token_ids(tokenizer, batch["text"]) for i in seq), dtype=np.int32
    )  # one flat array: numpy slicing beats Python list concatenation by ~10x
    n_blocks = len(ids) // block_size
    blocks = ids[: n_blocks * block_size].reshape(n_blocks, block_size)
    special = np.isin(blocks, special_ids).astype(np.int8)
    # numpy arrays go into Arrow as they are; .tolist() would box every id as a Python int
    return {"input_ids": blocks, "special_tokens_mask": special}


def _token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """`tokenizer(texts)["input_ids"]`, from the `tokenizers` backend's encode_batch_fast,
    which skips the character offsets packing never uses: ~20% less CPU time per batch."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a Python tokenizer has no backend
        return tokenizer(texts, add_special_tokens=True, return_attention_mask=False)["input_ids"]
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
        n_tokens = sum(len(tokenizer(e["text"])["input_ids"]) for e in raw[split])
        hint = ""
        if args.streaming and split == "train" and not args.validation_files:
            hint = (
                f" With streaming the first {args.streaming_validation_examples} examples are "
                "held out for validation: lower `streaming_validation_examples`."
            )
        raise UserError(
            f"the {split} data has {n_tokens} tokens, fewer than one training block of "
            f"max_seq_length={args.max_seq_length}. Add text, lower `max_seq_length`, or "
            f"set `line_by_line: true`.{hint}"
        )
