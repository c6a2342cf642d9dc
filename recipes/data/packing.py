"""Tokenizing: text into token ids, packed into full `max_seq_length` blocks (or one padded
example per line), in parallel and cached by `datasets`.
"""

import os
import sys
from types import FunctionType

import numpy as np
from datasets import (
    Dataset,
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
    which skips the character offsets packing never uses. Texts
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
# (the tokenizers library's own threads), and starting workers costs seconds (benchmarks/README.md).
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
