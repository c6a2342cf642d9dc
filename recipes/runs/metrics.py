"""Every evaluation number of both recipes: masked-token accuracy and its most-frequent-token
floor, perplexity, next-sentence accuracy, minimal-pair accuracy, classification accuracy/F1 and
the majority-label baseline. Each is an `evaluate` module of this repository,
recipes/evaluation/<name>/<name>.py, loaded by path (nothing from the Hub, so offline too); a
user can `evaluate.load` the same path.

With the sparse head the model returns one logit row per masked token; with the stock head it
returns (batch, seq, vocab). `preprocess_logits_for_metrics` reduces either to argmax ids
before Trainer gathers them, so evaluation never holds vocab-sized tensors for the whole set.
"""

import functools
from pathlib import Path

import numpy as np
import torch

EVALUATION_MODULES = Path(__file__).resolve().parents[1] / "evaluation"


@functools.cache
def load_metric(name: str):
    """The `evaluate` module recipes/evaluation/<name>, loaded once per process. Loading copies
    the script into evaluate's module cache (HF_MODULES_CACHE, under a file lock, so ranks
    loading at once are safe) and touches no network for a local path. keep_in_memory: a
    `.compute()` on it writes no Arrow cache file that two processes could collide on."""
    import evaluate  # here, not at the top: it imports transformers.pipelines, which --help skips

    return evaluate.load(str(EVALUATION_MODULES / name), keep_in_memory=True)


def compute_metric(name: str, **inputs) -> dict:
    """The module's own arithmetic (`_compute`) on in-memory arrays. Its public `.compute()`
    first encodes every value into an Arrow table one Python object at a time, the machinery
    that gathers predictions from several processes' cache files; Trainer has gathered them
    already, and every evaluation would pay for it. Same results (tests/unit/test_metrics.py)."""
    return load_metric(name)._compute(**inputs)


def argmax_logits(logits, labels):
    """Predicted ids in the labels' (batch, seq) shape, -100 where nothing was masked.

    Sparse-head logits (one row per masked token) are scattered back to their positions:
    Trainer's gathering trims the last batch by its number of *examples*, so predictions
    must be batch-shaped to survive it. (BERT's (MLM, NSP) logits go through
    `pretraining_logits_for_metrics`, which calls this for the MLM part.)"""
    ids = logits.argmax(dim=-1)
    if ids.shape == labels.shape:
        return ids
    preds = torch.full_like(labels, -100)
    preds[labels != -100] = ids
    return preds


def most_frequent_share(targets) -> float:
    """The accuracy of always answering the most frequent target (non-negative ints): the bar
    a model that learned nothing but frequencies would reach (`masked_accuracy`'s floor; the
    targets stand in for the predictions it also scores)."""
    targets = np.asarray(targets)
    return masked_accuracy(targets, targets)["majority_baseline_accuracy"]


