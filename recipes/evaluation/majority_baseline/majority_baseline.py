"""The majority-label baseline of a classification task, as an `evaluate` module.

    import evaluate
    metric = evaluate.load("recipes/evaluation/majority_baseline")
    metric.compute(references=[0, 1, 1, 0], train_labels=[1, 1, 0], num_labels=2)

The fine-tuning recipe puts it beside every result: a fine-tuned model is read against it. It
scores the answer with the `classification` module (recipes/runs/metrics.py majority_baseline),
so accuracy and F1 are computed in one place.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Always answer the training data's most frequent label (the lowest id on a tie), looking at no
held-out label: that answer, repeated for every held-out reference, to be scored like any
classifier's predictions.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): the held-out (validation or test) label ids.
    train_labels (`list` of `int`): the training data's label ids; the answer is their most
        frequent one.
    num_labels (`int`): the number of classes.
Returns:
    label (`int`): the label always answered.
    predictions (`list` of `int`): it, once per reference.
Examples:
    >>> metric = evaluate.load("recipes/evaluation/majority_baseline")
    >>> metric.compute(references=[0, 1, 1, 0], train_labels=[1, 1, 0], num_labels=2)
    {'label': 1, 'predictions': [1, 1, 1, 1]}
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
        return {"label": label, "predictions": [label] * len(references)}
