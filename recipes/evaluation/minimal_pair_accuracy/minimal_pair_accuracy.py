"""Minimal-pair accuracy (BLiMP's measure), as an `evaluate` module.

    import evaluate
    metric = evaluate.load("recipes/evaluation/minimal_pair_accuracy")
    metric.compute(good_scores=[-10.0, -7.5, -3.0], bad_scores=[-12.0, -7.5, -2.0])

recipes.evaluate and a pretraining run's `minimal_pairs` score each pair's sentences by
pseudo-log-likelihood (recipes/models/pll.py) and pass the scores here.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
The share of minimal pairs whose good sentence the model scores strictly higher than the bad
one. A tie counts as wrong: a scorer that gives every sentence the same score (a constant, or
one blind to the difference) gets 0, not 0.5 or 1 (the trap BabyLM 2025 pointed out). With
`groups` ({grouping field: the group of each pair}) the accuracy of every group too.
"""

_KWARGS_DESCRIPTION = """
Args:
    good_scores (`list` of `float`): the score (e.g. pseudo-log-likelihood) of each good sentence.
    bad_scores (`list` of `float`): the score of each bad sentence, pair by pair.
    groups (`dict` of `str` to `list` of `str`, optional): for each grouping field (BLiMP's
        `UID`, `field`, ...), the group of each pair.
Returns:
    accuracy (`float`): pairs with good > bad / pairs (nan without pairs).
    pairs (`int`): the number of pairs.
    ties (`int`): pairs scored equal (counted wrong).
    by_group (`dict`): {field: {group: accuracy}}, with `groups` only.
Examples:
    >>> metric = evaluate.load("recipes/evaluation/minimal_pair_accuracy")
    >>> metric.compute(good_scores=[-10.0, -7.5, -3.0], bad_scores=[-12.0, -7.5, -2.0])
    {'accuracy': 0.3333333333333333, 'pairs': 3, 'ties': 1}
"""

_CITATION = """
@article{warstadt2020blimp,
  title={BLiMP: The Benchmark of Linguistic Minimal Pairs for English},
  author={Warstadt, Alex and Parrish, Alicia and Liu, Haokun and Mohananey, Anhad and Peng, Wei
    and Wang, Sheng-Fu and Bowman, Samuel R.},
  journal={Transactions of the Association for Computational Linguistics},
  volume={8}, pages={377--392}, year={2020}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MinimalPairAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"good_scores": datasets.Value("float64"), "bad_scores": datasets.Value("float64")}
            ),
            format="numpy",
        )

    def _compute(self, good_scores, bad_scores, groups=None):
        good, bad = np.asarray(good_scores, dtype=float), np.asarray(bad_scores, dtype=float)
        right = good > bad  # strictly: a tie is wrong
        result = {
            "accuracy": float(right.mean()) if right.size else float("nan"),
            "pairs": int(right.size),
            "ties": int((good == bad).sum()),
        }
        if groups:
            result["by_group"] = {}
            for name, values in groups.items():
                values = np.asarray(values)
                result["by_group"][name] = {
                    str(value): float(right[values == value].mean())
                    for value in dict.fromkeys(values.tolist())  # in first-seen order
                }
        return result
