"""The metrics are `evaluate` modules of this repository (recipes/evaluation/<name>), loaded by
path and offline: the Trainer `compute_metrics` functions give the numbers worked out by hand,
the public `evaluate.load(...).compute()` gives the same as the recipes' path, and loading and
computing needs no network and writes nothing into the repository."""

import ast
import math
import re
import socket
import sys
from pathlib import Path

import numpy as np
from helpers import REPO
from transformers import EvalPrediction

from recipes.runs import metrics
from recipes.runs.metrics import (
    EVALUATION_MODULES,
    add_perplexity,
    compute_classification_metrics,
    compute_mlm_metrics,
    compute_pretraining_metrics,
    load_metric,
    majority_baseline,
    most_frequent_share,
    perplexity,
)

MODULES = (
    "masked_accuracy",
    "perplexity_from_loss",
    "classification",
    "majority_baseline",
    "minimal_pair_accuracy",
)


def test_every_metric_is_a_module_folder_with_its_documentation():
    found = sorted(p.name for p in EVALUATION_MODULES.iterdir() if p.is_dir())
    assert found == sorted(MODULES)
    for name in MODULES:
        source = (EVALUATION_MODULES / name / f"{name}.py").read_text()
        names = {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}  # fmt: skip
        assert {"_DESCRIPTION", "_KWARGS_DESCRIPTION", "_CITATION"} <= names, name
        assert f'evaluate.load("recipes/evaluation/{name}")' in source  # how a user loads it


# ------------------------------------------------------------------ numbers worked out by hand
def test_masked_accuracy_and_its_floor_count_masked_tokens_only():
    labels = np.array([[5, -100, 7, 7], [-100, 9, 7, -100]])
    preds = np.array([[5, 3, 7, 0], [1, 9, 2, 4]])  # masked: 5 7 7 9 7; right: 5 7 9
    got = compute_mlm_metrics(EvalPrediction(predictions=preds, label_ids=labels))
    assert got == {"accuracy": 3 / 5, "majority_baseline_accuracy": 3 / 5}  # 7 is 3 of 5
    nothing = compute_mlm_metrics(EvalPrediction(predictions=preds, label_ids=labels * 0 - 100))
    assert set(nothing) == {"accuracy", "majority_baseline_accuracy"}
    assert all(math.isnan(v) for v in nothing.values())
    assert most_frequent_share([2, 2, 1, 0]) == 0.5


def test_pretraining_metrics_add_the_mlm_loss_and_next_sentence_accuracy():
    mlm_labels = np.array([[5, -100, 7], [-100, 9, 7]])
    mlm_ids = np.array([[5, 0, 1], [0, 9, 7]])  # 3 of 4 right; 7 is 2 of 4
    loss_sums = np.array([3.0, 5.0], dtype=np.float32)  # 8 over 4 masked tokens
    nsp_labels, nsp_ids = np.array([0, 1]), np.array([1, 1])
    got = compute_pretraining_metrics(
        EvalPrediction(
            predictions=(mlm_ids, nsp_ids, loss_sums), label_ids=(mlm_labels, nsp_labels)
        )
    )
    assert got == {
        "accuracy": 0.75,
        "majority_baseline_accuracy": 0.5,
        "mlm_loss": 2.0,
        "nsp_accuracy": 0.5,
        "nsp_majority_baseline_accuracy": 0.5,
    }


def test_classification_accuracy_and_f1_of_class_1_with_two_labels_only():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])  # predicts 1 0 1 1
    two = compute_classification_metrics(EvalPrediction(logits, np.array([1, 0, 0, 1])), 2)
    assert two == {"accuracy": 0.75, "f1": 2 * 2 / (3 + 2)}  # tp 2, predicted 3, actual 2
    none_positive = compute_classification_metrics(EvalPrediction(logits[[1]], np.array([0])), 2)
    assert none_positive == {"accuracy": 1.0, "f1": 0.0}
    three = np.eye(3)[[0, 2, 1, 1]]
    got = compute_classification_metrics(EvalPrediction(three, np.array([0, 2, 2, 1])), 3)
    assert got == {"accuracy": 0.75}


def test_majority_baseline_answers_the_training_datas_most_frequent_label():
    assert majority_baseline([1, 1, 0], [0, 1, 1, 0], 2) == {
        "label": 1,
        "accuracy": 0.5,
        "f1": 2 / 3,
    }
    assert majority_baseline([2, 0, 2], [0, 1, 2, 2, 2], 3) == {"label": 2, "accuracy": 0.6}
    assert majority_baseline([0, 1], [1, 1], 2)["label"] == 0  # a tie: the lower id


