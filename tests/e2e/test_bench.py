"""`make bench` cannot rot: its whole code path at a tiny shape, a few steps. No timing asserts
(benchmarks are not tests); what is checked is what the bench counts and writes."""

import json

import pytest
from helpers import tiny

from benchmarks import bench as bench_module
from benchmarks.bench import training_flops
from benchmarks.race import RACE_WAYS, accuracy_at, time_to_reach

TINY = tiny("bench")
PNG = b"\x89PNG\r\n\x1a\n"


def test_flop_formula_matches_its_documented_arithmetic():
    shape = {"hidden": 256, "ffn": 1024, "vocab": 30_000, "layers": 4}
    packed = dict(tokens=16 * 128, attention_pairs=16 * 128**2)
    assert training_flops(shape, predictions=290, **packed) == pytest.approx(55.35e9, rel=1e-3)
    assert training_flops(shape, predictions=2048, **packed) == pytest.approx(137.05e9, rel=1e-3)
    # ModernBERT's GeGLU FFN: Wi to 2 x 1024, Wo back, 3hf MACs per token and layer
    glu = training_flops(shape | {"glu": True}, predictions=290, **packed)
    assert glu == pytest.approx(68.24e9, rel=1e-3)
    assert glu - training_flops(shape, predictions=290, **packed) == 6 * 4 * 2048 * 256 * 1024


def test_time_to_reach_interpolates_between_evaluations():
    points = [
        {"seconds": 0.0, "accuracy": 0.0},
        {"seconds": 10.0, "accuracy": 0.2},
        {"seconds": 20.0, "accuracy": 0.4},
    ]
    assert time_to_reach(points, 0.3) == pytest.approx(15.0)
    assert time_to_reach(points, 0.2) == pytest.approx(10.0)
    assert time_to_reach(points, 0.5) is None
    assert accuracy_at(points, 5.0) == pytest.approx(0.1)
    assert accuracy_at(points, 99.0) == pytest.approx(0.4)  # finished early: its final accuracy


def test_bench_runs_end_to_end_and_writes_its_report(tmp_path, corpus_files):
    out = tmp_path / "out"
    report = bench_module.main(
        ["--train_files", *corpus_files, "--work_dir", str(tmp_path), "--out_dir", str(out)]
        + ["--ways", "a,b,c,d,c-workers", "--race_seconds", "0", *TINY]
    )
    t = report["training"]
    assert list(t) == ["a", "b", "c", "d", "c-workers"]
    # a pads every line to 32 tokens; b and c fill every position with text
    assert 0 < t["a"]["real_tokens_per_batch"] < 4 * 32
    assert t["b"]["real_tokens_per_batch"] == t["c"]["real_tokens_per_batch"] == 4 * 32
    assert t["d"]["real_tokens_per_batch"] == 4 * 32
    # the stock dense head computes every position; the recipe's sparse head what it needs
    assert t["a"]["executed_flops_per_s"] > t["a"]["needed_flops_per_s"]
    assert t["b"]["executed_flops_per_s"] > t["b"]["needed_flops_per_s"]
    assert t["c"]["executed_flops_per_s"] == t["c"]["needed_flops_per_s"]
    assert t["d"]["executed_flops_per_s"] == t["d"]["needed_flops_per_s"]
    assert all(len(way["runs"]) == 1 for way in t.values())
    assert set(report["preprocessing"]) == {
        "raw encode_batch", "raw encode_batch_fast", "a", "b", "c",
    }  # fmt: skip
    assert report["peaks"]["fp32"]["flops"] > 0 and report["peaks"]["bf16"]["flops"] > 0
    assert "race" not in report

    markdown = (out / "results.md").read_text()
    for needle in ["| a |", "| b |", "| c |", "| d |", "fp32 matmul peak", "| precision |"]:
        assert needle in markdown
    assert json.loads((out / "results.json").read_text())["settings"]["steps"] == 2
    assert (out / "throughput.png").read_bytes()[:8] == PNG
    assert not (out / "time_to_accuracy.png").exists()


