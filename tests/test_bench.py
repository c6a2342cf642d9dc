"""`make bench` cannot rot: its whole code path at a tiny shape, a few steps. No timing asserts
(benchmarks are not tests); what is checked is what the bench counts and writes."""

import json

import pytest

from benchmarks import bench as bench_module
from benchmarks.bench import training_flops

TINY = [
    "--vocab_size", "1000", "--hidden_size", "32", "--num_hidden_layers", "1",
    "--num_attention_heads", "2", "--intermediate_size", "64", "--max_seq_length", "32",
    "--batch_size", "4", "--steps", "2", "--warmup", "1", "--repeats", "1",
    "--peak_seconds", "0.01",
]  # fmt: skip


def test_flop_formula_matches_its_documented_arithmetic():
    shape = {"hidden": 256, "ffn": 1024, "vocab": 30_000, "layers": 4}
    packed = dict(tokens=16 * 128, attention_pairs=16 * 128**2)
    assert training_flops(shape, predictions=290, **packed) == pytest.approx(55.35e9, rel=1e-3)
    assert training_flops(shape, predictions=2048, **packed) == pytest.approx(137.05e9, rel=1e-3)


def test_bench_runs_end_to_end_and_writes_its_report(tmp_path, corpus_files):
    out = tmp_path / "out"
    report = bench_module.main(
        ["--train_files", *corpus_files, "--work_dir", str(tmp_path), "--out_dir", str(out)]
        + ["--ways", "a,b,c,c-workers", *TINY]
    )
    t = report["training"]
    assert list(t) == ["a", "b", "c", "c-workers"]
    # a pads every line to 32 tokens; b and c fill every position with text
    assert 0 < t["a"]["real_tokens_per_batch"] < 4 * 32
    assert t["b"]["real_tokens_per_batch"] == t["c"]["real_tokens_per_batch"] == 4 * 32
    # the stock dense head computes every position; the recipe's sparse head what it needs
    assert t["a"]["executed_flops_per_s"] > t["a"]["needed_flops_per_s"]
    assert t["b"]["executed_flops_per_s"] > t["b"]["needed_flops_per_s"]
    assert t["c"]["executed_flops_per_s"] == t["c"]["needed_flops_per_s"]
    assert all(len(way["runs"]) == 1 for way in t.values())
    assert set(report["preprocessing"]) == {
        "raw encode_batch", "raw encode_batch_fast", "a", "b", "c",
    }  # fmt: skip
    assert report["peaks"]["fp32"]["flops"] > 0 and report["peaks"]["bf16"]["flops"] > 0

    markdown = (out / "results.md").read_text()
    for needle in ["| a |", "| b |", "| c |", "fp32 matmul peak", "raw `tokenizers` encode_batch"]:
        assert needle in markdown
    assert json.loads((out / "results.json").read_text())["settings"]["steps"] == 2
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
