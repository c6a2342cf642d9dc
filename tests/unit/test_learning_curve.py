"""The comparison's arithmetic and splits, without training: which learning rate is kept, the
standard error of the difference, the label counts, the plan of runs and when a finished one is
reused, and validation/test held out by group."""

import dataclasses
import json
import math
import types

import numpy as np
import pytest

from recipes.data.classification import load_classification_data
from recipes.data.text import hold_out
from recipes.errors import UserError
from recipes.finetune import comparison as lc
from recipes.finetune.training import RESULT_FILE, load_finished_run, save_finished_run


def run(side, n, lr, seed, val, test):
    return {"side": side, "labels": n, "learning_rate": lr, "seed": seed,
            "validation_accuracy": val, "test_accuracy": test}  # fmt: skip


def test_the_kept_rate_is_the_best_on_validation_whatever_the_test_says():
    runs = [
        run("pretrained", 64, 1e-4, 1, 0.70, 0.50), run("pretrained", 64, 1e-4, 2, 0.72, 0.54),
        run("pretrained", 64, 1e-3, 1, 0.60, 0.90), run("pretrained", 64, 1e-3, 2, 0.62, 0.92),
        run("random init", 64, 1e-3, 1, 0.55, 0.40), run("random init", 64, 1e-3, 2, 0.57, 0.46),
    ]  # fmt: skip
    [row] = lc.summarize(runs, ["pretrained", "random init"])
    p, c = row["pretrained"], row["random init"]
    assert p["learning_rate"] == 1e-4 and p["accuracy"] == [0.50, 0.54]  # not the 0.9 on test
    assert p["mean"] == pytest.approx(0.52) and c["mean"] == pytest.approx(0.43)
    assert row["difference"] == pytest.approx(0.09)
    se = math.sqrt((np.std([0.5, 0.54], ddof=1) ** 2 + np.std([0.4, 0.46], ddof=1) ** 2) / 2)
    assert row["difference_se"] == pytest.approx(se)
    assert lc.difference_text(row) == f"+0.090 ({0.09 / se:.1f} standard errors)"
    header, cells = lc.table([row], seeds=2)
    assert cells == [["64", "0.520 ± 0.028 (lr 0.0001)", "0.430 ± 0.042 (lr 0.001)", lc.difference_text(row)]]  # fmt: skip
    assert header[1] == "pretrained (mean ± sd over 2 seeds)"


def test_one_seed_has_no_standard_error():
    [row] = lc.summarize([run("pretrained", 8, 1e-4, 1, 0.5, 0.6), run("random init", 8, 1e-4, 1, 0.5, 0.4)], ["pretrained", "random init"])  # fmt: skip
    assert row["difference_se"] is None
    assert lc.difference_text(row) == "+0.200 (one seed: no standard error)"


def test_label_counts_steps_and_rates():
    assert lc.label_counts([1000, 64, 256, 10**6], available=900) == [64, 256, 900]
    assert lc.label_counts(None, available=900) == [900]
    assert lc.run_steps(64, batch=32, epochs=5, min_steps=50) == 50  # 2 x 5 = 10 < 50
    assert lc.run_steps(1000, batch=32, epochs=5, min_steps=50) == 160  # 32 x 5
    assert lc.run_steps(1000, batch=32, epochs=0.5, min_steps=0) == 16
    args = lc.ComparisonArguments(control_learning_rate=1e-3)
    assert lc.learning_rates(args, 1e-4) == {"pretrained": [1e-4], "random init": [1e-3]}
    args = lc.ComparisonArguments(sweep_learning_rates=[3e-4, 1e-4, 3e-4])
    assert lc.learning_rates(args, 1e-4)["random init"] == [1e-4, 3e-4]
    with pytest.raises(UserError, match="seeds >= 1"):
        lc.ComparisonArguments(seeds=0)


def test_the_plan_is_counts_x_seeds_x_sides_x_rates_and_keeps_most_labels_first_seed():
    args = lc.ComparisonArguments(seeds=2, label_counts=[40, 8], sweep_learning_rates=[1e-3, 1e-4])
    training = types.SimpleNamespace(
        learning_rate=1e-4, seed=42, per_device_train_batch_size=8, gradient_accumulation_steps=1,
        world_size=1, max_steps=-1, num_train_epochs=2,
    )  # fmt: skip
    plan = lc.plan_comparison(args, True, training, train_size=86)
    assert len(plan.runs) == 2 * 2 * 2 * 2 and plan.seeds == [42, 43]
    assert [r.name for r in plan.runs[:5]] == [
        "pretrained-8-0.0001-42", "pretrained-8-0.001-42",
        "random-init-8-0.0001-42", "random-init-8-0.001-42", "pretrained-8-0.0001-43",
    ]  # fmt: skip
    assert {r.labels: r.steps for r in plan.runs} == {8: 2, 40: 10}  # 1 and 5 batches, 2 epochs
    candidates = [r.name for r in plan.runs if r.candidate]
    assert candidates == [
        "pretrained-40-0.0001-42", "pretrained-40-0.001-42",
        "random-init-40-0.0001-42", "random-init-40-0.001-42",
    ]  # fmt: skip
    top = {"labels": 40, "pretrained": {"learning_rate": 1e-3}, "random init": {"learning_rate": 1e-4}}  # fmt: skip
    kept = lc.runs_at_kept_rates(plan, top)
    assert {side: run.name for side, run in kept.items()} == {
        "pretrained": "pretrained-40-0.001-42",
        "random init": "random-init-40-0.0001-42",
    }


