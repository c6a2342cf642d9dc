"""Experiment tracking from the YAML: `report_to: tensorboard` writes event files to
output_dir/runs (transformers v5 has no `logging_dir`; TENSORBOARD_LOGGING_DIR overrides it);
a tracker that is not installed stops the run before any work, with the install command."""

import importlib.util
from types import SimpleNamespace

import pytest
import yaml
from helpers import run_module, tiny

from recipes.errors import UserError
from recipes.runs.start import configure_tracking


def test_report_to_tensorboard_from_the_yaml_writes_event_files(
    tmp_path, corpus_files, bpe_tokenizer_dir
):
    config = tmp_path / "tb.yaml"
    config.write_text(yaml.safe_dump({"report_to": ["tensorboard"]}))
    out = tmp_path / "out"
    run = run_module(
        "recipes.pretrain_mlm", "--config", str(config), "--train_files", *corpus_files,
        "--tokenizer_name_or_path", str(bpe_tokenizer_dir), "--output_dir", str(out),
        *tiny(max_steps=4, eval_steps=2, save_steps=100),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    events = list((out / "runs").rglob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event files under {out / 'runs'}"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(events[0].parent)).Reload().Tags()["scalars"]
    assert "train/loss" in tags and "eval/loss" in tags


@pytest.mark.parametrize("tracker", ["wandb", "trackio"])
def test_a_tracker_that_is_not_installed_is_named_with_its_install_command(tracker):
    if importlib.util.find_spec(tracker):
        pytest.skip(f"{tracker} is installed here")
    args = SimpleNamespace(report_to=[tracker], output_dir="out", process_index=0)
    with pytest.raises(UserError, match=f"report_to: {tracker}.*pip install {tracker}"):
        configure_tracking(args)
