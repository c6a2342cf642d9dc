"""The majority-label baseline of a classification task, as an `evaluate` module.

    import evaluate
    metric = evaluate.load("recipes/evaluation/majority_baseline")
    metric.compute(references=[0, 1, 1, 0], train_labels=[1, 1, 0], num_labels=2)

The fine-tuning recipe puts it beside every result: a fine-tuned model is read against it.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Always answer the training data's most frequent label (the lowest id on a tie), looking at no
held-out label, and score that constant answer on the held-out references as the
`classification` module does: accuracy, and with two classes the F1 of class 1.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): the held-out (validation or test) label ids.
    train_labels (`list` of `int`): the training data's label ids; the answer is their most
        frequent one.
    num_labels (`int`): the number of classes; F1 is reported where it is 2.
Returns:
    label (`int`): the label always answered.
    accuracy (`float`): its accuracy on `references`.
    f1 (`float`, two classes only): its F1 of class 1.
Examples:
    >>> metric = evaluate.load("recipes/evaluation/majority_baseline")
    >>> metric.compute(references=[0, 1, 1, 0], train_labels=[1, 1, 0], num_labels=2)
    {'label': 1, 'accuracy': 0.5, 'f1': 0.6666666666666666}
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MajorityBaseline(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"references": datasets.Value("int64")}),
            format="numpy",
        )

    def _compute(self, references, train_labels, num_labels):
        references = np.asarray(references)
        label = int(np.bincount(np.asarray(train_labels), minlength=num_labels).argmax())
        predictions = np.full_like(references, label)
        # the classification module's scores; each module stands alone, so they are written out
        metrics = {"label": label, "accuracy": float((predictions == references).mean())}
        if num_labels == 2:
            tp = int(((predictions == 1) & (references == 1)).sum())
            predicted, actual = int((predictions == 1).sum()), int((references == 1).sum())
            metrics["f1"] = 2 * tp / (predicted + actual) if predicted + actual else 0.0
        return metrics