def test_a_finished_run_is_reused_only_with_the_same_settings(tmp_path):
    from transformers import TrainingArguments

    run = lc.PlannedRun("pretrained", 8, 42, 1e-4, 6, True)
    args = TrainingArguments(output_dir=str(tmp_path / "a"), seed=42, learning_rate=1e-4)
    shared = {"model": "/models/a", "data": "abc"}
    key = lc.run_key(shared, run, args)
    # where a run is written and how it reports do not change its numbers
    elsewhere = dataclasses.replace(args, output_dir=str(tmp_path / "b"), disable_tqdm=True)
    assert lc.run_key(shared, run, elsewhere) == key
    changed = [
        lc.run_key(shared, run, dataclasses.replace(args, seed=43)),
        lc.run_key(shared, run, dataclasses.replace(args, learning_rate=3e-4)),
        lc.run_key(shared, run, dataclasses.replace(args, weight_decay=0.3)),
        lc.run_key(shared | {"model": "/models/b"}, run, args),
        lc.run_key(shared | {"data": "abd"}, run, args),
        lc.run_key(shared, dataclasses.replace(run, side="random init"), args),
        lc.run_key(shared, dataclasses.replace(run, labels=9), args),
    ]
    assert key not in changed and len(set(changed)) == len(changed)


def test_the_shared_settings_follow_the_data_and_the_model_files(tmp_path):
    from datasets import Dataset

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    options = dict(model_name_or_path=str(model), freeze_embeddings=True, from_scratch_control=False)  # fmt: skip
    config = types.SimpleNamespace(to_dict=lambda: {"num_labels": 2})
    one_process = types.SimpleNamespace(world_size=1)
    splits = {"train": Dataset.from_dict({"input_ids": [[0, 5, 2]], "labels": [1]})}

    def shared(splits=splits, **changes):
        model_args = types.SimpleNamespace(**options | changes)
        return lc.shared_settings(model_args, one_process, splits, config)

    before = shared()
    assert shared() == before
    assert shared(from_scratch_control=True) == before  # which runs there are, not their numbers
    assert shared(freeze_embeddings=False) != before
    other = {"train": Dataset.from_dict({"input_ids": [[0, 6, 2]], "labels": [1]})}
    assert shared(splits=other)["data"] != before["data"]
    (model / "model.safetensors").write_bytes(b"weights, pretrained again")
    assert shared()["model_files"] != before["model_files"]


def test_a_run_is_finished_once_its_whole_record_is_written(tmp_path):
    main_process = types.SimpleNamespace(is_world_process_zero=lambda: True)
    folder = tmp_path / "pretrained-8-0.0001-42"
    (folder / "checkpoint-2").mkdir(parents=True)
    assert load_finished_run(folder, "k1", needs_model=False) is None  # in progress
    record = {"key": "k1", "run": {"test_accuracy": 0.5}, "log_history": [{"loss": 0.7, "step": 2}]}  # fmt: skip
    save_finished_run(main_process, folder, record, keep_model=False)
    assert not (folder / "checkpoint-2").exists() and sorted(folder.iterdir()) == [folder / RESULT_FILE]  # fmt: skip
    assert load_finished_run(folder, "k1", needs_model=False) == record
    assert load_finished_run(folder, "k2", needs_model=False) is None  # other settings
    assert load_finished_run(folder, "k1", needs_model=True) is None  # its model was not kept
    (folder / RESULT_FILE).write_text('{"key": "k1", "run": {"te')  # cut off mid-write
    assert load_finished_run(folder, "k1", needs_model=False) is None


def rows(plays: dict) -> list[dict]:
    """{play: (label, passages)} -> one row per passage."""
    return [{"text": f"{play} {i}", "label": label, "play": play}
            for play, (label, n) in plays.items() for i in range(n)]  # fmt: skip


PLAYS = {
    f"{kind}{i}": (kind, 10 + i) for kind in ("comedy", "history", "tragedy") for i in range(6)
}


def test_validation_and_test_take_whole_groups_balanced_over_labels(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(PLAYS)))
    args = types.SimpleNamespace(
        train_files=[str(path)], validation_files=None, test_files=None, dataset_name=None,
        text_column="text", text_pair_column=None, label_column="label", group_column="play",
        validation_split_percentage=10.0, test_split_percentage=20.0, max_train_samples=None,
        max_eval_samples=None,
    )  # fmt: skip
    raw, names = load_classification_data(args, seed=0)
    assert names == ["comedy", "history", "tragedy"]
    plays = {split: {t.split()[0] for t in ds["text"]} for split, ds in raw.items()}
    assert not plays["train"] & plays["validation"] and not plays["train"] & plays["test"]
    assert not plays["validation"] & plays["test"]
    assert sum(len(ds) for ds in raw.values()) == sum(n for _, n in PLAYS.values())
    total = len(rows(PLAYS))
    assert len(raw["test"]) >= 0.2 * total and len(raw["validation"]) >= 0.1 * total
    # taken in turn from each kind: the test plays cover all three
    assert {p.rstrip("012345") for p in plays["test"]} == {"comedy", "history", "tragedy"}
    assert "play" not in raw["train"].column_names  # the group is for splitting only


def test_holding_out_whole_groups_needs_more_than_one():
    from datasets import Dataset

    one = Dataset.from_list([{"text": "a", "label": "x", "group": "g"}] * 5)
    with pytest.raises(UserError, match="only 1 group"):
        hold_out(one, 1, seed=0, group_column="play")
