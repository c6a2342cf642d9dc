"""loss_curve.png shows learning: loss, and held-out accuracy against its most-frequent floor."""

import matplotlib.image
import matplotlib.pyplot as plt
import pytest

from recipes.runs.plotting import loss_curve_figure, plot_loss_curve

TRAIN = [{"step": s, "loss": 9.0 - s / 100, "learning_rate": 1e-3} for s in (50, 100, 150, 200)]
EVAL_MLM = [
    {"step": 100, "eval_loss": 8.0, "eval_accuracy": 0.06, "eval_majority_baseline_accuracy": 0.08},
    {"step": 200, "eval_loss": 7.0, "eval_accuracy": 0.15, "eval_majority_baseline_accuracy": 0.08},
]
EVAL_NSP = [
    e | {"eval_mlm_loss": e["eval_loss"] - 0.7, "eval_nsp_accuracy": acc}
    | {"eval_nsp_majority_baseline_accuracy": 0.51}
    for e, acc in zip(EVAL_MLM, (0.50, 0.55))
]  # fmt: skip


def labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


def floors(ax) -> list[float]:
    """y of the horizontal dashed lines."""
    return [
        line.get_ydata()[0]
        for line in ax.get_lines()
        if line.get_linestyle() == "--" and len(set(line.get_ydata())) == 1
    ]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_accuracy_panel_with_its_majority_floor():
    fig = loss_curve_figure(TRAIN + EVAL_MLM, loss_label="masked-LM cross-entropy")
    loss_ax, acc_ax = fig.axes
    assert labels(loss_ax) == ["train loss", "eval loss"]
    assert loss_ax.get_ylabel() == "masked-LM cross-entropy"
    assert labels(acc_ax)[0] == "held-out masked-token accuracy"
    [accuracy] = [line for line in acc_ax.get_lines() if line.get_label().startswith("held-out")]
    assert list(accuracy.get_xdata()) == [100, 200]
    assert list(accuracy.get_ydata()) == [0.06, 0.15]
    assert floors(acc_ax) == [pytest.approx(0.08)]
    assert acc_ax.get_xlabel() == "optimizer step"


def test_bert_adds_nsp_accuracy_its_floor_and_the_mlm_part_of_the_loss():
    fig = loss_curve_figure(TRAIN + EVAL_NSP, loss_label="masked-LM + NSP cross-entropy")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == "masked-LM + NSP cross-entropy"
    assert "eval masked-LM part" in labels(loss_ax)
    assert {"held-out masked-token accuracy", "held-out next-sentence accuracy"} <= set(
        labels(acc_ax)
    )
    assert sorted(floors(acc_ax)) == [pytest.approx(0.08), pytest.approx(0.51)]


def test_png_has_two_panels_with_evals_and_one_without(tmp_path):
    two = plot_loss_curve(TRAIN + EVAL_MLM, tmp_path / "two.png", title="run")
    one = plot_loss_curve(TRAIN, tmp_path / "one.png", title="run")
    assert two == tmp_path / "two.png" and one == tmp_path / "one.png"
    assert two.read_bytes().startswith(b"\x89PNG") and one.read_bytes().startswith(b"\x89PNG")
    height_two, width_two = matplotlib.image.imread(two).shape[:2]
    height_one, width_one = matplotlib.image.imread(one).shape[:2]
    assert width_two == width_one
    assert height_two > 1.5 * height_one  # a second panel below the loss
    assert len(loss_curve_figure(TRAIN).axes) == 1


def test_nothing_to_plot_writes_nothing(tmp_path):
    assert plot_loss_curve([{"step": 1, "learning_rate": 1e-3}], tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()