def masked_accuracy(predictions: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy over masked tokens (labels not -100), and the accuracy of always predicting the
    most frequent masked token: the `masked_accuracy` module."""
    masked = labels != -100  # only these go in: a fraction of the (batch, seq) positions
    return compute_metric(
        "masked_accuracy", predictions=predictions[masked], references=labels[masked]
    )


def compute_mlm_metrics(eval_pred) -> dict:
    return masked_accuracy(np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids))


def perplexity(loss: float) -> float:
    """exp(loss), the masked-LM loss per masked token; inf where exp would overflow: the
    `perplexity_from_loss` module."""
    return compute_metric("perplexity_from_loss", losses=[loss])["perplexity"]


def add_perplexity(metrics: dict, prefix: str = "eval") -> dict:
    loss = metrics.get(f"{prefix}_loss")
    if loss is not None:
        metrics["perplexity"] = perplexity(loss)
    return metrics


def pretraining_logits_for_metrics(logits, labels):
    """BertForPreTraining's (MLM logits, NSP logits) -> (MLM ids, NSP ids, MLM loss sums).

    `labels` is (labels, next_sentence_label), as Trainer passes a model with two label names.
    Each example's summed masked-token cross-entropy comes along, so perplexity can be computed
    from the MLM loss alone (`eval_loss` is MLM + NSP)."""
    mlm_logits, nsp_logits = logits[0], logits[1]
    mlm_labels = labels[0]
    masked = mlm_labels != -100
    rows = mlm_logits if mlm_logits.dim() == 2 else mlm_logits[masked]  # sparse or dense head
    token_losses = torch.nn.functional.cross_entropy(
        rows.float(), mlm_labels[masked], reduction="none"
    )
    example = masked.nonzero()[:, 0]  # the example each masked token belongs to
    loss_sums = torch.zeros(len(mlm_labels), device=rows.device)
    loss_sums.index_add_(0, example, token_losses)
    return argmax_logits(mlm_logits, mlm_labels), nsp_logits.argmax(dim=-1), loss_sums


def compute_pretraining_metrics(eval_pred) -> dict:
    """Masked-token and next-sentence accuracy, each with its most-frequent-class baseline, and
    the MLM loss over all masked tokens (exp of it is the perplexity)."""
    mlm_ids, nsp_ids, loss_sums = (np.asarray(p) for p in eval_pred.predictions)
    mlm_labels, nsp_labels = (np.asarray(x) for x in eval_pred.label_ids)
    metrics = masked_accuracy(mlm_ids, mlm_labels)
    n_masked = int((mlm_labels != -100).sum())
    metrics["mlm_loss"] = float(loss_sums.sum() / n_masked) if n_masked else float("nan")
    nsp = masked_accuracy(nsp_ids, nsp_labels)  # the same question over sentence pairs
    metrics["nsp_accuracy"] = nsp["accuracy"]
    metrics["nsp_majority_baseline_accuracy"] = nsp["majority_baseline_accuracy"]
    return metrics


def minimal_pair_accuracy(good_scores, bad_scores, groups: dict | None = None) -> dict:
    """The share of pairs whose good sentence scores strictly higher (ties wrong), overall and
    per group ({field: {group: accuracy}}): the `minimal_pair_accuracy` module."""
    return compute_metric(
        "minimal_pair_accuracy", good_scores=good_scores, bad_scores=bad_scores, groups=groups
    )


def score_minimal_pairs(model, tokenizer, pairs, token_budget: int | None = None) -> dict:
    """Score `pairs` (recipes/data/minimal_pairs.py) by pseudo-log-likelihood, good and bad
    sentences in one batched pass: `minimal_pair_accuracy`'s result, and sentences/second."""
    from recipes.models.pll import TOKEN_BUDGET, pseudo_log_likelihoods, timed

    sentences = pairs.good + pairs.bad
    scores, seconds = timed(
        pseudo_log_likelihoods, model, tokenizer, sentences, token_budget or TOKEN_BUDGET
    )
    n = len(pairs.good)
    result = minimal_pair_accuracy(scores[:n], scores[n:], pairs.groups or None)
    result["sentences_per_second"] = len(sentences) / seconds if seconds else None
    return result


# ---------------------------------------------------------------------------------- classification
def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> dict:
    """Accuracy; with two classes also F1 of class 1 (GLUE's F1 for MRPC and QQP): the
    `classification` module."""
    return compute_metric(
        "classification", predictions=predictions, references=labels, num_labels=num_labels
    )


def compute_classification_metrics(eval_pred, num_labels: int) -> dict:
    """Trainer's `compute_metrics` for a classifier: its logits -> `classification_metrics`."""
    predictions = np.asarray(eval_pred.predictions).argmax(axis=-1)
    return classification_metrics(predictions, np.asarray(eval_pred.label_ids), num_labels)


def majority_baseline(train_labels, eval_labels, num_labels: int) -> dict:
    """Always predict the training data's most frequent label (looking at no held-out label):
    {label, accuracy, f1 with two classes}: the `majority_baseline` module's answer, scored by
    the `classification` module as any classifier's predictions are."""
    answer = compute_metric(
        "majority_baseline",
        references=np.asarray(eval_labels),
        train_labels=np.asarray(train_labels),
        num_labels=num_labels,
    )
    scores = classification_metrics(np.asarray(answer["predictions"]), eval_labels, num_labels)
    return {"label": answer["label"]} | scores
