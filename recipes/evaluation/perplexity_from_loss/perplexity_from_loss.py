"""Perplexity from a cross-entropy loss, as an `evaluate` module.

    import evaluate
    metric = evaluate.load("recipes/evaluation/perplexity_from_loss")
    metric.compute(losses=[2.5])  # {'perplexity': 12.182493960703473}

The pretraining recipes report the perplexity of their masked-LM loss with it (`perplexity`,
and `perplexity_before` for continued pretraining). Unlike the Hub's `perplexity`, which runs a
causal LM over texts, it takes the loss a run already computed: a masked LM has no
left-to-right likelihood to score texts with.
"""

import math

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
exp of the mean cross-entropy loss (natural log) per predicted token: for a masked LM, per
masked token. A loss of 50 or more (or nan) gives inf, where exp would overflow or mean nothing.
"""

_KWARGS_DESCRIPTION = """
Args:
    losses (`list` of `float`): the loss of each predicted token, or one mean loss (e.g. a
        Trainer's `eval_loss`).
Returns:
    perplexity (`float`): exp(mean of `losses`).
Examples:
    >>> metric = evaluate.load("recipes/evaluation/perplexity_from_loss")
    >>> metric.compute(losses=[2.5])
    {'perplexity': 12.182493960703473}
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PerplexityFromLoss(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"losses": datasets.Value("float64")}),
            format="numpy",
        )

    def _compute(self, losses):
        loss = float(np.mean(losses))
        return {"perplexity": math.exp(loss) if loss < 50 else float("inf")}
