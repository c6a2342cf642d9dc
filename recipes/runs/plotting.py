"""loss_curve.png: loss against optimizer step and, once there are evaluations, held-out
accuracy against the accuracy of always guessing the most frequent answer, from Trainer's log
history. A falling loss alone does not say whether the model learned anything beyond token
frequencies; accuracy above its floor does. Fine-tuning's figures too: the kept runs' losses and
the learning curve (test accuracy against labelled examples)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

# eval key -> (label, colour, its majority-baseline key), as recipes/runs/metrics.py names them
ACCURACIES = {
    "eval_accuracy": ("masked-token accuracy", "tab:green", "eval_majority_baseline_accuracy"),
    "eval_nsp_accuracy": (
        "next-sentence accuracy",
        "tab:purple",
        "eval_nsp_majority_baseline_accuracy",
    ),
}


def _series(log_history: list[dict], key: str) -> list[tuple[int, float]]:
    return [(e["step"], e[key]) for e in log_history if key in e and "step" in e]


def loss_curve_figure(
    log_history: list[dict], title: str = "", loss_label: str = "masked-LM cross-entropy"
):
    """The figure: a loss panel, and an accuracy panel below it if any evaluation logged an
    accuracy. None when the history holds neither a loss nor an eval loss."""
    train = _series(log_history, "loss")
    evals = _series(log_history, "eval_loss")
    eval_mlm = _series(log_history, "eval_mlm_loss")  # BERT: the masked-LM part of eval_loss
    accuracies = {key: _series(log_history, key) for key in ACCURACIES}
    accuracies = {key: points for key, points in accuracies.items() if points}
    if not train and not evals:
        return None
    rows = 2 if accuracies else 1
    fig, axes = plt.subplots(rows, 1, figsize=(7, 3.6 * rows + 0.6), dpi=110, sharex=True)
    loss_ax = axes[0] if rows == 2 else axes
    if train:
        loss_ax.plot(*zip(*train), label="train loss", color="tab:blue", linewidth=1.2)
    if evals:
        loss_ax.plot(*zip(*evals), "o-", label="eval loss", color="tab:orange", linewidth=1.5)
    if eval_mlm:
        loss_ax.plot(*zip(*eval_mlm), "s--", label="eval masked-LM part", color="tab:red")
    loss_ax.set_ylabel(loss_label)
    loss_ax.set_title(title)
    loss_ax.grid(alpha=0.3)
    loss_ax.legend()
    if accuracies:
        acc_ax = axes[1]
        for key, points in accuracies.items():
            label, colour, floor_key = ACCURACIES[key]
            acc_ax.plot(*zip(*points), "o-", label=f"held-out {label}", color=colour)
            floor = [e[floor_key] for e in log_history if floor_key in e]
            if floor:  # the same held-out set every time: one level, drawn across the panel
                acc_ax.axhline(
                    floor[-1], linestyle="--", color=colour, alpha=0.7,
                    label=f"most frequent {'label' if 'nsp' in key else 'token'}: {floor[-1]:.3f}",
                )  # fmt: skip
        acc_ax.set_ylabel("accuracy")
        acc_ax.grid(alpha=0.3)
        acc_ax.legend(fontsize="small")
    (axes[-1] if rows == 2 else axes).set_xlabel("optimizer step")
    fig.tight_layout()
    return fig


def plot_loss_curve(
    log_history: list[dict],
    path: Path,
    title: str = "",
    loss_label: str = "masked-LM cross-entropy",
) -> Path | None:
    """Write loss_curve_figure to `path` (PNG); None, and no file, if there is nothing to plot."""
    fig = loss_curve_figure(log_history, title, loss_label)
    if fig is None:
        return None
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- fine-tuning
def _figure():
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    return fig, ax


def _save(fig, ax, title: str, path: Path) -> Path:
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_fine_tuning(histories: dict, path: Path, title: str) -> Path:
    """Train and validation loss against step, one colour per run (pretrained, random init)."""
    fig, ax = _figure()
    for (name, history), color in zip(histories.items(), ["tab:blue", "tab:gray"]):
        train, evals = _series(history, "loss"), _series(history, "eval_loss")
        if train:
            ax.plot(*zip(*train), color=color, linewidth=1.0, label=f"{name}: train")
        if evals:
            ax.plot(*zip(*evals), "o--", color=color, label=f"{name}: validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("classification cross-entropy")
    return _save(fig, ax, title, path)


def plot_learning_curve(
    rows: list[dict], majority: float, path: Path, title: str, sides: tuple[str, ...]
) -> Path:
    """Test accuracy against labelled examples (log scale): each side's (each key of `sides`
    in the rows: the pretrained model, the control) mean with its standard deviation over seeds
    as error bars and every seed as a dot; the majority floor."""
    fig, ax = _figure()
    xs = [row["labels"] for row in rows]
    for side, colour in zip(sides, ("tab:blue", "tab:gray")):
        if side not in rows[0]:
            continue
        means = [row[side]["mean"] for row in rows]
        spread = [row[side]["std"] or 0.0 for row in rows]
        ax.errorbar(xs, means, yerr=spread, fmt="o-", color=colour, capsize=3, label=side)
        for x, row in zip(xs, rows):
            ax.scatter([x] * len(row[side]["accuracy"]), row[side]["accuracy"], s=9,
                       color=colour, alpha=0.45)  # fmt: skip
    ax.axhline(majority, linestyle="--", color="tab:red", alpha=0.7,
               label=f"majority label: {majority:.3f}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:,}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("test accuracy")
    return _save(fig, ax, title, path)
