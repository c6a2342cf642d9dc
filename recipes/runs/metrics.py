"""Evaluation metrics computed locally (no `evaluate.load`, which fetches scripts from the Hub).

With the sparse head the model returns one logit row per masked token; with the stock head it
returns (batch, seq, vocab). `preprocess_logits_for_metrics` reduces either to argmax ids
before Trainer gathers them, so evaluation never holds vocab-sized tensors for the whole set.
Classification accuracy/F1 and the majority baseline are here too.
"""

import math

import numpy as np
import torch


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


def masked_accuracy(predictions: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy over masked tokens, and the accuracy of always predicting the most frequent
    masked token (the bar a model that learned nothing would reach)."""
    targets = labels[labels != -100]
    preds = predictions[labels != -100]
    if targets.size == 0:
        return {"accuracy": float("nan"), "majority_baseline_accuracy": float("nan")}
    majority = np.bincount(targets).max() / targets.size
    return {
        "accuracy": float((preds == targets).mean()),
        "majority_baseline_accuracy": float(majority),
    }


def compute_mlm_metrics(eval_pred) -> dict:
    return masked_accuracy(np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids))


def add_perplexity(metrics: dict, prefix: str = "eval") -> dict:
    loss = metrics.get(f"{prefix}_loss")
    if loss is not None:
        metrics["perplexity"] = math.exp(loss) if loss < 50 else float("inf")
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
    metrics["nsp_accuracy"] = float((nsp_ids == nsp_labels).mean())
    majority = np.bincount(nsp_labels).max() / nsp_labels.size
    metrics["nsp_majority_baseline_accuracy"] = float(majority)
    return metrics


# ---------------------------------------------------------------------------------- metrics
def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> dict:
    """Accuracy; with two classes also F1 of class 1 (GLUE's F1 for MRPC and QQP)."""
    metrics = {"accuracy": float((predictions == labels).mean())}
    if num_labels == 2:
        tp = int(((predictions == 1) & (labels == 1)).sum())
        predicted, actual = int((predictions == 1).sum()), int((labels == 1).sum())
        metrics["f1"] = 2 * tp / (predicted + actual) if predicted + actual else 0.0
    return metrics


def majority_baseline(train_labels, eval_labels, num_labels: int) -> dict:
    """Always predict the training data's most frequent label (looking at no held-out label)."""
    majority = int(np.bincount(np.asarray(train_labels), minlength=num_labels).argmax())
    eval_labels = np.asarray(eval_labels)
    constant = np.full_like(eval_labels, majority)
    return {"label": majority, **classification_metrics(constant, eval_labels, num_labels)}
