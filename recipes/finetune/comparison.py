"""Pretrained vs random weights, as a measurement: label counts x seeds x sides x learning rates;
the summary (mean, spread, standard error of the difference) and its tables.

One fine-tuning run says little: on a few thousand examples two seeds of the same run differ by
0.01-0.03 accuracy, as much as the gap people read as "pretraining helped". So the comparison is
a grid of runs, each side's learning rate picked on the validation split, reported on the test
split.
"""

import math

import numpy as np

from recipes.arguments import ComparisonArguments

PRETRAINED, CONTROL = "pretrained", "random init"


def label_counts(requested: list[int] | None, available: int) -> list[int]:
    """The learning curve's x values: sorted, at most the training split's size, no repeats."""
    return sorted({min(n, available) for n in requested or [available]})


def learning_rates(args: ComparisonArguments, learning_rate: float) -> dict[str, list[float]]:
    """Learning rates each side tries: the sweep's, or its one rate."""
    if args.sweep_learning_rates:
        rates = sorted(set(args.sweep_learning_rates))
        return {PRETRAINED: rates, CONTROL: rates}
    return {PRETRAINED: [learning_rate], CONTROL: [args.control_learning_rate or learning_rate]}


def run_steps(examples: int, batch: int, epochs: float, min_steps: int) -> int:
    """Optimizer steps for one run: `epochs` passes over `examples`, at least `min_steps`."""
    return max(math.ceil(math.ceil(examples / batch) * epochs), min_steps, 1)


# ------------------------------------------------------------------------------ summary
def summarize(runs: list[dict], sides: list[str]) -> list[dict]:
    """One row per label count: per side the kept learning rate (best mean validation
    accuracy), its test accuracies over seeds, mean and standard deviation; and the difference
    pretrained - control with its standard error, sqrt(sd_p^2 / k + sd_c^2 / k)."""
    rows = []
    for n in sorted({r["labels"] for r in runs}):
        row = {"labels": n}
        for side in sides:
            mine = [r for r in runs if r["labels"] == n and r["side"] == side]
            by_rate = {}
            for r in mine:
                by_rate.setdefault(r["learning_rate"], []).append(r)
            rate = max(by_rate, key=lambda lr: np.mean([r["validation_accuracy"] for r in by_rate[lr]]))  # fmt: skip
            kept = by_rate[rate]
            accuracy = [r["test_accuracy"] for r in kept]
            row[side] = {
                "learning_rate": rate,
                "validation_accuracy": float(np.mean([r["validation_accuracy"] for r in kept])),
                "accuracy": accuracy,
                "mean": float(np.mean(accuracy)),
                "std": float(np.std(accuracy, ddof=1)) if len(accuracy) > 1 else None,
                **(
                    {"f1": float(np.mean([r["test_f1"] for r in kept]))}
                    if "test_f1" in kept[0]
                    else {}
                ),  # fmt: skip
            }
        if CONTROL in row and PRETRAINED in row:
            p, c = row[PRETRAINED], row[CONTROL]
            row["difference"] = p["mean"] - c["mean"]
            k = len(p["accuracy"])
            row["difference_se"] = (
                math.sqrt((p["std"] ** 2 + c["std"] ** 2) / k) if p["std"] is not None else None
            )
        rows.append(row)
    return rows


def _pm(side: dict) -> str:
    return f"{side['mean']:.3f}" + (f" ± {side['std']:.3f}" if side["std"] is not None else "")


def difference_text(row: dict) -> str:
    """'+0.081 (5.2 standard errors)', or the difference alone with one seed."""
    text = f"{row['difference']:+.3f}"
    se = row.get("difference_se")
    if se is None:
        return text + " (one seed: no standard error)"
    return text + (f" ({row['difference'] / se:.1f} standard errors)" if se > 0 else " (SE 0)")


def table(rows: list[dict], seeds: int) -> tuple[list[str], list[list[str]]]:
    """Header and cells: labels, each side's mean ± sd (its learning rate), the difference."""
    sides = [s for s in (PRETRAINED, CONTROL) if s in rows[0]]
    header = ["labels"] + [f"{s} (mean ± sd over {seeds} seed{'s' * (seeds > 1)})" for s in sides]
    if len(sides) == 2:
        header.append("difference")
    cells = []
    for row in rows:
        line = [f"{row['labels']:,}"]
        line += [f"{_pm(row[s])} (lr {row[s]['learning_rate']:g})" for s in sides]
        if len(sides) == 2:
            line.append(difference_text(row))
        cells.append(line)
    return header, cells


def text_table(rows: list[dict], seeds: int, floor: str) -> str:
    header, cells = table(rows, seeds)
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)) for line in [header, *cells]]
    return "\n".join(lines + [floor])


def markdown_table(rows: list[dict], seeds: int) -> str:
    header, cells = table(rows, seeds)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
