"""A stream restored from a checkpoint's position continues with the very next example."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from datasets import load_dataset
from transformers import AutoTokenizer

from recipes.data.packing import pack_texts
from recipes.data.stream_position import POSITION_FILE, SaveStreamPosition, TrackedStream


@pytest.fixture(scope="module")
def tokenizer(bpe_tokenizer_dir):
    return AutoTokenizer.from_pretrained(bpe_tokenizer_dir)


def packed_stream(corpus_files, tokenizer):
    raw = load_dataset("text", data_files=corpus_files, split="train", streaming=True)
    special = sorted(set(tokenizer.all_special_ids))
    return raw.skip(20).map(  # as the recipe: validation held out, then packed on the fly
        pack_texts,
        batched=True,
        batch_size=100,  # several map batches, so positions fall inside and between them
        remove_columns=["text"],
        fn_kwargs={"tokenizer": tokenizer, "block_size": 32, "special_ids": special},
    )


def ids(example) -> list[int]:
    return np.asarray(example["input_ids"]).tolist()


def test_a_restored_stream_continues_after_the_last_trained_example(
    tmp_path, corpus_files, tokenizer
):
    everything = [ids(e) for e in packed_stream(corpus_files, tokenizer)]
    assert len(everything) > 400

    stream = TrackedStream(packed_stream(corpus_files, tokenizer), examples_per_step=24)
    reader = iter(stream)
    for _ in range(24 * 7 + 30):  # 7 steps trained, and the loader has read ahead
        next(reader)
    checkpoint = tmp_path / "checkpoint-7"
    checkpoint.mkdir()
    state = SimpleNamespace(global_step=7, is_world_process_zero=True)
    SaveStreamPosition(stream).on_save(SimpleNamespace(output_dir=tmp_path), state, None)
    assert json.loads((checkpoint / POSITION_FILE).read_text())["examples"] == 24 * 7

    resumed = TrackedStream(packed_stream(corpus_files, tokenizer), examples_per_step=24)
    assert resumed.restore(checkpoint) == 24 * 7
    assert [ids(e) for e in resumed] == everything[24 * 7 :]
    # a different global batch makes the saved count meaningless: no position, not a wrong one
    assert TrackedStream(packed_stream(corpus_files, tokenizer), 16).restore(checkpoint) is None


def test_no_position_once_the_stream_was_read_through(corpus_files, tokenizer):
    stream = TrackedStream(packed_stream(corpus_files, tokenizer), examples_per_step=4)
    n = sum(1 for _ in stream)
    assert stream.position_after(n) is not None
    next(iter(stream))  # a second pass: counts since the start no longer say where it is
    assert stream.position_after(n + 1) is None
