"""Data preparation: packing, file resolution, held-out split and caching."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from recipes.arguments import DataArguments
from recipes.data.files import resolve_files
from recipes.data.packing import pack_texts, tokenize_datasets
from recipes.data.text import load_raw_datasets
from recipes.errors import UserError


@pytest.fixture(scope="module")
def tokenizer(train_bpe_tokenizer):
    return AutoTokenizer.from_pretrained(train_bpe_tokenizer(1000))


def data_args(corpus_files, **kw):
    return DataArguments(train_files=corpus_files, tokenizer_name_or_path="unused", **kw)


def test_packing_keeps_every_token_in_order_in_full_blocks(tokenizer):
    texts = ["Shall I compare thee to a summer's day?", "Thou art more lovely", "x" * 50] * 7
    out = pack_texts({"text": texts}, tokenizer, 16, sorted(set(tokenizer.all_special_ids)))
    expected = [i for t in texts for i in tokenizer(t)["input_ids"]]
    blocks = np.array(out["input_ids"])
    assert blocks.shape == (len(expected) // 16, 16)
    assert blocks.ravel().tolist() == expected[: blocks.size]  # the tail is dropped, no padding
    special = np.array(out["special_tokens_mask"], dtype=bool)
    assert (special == np.isin(blocks, [tokenizer.bos_token_id, tokenizer.eos_token_id])).all()
    assert tokenizer.pad_token_id not in blocks


def test_held_out_split_is_the_first_percent_and_disjoint(corpus_files):
    raw = load_raw_datasets(data_args(corpus_files, validation_split_percentage=10))
    n_train, n_val = len(raw["train"]), len(raw["validation"])
    assert n_val == int((n_train + n_val) * 0.10)
    assert raw["validation"][0]["text"] != raw["train"][0]["text"]


def test_tokenization_is_cached_across_calls(tokenizer, corpus_files, tmp_path):
    args = data_args(corpus_files, max_seq_length=32)
    first = tokenize_datasets(load_raw_datasets(args), tokenizer, args, num_proc=None)
    second = tokenize_datasets(load_raw_datasets(args), tokenizer, args, num_proc=None)
    assert first["train"]._fingerprint == second["train"]._fingerprint
    assert first["train"].cache_files == second["train"].cache_files  # read back, not redone
    args64 = data_args(corpus_files, max_seq_length=64)  # a different block size re-runs
    third = tokenize_datasets(load_raw_datasets(args64), tokenizer, args64, num_proc=None)
    assert third["train"]._fingerprint != first["train"]._fingerprint
    assert len(third["train"][0]["input_ids"]) == 64


FINGERPRINT = """
import sys
from datasets import Dataset
import prep
from recipes.data.packing import CodeVersioned
fn = CodeVersioned(prep.add) if sys.argv[1] == "versioned" else prep.add
print(Dataset.from_dict({"x": [1, 2]}).map(fn, batched=True)._fingerprint)
"""


def test_editing_a_map_function_or_its_helpers_re_runs_the_cached_map(tmp_path):
    # Each fingerprint from a fresh process, as a cache would be read back by the next run.
    def fingerprint(helper_body: str, how: str = "versioned") -> str:
        (tmp_path / "prep.py").write_text(
            textwrap.dedent(f"""
            def add(batch):
                return {{"y": [helper(x) for x in batch["x"]]}}

            def helper(x):
                {helper_body}
            """)
        )
        env = {"PYTHONPATH": f"{tmp_path}:{Path.cwd()}", "HF_DATASETS_OFFLINE": "1"}
        run = subprocess.run(
            [sys.executable, "-c", FINGERPRINT, how],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | env,
        )
        return run.stdout.split()[-1]

    plus_one = fingerprint("return x + 1")
    assert fingerprint("return x + 1") == plus_one  # same code: the cache is reused
    assert fingerprint("return x + 1  # a comment") == plus_one
    assert fingerprint("return x + 2") != plus_one  # a helper changed: the map re-runs
    # The trap it closes: datasets alone hashes `add` by name and would reuse the old cache.
    assert fingerprint("return x + 2", how="plain") == fingerprint("return x + 1", how="plain")


def test_line_by_line_gives_one_truncated_example_per_line(tokenizer, corpus_files):
    args = data_args(corpus_files, line_by_line=True, text_sample_by="line", max_seq_length=16)
    raw = {"train": Dataset.from_dict({"text": ["a short line", "", "  ", "x " * 40]})}
    out = tokenize_datasets(raw, tokenizer, args, num_proc=None)["train"]
    assert len(out) == 2 and len(out[1]["input_ids"]) == 16


def test_globs_that_match_nothing_say_so(tmp_path):
    with pytest.raises(UserError, match="matches no file"):
        resolve_files([str(tmp_path / "*.txt")], "train_files")


def test_mixed_file_types_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "b.jsonl").write_text('{"text": "hello"}\n')
    with pytest.raises(UserError, match="mixes file types"):
        resolve_files([str(tmp_path / "*")], "train_files")


def test_jsonl_with_custom_text_column(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"body": "one"}\n{"body": "two"}\n' * 20)
    args = DataArguments(
        train_files=[str(tmp_path / "d.jsonl")], tokenizer_name_or_path="x", text_column="body"
    )
    raw = load_raw_datasets(args)
    assert raw["train"].column_names == ["text"] and len(raw["validation"]) == 2
    bad = DataArguments(train_files=[str(tmp_path / "d.jsonl")], tokenizer_name_or_path="x")
    with pytest.raises(UserError, match="`text_column: text` is not a column.*body"):
        load_raw_datasets(bad)


def test_a_file_in_validation_files_is_held_out_of_train_files(tmp_path, capsys):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text(f"{name} one\n\n{name} two\n")
    args = DataArguments(
        train_files=[str(tmp_path / "*.txt")],
        validation_files=[str(tmp_path / "b.txt")],
        tokenizer_name_or_path="unused",
    )
    raw = load_raw_datasets(args)
    texts = {split: sorted(t.strip() for t in ds["text"]) for split, ds in raw.items()}
    assert texts == {
        "train": ["a one", "a two", "c one", "c two"],
        "validation": ["b one", "b two"],
    }
    assert "1 file(s) of train_files are held out" in capsys.readouterr().out
    args.validation_files = [str(tmp_path / "*.txt")]
    with pytest.raises(
        UserError, match="every file of `train_files` is also in `validation_files`"
    ):
        load_raw_datasets(args)
