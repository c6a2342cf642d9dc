"""What `python -m recipes.evaluate` hands back: a table on stdout (one row per model or
checkpoint), which figures compare between which models, results.json, and for a series of
checkpoints a learning curve (each figure against tokens seen) beside it."""

import json
import math
from pathlib import Path

# column -> (header, format)
COLUMNS = {
    "model": ("model", "s"),
    "step": ("step", "d"),
    "tokens_seen": ("tokens seen", ",d"),
    "tokenizer": ("tokenizer", "s"),
    "masked_accuracy": ("masked acc", ".3f"),
    "most_frequent_token_accuracy": ("floor", ".3f"),
    "perplexity": ("perplexity", ".1f"),
    "pll_per_word": ("PLL/word", ".3f"),
    "pll_per_char": ("PLL/char", ".4f"),
    "minimal_pairs_accuracy": ("pairs acc", ".3f"),
    "sentences_per_second": ("sent/s", ".1f"),
}


def _cell(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def table(rows: list[dict]) -> str:
    """The rows as a fixed-width table, with only the columns some row has."""
    columns = [c for c in COLUMNS if any(row.get(c) is not None for row in rows)]
    cells = [[_cell(row.get(c), COLUMNS[c][1]) for c in columns] for row in rows]
    headers = [COLUMNS[c][0] for c in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    for r in cells:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths))))  # fmt: skip
    return "\n".join(lines)


def comparability(rows: list[dict]) -> list[str]:
    """Which figures compare between which models: per-token figures within one tokenizer,
    per-word and per-character PLL and minimal pairs across all."""
    lines = []
    by_tokenizer = {}
    for row in rows:
        by_tokenizer.setdefault(row["tokenizer"], []).append(row["model"])
    if any(row.get("masked_accuracy") is not None for row in rows):
        if len(by_tokenizer) == 1:
            lines.append(
                "masked acc, floor, perplexity: comparable between all rows (one tokenizer, "
                f"{next(iter(by_tokenizer))}; the same masked positions)."
            )
        else:
            groups = "; ".join(
                f"{tok}: {', '.join(models)}" for tok, models in by_tokenizer.items()
            )
            lines.append(
                "masked acc, floor, perplexity are per token: comparable only between rows of "
                f"one tokenizer ({groups})."
            )
        lines.append(
            "PLL/word and PLL/char: comparable between all rows (the same text, counted in "
            "words and characters, not tokens)."
        )
    if any(row.get("minimal_pairs_accuracy") is not None for row in rows):
        lines.append("pairs acc: comparable between all rows (the same pairs).")
    return lines


def write_results(path: Path, rows: list[dict], about: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(about | {"rows": rows}, indent=2) + "\n", encoding="utf-8")


# the learning curve's panels: (row key, label, key of its floor)
CURVES = [
    [
        ("masked_accuracy", "masked-token accuracy", "most_frequent_token_accuracy"),
        ("minimal_pairs_accuracy", "minimal-pair accuracy", None),
    ],
    [("pll_per_word", "pseudo-log-likelihood per word", None)],
]


def plot_learning_curve(rows: list[dict], path: Path, title: str) -> Path | None:
    """Each figure against tokens seen, one line per run (rows with the same `series`); None,
    and no file, unless some run has two rows or more with tokens seen."""
    series = {}
    for row in rows:
        if row.get("tokens_seen") is not None:
            series.setdefault(row["series"], []).append(row)
    if not any(len(points) > 1 for points in series.values()):
        return None
    import matplotlib.pyplot as plt

    from recipes.runs.plotting import matplotlib  # noqa: F401  (sets the Agg backend)

    panels = [[c for c in panel if any(r.get(c[0]) is not None for r in rows)] for panel in CURVES]
    panels = [p for p in panels if p]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3.4 * len(panels) + 0.6), dpi=110,
                             sharex=True, squeeze=False)  # fmt: skip
    for ax, panel in zip(axes[:, 0], panels):
        for key, label, floor in panel:
            for name, points in series.items():
                points = [p for p in points if p.get(key) is not None]
                if not points:
                    continue
                tag = f"{label} ({name})" if len(series) > 1 else label
                xs = [p["tokens_seen"] for p in points]
                ax.plot(xs, [p[key] for p in points], "o-", label=tag)
                if floor and points[-1].get(floor) is not None:
                    ax.axhline(points[-1][floor], linestyle="--", alpha=0.6,
                               label=f"most frequent token: {points[-1][floor]:.3f}")  # fmt: skip
        ax.set_ylabel(panel[0][1] if len(panel) == 1 else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("tokens seen")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
