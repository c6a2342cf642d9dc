"""The comparison's arithmetic and splits, without training: which learning rate is kept, the
standard error of the difference, the label counts, and validation/test held out by group."""

import json
import math
import types

import numpy as np
import pytest

from recipes.data.classification import _hold_out, load_classification_data
from recipes.errors import UserError
from recipes.finetune import comparison as lc


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
        _hold_out(one, 1, seed=0, group_column="play")
