"""Classification accuracy, and with two classes the F1 of class 1, as an `evaluate` module.

    import evaluate
    metric = evaluate.load("recipes/evaluation/classification")
    metric.compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1], num_labels=2)

The fine-tuning recipe scores every run with it (`eval_accuracy`, `test_accuracy`, `test_f1`).
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Accuracy: the share of examples whose predicted label is the true one. With two classes also
the F1 of class 1 (2 x true positives / (predicted positives + actual positives), 0 where both
are 0): GLUE's F1 for MRPC and QQP, where class 1 is the minority one that matters.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted label ids.
    references (`list` of `int`): true label ids.
    num_labels (`int`): the number of classes; F1 is reported where it is 2.
Returns:
    accuracy (`float`): correct predictions / examples.
    f1 (`float`, two classes only): F1 of class 1.
Examples:
    >>> metric = evaluate.load("recipes/evaluation/classification")
    >>> metric.compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1], num_labels=2)
    {'accuracy': 0.75, 'f1': 0.8}
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            format="numpy",
        )

    def _compute(self, predictions, references, num_labels):
        predictions, references = np.asarray(predictions), np.asarray(references)
        metrics = {"accuracy": float((predictions == references).mean())}
        if num_labels == 2:
            tp = int(((predictions == 1) & (references == 1)).sum())
            predicted, actual = int((predictions == 1).sum()), int((references == 1).sum())
            metrics["f1"] = 2 * tp / (predicted + actual) if predicted + actual else 0.0
        return metrics