def test_perplexity_is_exp_of_the_loss_and_inf_where_exp_overflows():
    assert perplexity(2.5) == math.exp(2.5)
    assert perplexity(50.0) == math.inf and perplexity(float("nan")) == math.inf
    assert add_perplexity({"eval_mlm_loss": 1.25}, prefix="eval_mlm")["perplexity"] == math.exp(
        1.25
    )
    assert add_perplexity({"eval_accuracy": 0.5}) == {"eval_accuracy": 0.5}


# ------------------------------------------------------------ the same bits as plain numpy
def test_large_arrays_give_the_same_bits_as_plain_numpy():
    rng = np.random.default_rng(0)
    labels = np.where(rng.random((64, 128)) < 0.15, rng.integers(0, 5000, (64, 128)), -100)
    preds = np.where(rng.random(labels.shape) < 0.4, labels, rng.integers(0, 5000, labels.shape))
    targets, hits = labels[labels != -100], preds[labels != -100]
    assert compute_mlm_metrics(EvalPrediction(preds, labels)) == {
        "accuracy": float((hits == targets).mean()),
        "majority_baseline_accuracy": float(np.bincount(targets).max() / targets.size),
    }
    y = rng.integers(0, 2, 999)
    logits = rng.random((999, 2))
    p = logits.argmax(-1)
    tp, predicted, actual = int(((p == 1) & (y == 1)).sum()), int(p.sum()), int(y.sum())
    assert compute_classification_metrics(EvalPrediction(logits, y), 2) == {
        "accuracy": float((p == y).mean()),
        "f1": 2 * tp / (predicted + actual),
    }
    for loss in (0.1, 2.718281828459045, 7.3, 49.99):
        assert perplexity(loss) == math.exp(loss)


# ------------------------------------------------------- what a user gets from evaluate.load
def test_evaluate_compute_gives_what_the_recipes_get(monkeypatch):
    monkeypatch.chdir(REPO)  # the documented examples load "recipes/evaluation/<name>"
    for name in MODULES:
        module = load_metric(name)
        examples = re.findall(
            r">>> (metric\.compute\(.*\))\n\s*(\{.*\})", module.inputs_description
        )
        assert examples, f"{name}: _KWARGS_DESCRIPTION shows no metric.compute example"
        for call, expected in examples:
            inputs = eval("dict" + call.removeprefix("metric.compute"))
            assert module.compute(**inputs) == eval(expected), f"{name}: {call}"
            assert metrics.compute_metric(name, **inputs) == eval(expected), name
    rng = np.random.default_rng(1)
    labels = np.where(rng.random(5000) < 0.3, rng.integers(0, 300, 5000), -100)
    preds = np.where(rng.random(5000) < 0.5, labels, 7)
    masked = labels != -100
    assert load_metric("masked_accuracy").compute(predictions=preds, references=labels) == (
        compute_mlm_metrics(EvalPrediction(preds, labels))
    )
    assert load_metric("masked_accuracy").compute(
        predictions=preds[masked], references=labels[masked]
    ) == compute_mlm_metrics(EvalPrediction(preds, labels))


# ----------------------------------------------------------------------- offline, in place
def test_modules_load_and_compute_with_the_network_blocked(monkeypatch):
    def refuse(sock, address, *args):
        if not (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")):
            raise OSError(f"network blocked in this test: {address}")
        return real_connect(sock, address, *args)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    before = sorted(p.relative_to(REPO) for p in EVALUATION_MODULES.rglob("*"))
    load_metric.cache_clear()  # load every module again, now
    try:
        labels, preds = np.array([[4, -100, 4]]), np.array([[4, 1, 2]])
        assert compute_mlm_metrics(EvalPrediction(preds, labels))["accuracy"] == 0.5
        assert perplexity(1.0) == math.e
        assert compute_classification_metrics(EvalPrediction(np.eye(2), np.array([0, 1])), 2)
        assert majority_baseline([0], [0, 1], 2)["label"] == 0
        assert metrics.minimal_pair_accuracy([1.0], [0.0])["accuracy"] == 1.0
        assert load_metric.cache_info().currsize == len(MODULES)
        copied = Path(sys.modules[type(load_metric("masked_accuracy")).__module__].__file__)
        assert not copied.is_relative_to(REPO)  # run from evaluate's module cache
    finally:
        load_metric.cache_clear()
    # nothing written beside the modules (no lock, cache or bytecode files in the repository)
    assert sorted(p.relative_to(REPO) for p in EVALUATION_MODULES.rglob("*")) == before
    assert all(p.suffix == ".py" or p.is_dir() for p in EVALUATION_MODULES.rglob("*"))
