"""`make bench` cannot rot: its whole code path at a tiny shape, a few steps. No timing asserts
(benchmarks are not tests); what is checked is what the bench counts and writes."""

import json

import pytest
from helpers import tiny

from benchmarks import bench as bench_module
from benchmarks.bench import training_flops, with_other_part
from benchmarks.race import (
    RACE_WAYS,
    accuracy_at,
    eval_marks,
    summarize,
    threshold_for,
    time_to_reach,
    verdict,
)

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


def test_time_to_reach_is_the_first_evaluation_at_or_above_it():
    points = [
        {"seconds": 0.0, "accuracy": 0.0},
        {"seconds": 10.0, "accuracy": 0.2},
        {"seconds": 20.0, "accuracy": 0.4},
    ]
    assert time_to_reach(points, 0.3) == 20.0  # measured there, not interpolated to 15
    assert time_to_reach(points, 0.2) == 10.0
    assert time_to_reach(points, 0.5) is None
    assert accuracy_at(points, 5.0) == 0.2  # the evaluation at the first step end past 5 s
    assert accuracy_at(points, 10.0) == 0.2
    assert accuracy_at(points, 99.0) == 0.4  # finished early: its final accuracy


def test_evaluations_are_dense_in_the_first_minute():
    assert eval_marks(150, every=30, early_every=10) == [10, 20, 30, 40, 50, 60, 90, 120, 150]
    assert eval_marks(45, every=30, early_every=10) == [10, 20, 30, 40, 45]
    assert eval_marks(10, every=30, early_every=10) == [10]
    assert eval_marks(3, every=30, early_every=1) == [1, 2, 3]


FLOOR = 0.08  # the threshold: 1.5 x 0.08 = 0.12
NAMES = list(RACE_WAYS)  # (a), (a'), (b), (c)


def _race(*curves) -> dict:
    """Race results with one curve of (seconds, accuracy) per way, in RACE_WAYS' order."""
    ways = {}
    for name, curve in zip(NAMES, curves, strict=True):
        points = [{"seconds": float(t), "accuracy": acc} for t, acc in curve]
        ways[name] = {
            "letter": RACE_WAYS[name][0],
            "points": points,
            "train_seconds": points[-1]["seconds"],
        }
    return ways


def _curve(*accuracies, every=10):
    return [(0, 0.0)] + [(every * (i + 1), a) for i, a in enumerate(accuracies)]


# (a) as run_mlm.py's defaults run it: around the floor for the whole budget, noise included
WANDERING = _curve(0.07, 0.085, 0.079, 0.062, 0.092, 0.077, 0.081, 0.08, 0.079, every=20)
FLAT = _curve(0.05, 0.07, 0.075, 0.078, 0.08, 0.08, 0.08, 0.081, 0.08, every=20)


def test_the_threshold_is_off_the_plateau():
    assert threshold_for(FLOOR) == pytest.approx(0.12)
    wandering = _race(WANDERING, FLAT, FLAT, FLAT)["run_mlm"]["points"]
    assert time_to_reach(wandering, threshold_for(FLOOR)) is None
    # what a threshold on the plateau would do: (a)'s own final accuracy, "reached" by noise
    assert time_to_reach(wandering, wandering[-1]["accuracy"]) == 40.0


def test_verdict_when_a_never_leaves_the_plateau():
    fast = _curve(0.09, 0.11, 0.19, 0.22, 0.25)  # (c): 0.19 at 30 s, after 0.11 at 20 s
    ways = _race(WANDERING, FLAT, FLAT, fast)
    s = summarize(ways, [10, 20, 30, 180], FLOOR)
    assert s["verdict"] == "met"
    assert s["goal_line"] == (
        "(c) reaches 1.5x the floor (0.120) at 30 s; (a) never does in 180 s, "
        "so (c) takes under 0.17 of (a)'s time"
    )
    assert ways["run_mlm"]["time_to_threshold_s"] is None
    assert ways["modernbert"]["time_to_threshold_s"] == 30.0
    assert ways["modernbert"]["eval_before_threshold_s"] == 20.0
    assert ways["run_mlm"]["eval_before_threshold_s"] is None
    assert [row["seconds"] for row in s["accuracy_at"]] == [10, 20, 30, 180]
    assert s["accuracy_at"][2]["modernbert"] == 0.19
    assert s["accuracy_at"][3]["modernbert"] == 0.25  # ended at 50 s: keeps its final accuracy
    assert s["accuracy_at"][3]["run_mlm"] == 0.079

    # (a) never reaching it bounds its time by its budget only: a late best decides nothing
    late = _curve(0.08, 0.08, 0.09, 0.1, 0.11, 0.11, 0.11, 0.13, 0.15, every=10)
    result, line = verdict(_race(WANDERING, FLAT, FLAT, late), threshold_for(FLOOR))
    assert result == "no verdict" and "--race_seconds 240" in line