def test_time_to_accuracy_race_writes_its_report(tmp_path, corpus_files):
    out = tmp_path / "out"
    budget = 3.0
    report = bench_module.main(
        ["--train_files", *corpus_files, "--work_dir", str(tmp_path), "--out_dir", str(out)]
        + ["--ways", "none", "--race_seconds", str(budget), "--race_evals", "3"]
        + ["--probe_steps", "2", *TINY]
    )
    race = json.loads((out / "results.json").read_text())["race"]
    assert "training" not in report
    assert list(race["ways"]) == list(RACE_WAYS)
    floor = race["held_out"]["most_frequent_floor"]
    assert 0 < floor < 1 and race["held_out"]["masked_tokens"] > 0
    for name, way in race["ways"].items():
        points = way["points"]
        seconds = [p["seconds"] for p in points]
        assert seconds[0] == 0 and seconds == sorted(seconds), name
        assert len(points) >= 2 and 0 <= way["final_accuracy"] <= 1
        assert way["ended_by"] in ("budget", "max_steps")
        assert way["steps"] <= way["max_steps"] and way["max_steps"] >= 1
        # stopped at the budget at the latest: at most one step (a few probe steps) past it
        assert way["train_seconds"] < budget + 5 * way["probe_step_s"] + 1.0, name
        assert way["settings"]["bf16"] == (report["settings"]["precision"] == "bf16")
    # run_mlm.py's way as a user runs it: TrainingArguments' defaults, dense head, stock collator
    a = race["ways"]["run_mlm"]["settings"]
    assert a["learning_rate"] == 5e-5 and a["warmup_steps"] == 0 and a["weight_decay"] == 0
    assert a["adam_betas"] == [0.9, 0.999] and a["lr_scheduler_type"] == "linear"
    assert a["collator"] == "DataCollatorForLanguageModeling" and a["mlm_probability"] == 0.15
    assert a["lm_head"].startswith("dense") and a["dropout"]["hidden_dropout_prob"] == 0.1
    # a' takes the recipe's hyperparameters (roberta-tiny.yaml), nothing else
    a2, b = race["ways"]["run_mlm_recipe_hp"]["settings"], race["ways"]["roberta"]["settings"]
    for key in ("learning_rate", "warmup_steps", "weight_decay", "adam_betas", "dropout"):
        assert a2[key] == b[key], key
    assert a2["lm_head"].startswith("dense") and b["lm_head"] == "masked positions only"
    assert race["ways"]["modernbert"]["settings"]["model"] == "ModernBertForMaskedLM"
    # (a) reaches its own final accuracy within its run (at 0 s if a tiny run learned nothing:
    # then no ratio); the goal verdict follows the ratios
    a_time = race["ways"]["run_mlm"]["time_to_target_s"]
    assert (
        a_time == race["target_time_s"] and 0 <= a_time <= race["ways"]["run_mlm"]["train_seconds"]
    )
    assert race["ways"]["run_mlm"]["ratio_to_a"] == (pytest.approx(1.0) if a_time > 0 else None)
    ratios = [race["ways"][n]["ratio_to_a"] for n in ("roberta", "modernbert")]
    reached = [r for r in ratios if r is not None]
    above = race["target_accuracy"] > floor
    assert race["target_above_floor"] == above
    assert race["goal_met"] == (bool(reached) and min(reached) <= 1 / 3 and above)
    assert len(race["accuracy_at"]) == 3

    markdown = (out / "results.md").read_text()
    for needle in ["Time to accuracy", "| (a) |", "| (a') |", "| (b) |", "| (c) |", "Goal:"]:
        assert needle in markdown
    assert "time_to_accuracy.png" in markdown
    assert (out / "time_to_accuracy.png").read_bytes()[:8] == PNG
