"""A run records what it ran: `--config OUT/run_config.yaml --output_dir NEW` reruns it exactly."""

import pytest
import torch
import yaml
from helpers import run_module, tiny
from safetensors.torch import load_file

from recipes.models.families import FAMILIES, MLM_FAMILIES

# disable_tqdm left to the recipe: `auto`, decided by what stdout is
TINY = tiny(learning_rate="2e-3", max_steps=6, eval_steps=3, save_steps=3, disable_tqdm=None)


@pytest.mark.parametrize("family", MLM_FAMILIES)
def test_run_config_reruns_to_the_same_weights(tmp_path, corpus_files, bpe_tokenizer_dir, family):
    first = tmp_path / "first"
    run = run_module(
        "recipes.pretrain_mlm", "--config", FAMILIES[family].tiny_config,
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir),
        "--output_dir", str(first), *TINY,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    # what was set, and where: the YAML's values and the command line's both came through
    assert "learning_rate: 0.002  (command line)" in run.stdout
    assert "hidden_size: 32  (command line)" in run.stdout
    printed = run.stdout.split("settings that differ")[1].split("precision:")[0]
    assert "report_to" not in printed  # a recipe default equal to TrainingArguments' own
    recorded = (first / "run_config.yaml").read_text()
    assert "--config" in recorded.splitlines()[2]  # the rerun command, in the header
    settings = yaml.safe_load(recorded)
    assert settings["learning_rate"] == 2e-3 and settings["model_type"] == family
    # Machine-detected values are not inherited: `bf16: auto` stays auto and a use_cpu derived
    # from the missing GPU is left out, so a rerun elsewhere detects them again.
    assert settings["bf16"] == "auto"
    assert "use_cpu" not in settings
    # stdout is a pipe here, as in a log file: no progress bars, and the run says why; Trainer
    # still prints its log lines. A rerun in a terminal decides again (`auto`).
    assert "disable_tqdm: auto  # derived: disable_tqdm auto, stdout is not a terminal" in recorded
    log = run.stdout + run.stderr
    assert "\r" not in log and "\x1b[" not in log and "it/s]" not in log
    assert "'loss': " in run.stdout

    second = tmp_path / "second"
    rerun = run_module(
        "recipes.pretrain_mlm", "--config", str(first / "run_config.yaml"),
        "--output_dir", str(second),
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=0), name