def test_verdict_when_a_reaches_the_threshold():
    a = _curve(0.08, 0.08, 0.09, 0.1, 0.11, 0.11, 0.11, 0.13, every=20)  # 0.13 at 160 s
    b = _curve(0.08, 0.1, 0.125)  # 30 s
    c = _curve(0.08, 0.1, 0.11, 0.11, 0.118, 0.121)  # 60 s
    threshold = threshold_for(FLOOR)
    assert verdict(_race(a, FLAT, c, c), threshold) == (
        "not met",
        "(b) reaches 1.5x the floor (0.120) at 60 s; (a) at 160 s: 0.38 of (a)'s time",
    )
    result, line = verdict(_race(a, FLAT, c, b), threshold)
    assert result == "met" and line.startswith("(c) reaches 1.5x the floor (0.120) at 30 s")
    assert line.endswith("0.19 of (a)'s time")
    result, line = verdict(_race(a, FLAT, FLAT, WANDERING), threshold)
    assert result == "not met" and line == (
        "neither recipe way reaches 1.5x the floor (0.120) in 180 s; (a) at 160 s"
    )


def test_a_one_part_run_keeps_the_other_part(tmp_path):
    (tmp_path / "results.json").write_text(
        json.dumps({"command": "throughput", "training": {"c": 1}, "race": {"old": 1}})
    )
    race = {"measured": {"command": "race"}, "new": 1}
    kept = with_other_part({"command": "race only", "race": race}, tmp_path)
    assert kept == {"command": "throughput", "training": {"c": 1}, "race": race}
    assert with_other_part({"training": {"c": 2}}, tmp_path) == {"training": {"c": 2}}
    (tmp_path / "results.json").write_text(json.dumps({"training": {"c": 1}, "race": race}))
    assert with_other_part({"training": {"c": 2}}, tmp_path) == {"training": {"c": 2}, "race": race}
    assert with_other_part({"race": race}, tmp_path / "nowhere") == {"race": race}


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
        + ["--ways", "none", "--race_seconds", str(budget), "--race_eval_every_early", "1"]
        + [*TINY]
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
        # the budget's clock ended every way, its schedule decayed, at most a step past it
        assert way["ended_by"] == "budget" and way["lr_at_end"] == 0.0, name
        step_s = way["train_seconds"] / way["steps"]
        assert budget <= way["train_seconds"] < budget + 2 * step_s + 0.5, name
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
    # each way's time to the threshold is its first evaluation at or above it; the verdict
    # follows from those times
    threshold = race["threshold_accuracy"]
    assert threshold == pytest.approx(1.5 * floor)
    for name, way in race["ways"].items():
        t, accuracies = way["time_to_threshold_s"], [p["accuracy"] for p in way["points"]]
        reached = [p["seconds"] for p in way["points"] if p["accuracy"] >= threshold]
        assert t == (reached[0] if reached else None), name
        assert max(accuracies) >= threshold if t is not None else max(accuracies) < threshold
    assert (race["verdict"], race["goal_line"]) == verdict(race["ways"], threshold)
    assert race["eval_marks_s"] == [1, 2, 3]
    assert [row["seconds"] for row in race["accuracy_at"]] == [1, 2, 3]
    assert race["measured"]["command"] == report["command"]

    markdown = (out / "results.md").read_text()
    for needle in ["Time to accuracy", "| (a) |", "| (a') |", "| (b) |", "| (c) |", "Goal:"]:
        assert needle in markdown
    assert f"{race['goal_line']}: **{race['verdict']}**" in markdown
    # accuracy at equal time comes first, then the times to the threshold
    assert markdown.index("at equal training time") < markdown.index("Time to 1.5x")
    assert "time_to_accuracy.png" in markdown
    assert (out / "time_to_accuracy.png").read_bytes()[:8] == PNG
