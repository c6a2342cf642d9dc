"""Masked-token accuracy and its most-frequent-token floor, as an `evaluate` module.

    import evaluate
    metric = evaluate.load("recipes/evaluation/masked_accuracy")
    metric.compute(predictions=[5, 7, 7, 0], references=[5, 7, 9, -100])

The pretraining recipes score masked tokens with it (their `eval_accuracy`) and BERT's
next-sentence labels too (`eval_nsp_accuracy`: the same question over sentence pairs, whose
floor is the more frequent label).
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
The share of targets predicted right, over the targets that count: a reference of -100 (what
masked-LM labels hold at positions that were not masked) is left out. Next to it, the accuracy
of always answering the most frequent target: the bar that a model which learned nothing but
frequencies would reach, so an accuracy is read against it.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted token (or label) ids, one per reference.
    references (`list` of `int`): the true ids; -100 where there is nothing to predict.
Returns:
    accuracy (`float`): correct predictions / counted references (nan where none counts).
    majority_baseline_accuracy (`float`): the share of the most frequent counted reference.
Examples:
    >>> metric = evaluate.load("recipes/evaluation/masked_accuracy")
    >>> metric.compute(predictions=[5, 7, 7, 0], references=[5, 7, 9, -100])
    {'accuracy': 0.6666666666666666, 'majority_baseline_accuracy': 0.3333333333333333}
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MaskedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            format="numpy",  # arrays, not a Python list per token
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        counted = references != -100
        targets, predictions = references[counted], predictions[counted]
        if targets.size == 0:
            return {"accuracy": float("nan"), "majority_baseline_accuracy": float("nan")}
        return {
            "accuracy": float((predictions == targets).mean()),
            "majority_baseline_accuracy": float(np.bincount(targets).max() / targets.size),
        }
