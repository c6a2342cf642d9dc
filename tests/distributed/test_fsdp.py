"""FSDP for real: two CPU processes shard a tiny model with FSDP2 (`fully_shard`, gloo), the
family's layer class as the unit (recipes/models/families.py); the run saves a model that a stock
pipeline loads, and trains as a single process does on the same global batch.

accelerate 1.15 enables FSDP only on accelerator devices, so `fsdp_on_cpu` (tests/helpers/) makes its
state FSDP on CPU processes; the recipe runs unchanged.

The single-process run takes the same global batch of 8 as 4 x 2 accumulation steps: its two
micro-batches are then exactly the two ranks' batches, masked alike (masks are a function of
the seed and the batch, recipes/data/masking.py), and the loss is normalised by the step's
masked-token count either way. Measured (CPU, torch 2.13): the logged losses are equal at every
step for both families and the weights differ by < 2e-8 (reduction order), so the tolerance
below is tight and a real divergence (a rank training on other data, a loss normalised per
rank) fails it.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import REPO, tiny
from test_distributed import free_port
from transformers import AutoModelForMaskedLM, pipeline

from recipes.models.checkpoints import weights_checksum
from recipes.models.families import FAMILIES, MLM_FAMILIES

STEPS, BATCH = 4, 4  # per process: two processes = a global batch of 8
LOSS_TOLERANCE = 1e-4  # absolute, on every logged training loss (same data, same masks)
WEIGHT_TOLERANCE = 1e-5  # absolute, on every saved weight


def fsdp_config(tmp_path) -> str:
    config = {
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "FSDP",
        "mixed_precision": "no", "num_machines": 1, "num_processes": 2, "machine_rank": 0,
        "rdzv_backend": "static", "same_network": True, "use_cpu": False,
        "fsdp_config": {
            "fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_reshard_after_forward": True, "fsdp_state_dict_type": "FULL_STATE_DICT",
            "fsdp_cpu_ram_efficient_loading": False, "fsdp_offload_params": False,
        },
    }  # fmt: skip
    path = tmp_path / "fsdp2-cpu.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def launch(launcher: list[str], family: str, out, corpus_files, tokenizer, accumulation: int):
    # the launcher's settings only: none inherited from the shell or an earlier test
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "FSDP_"))}
    env |= {"PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'helpers'}", "OMP_NUM_THREADS": "1"}
    args = [
        "--config", FAMILIES[family].tiny_config, "--train_files", *corpus_files,
        "--tokenizer_name_or_path", str(tokenizer), "--output_dir", str(out),
        *tiny(max_steps=STEPS, per_device_train_batch_size=BATCH, eval_steps=STEPS,
              save_steps=STEPS, logging_steps=1, use_cpu=True, bf16=False,
              gradient_accumulation_steps=accumulation),
    ]  # fmt: skip
    command = [sys.executable, "-m", *launcher, "recipes.pretrain_mlm", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def train(launcher: list[str], family: str, out, *data, accumulation: int):
    run = launch(launcher, family, out, *data, accumulation)
    assert run.returncode == 0, run.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    checksums = set(
        re.findall(r"final weights checksum \(rank \d of \d\): ([0-9a-f]{12})", run.stdout)
    )
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry], checksums


@pytest.mark.parametrize("family", MLM_FAMILIES)
def test_fsdp2_run_saves_a_stock_model_at_the_single_process_loss(
    family, tmp_path, corpus_files, bpe_tokenizer_dir
):
    fsdp = [
        "accelerate.commands.launch", "--config_file", fsdp_config(tmp_path),
        "--main_process_port", str(free_port()), "-m", "fsdp_on_cpu",
    ]  # fmt: skip
    data = (corpus_files, bpe_tokenizer_dir)
    refusal = FAMILIES[family].fsdp2_refusal
    if refusal:  # the family's record says why FSDP2 cannot train it: one message, no training
        run = launch(fsdp, family, tmp_path / "fsdp", *data, 1)
        assert run.returncode != 0 and refusal in " ".join(run.stderr.split()), run.stderr[-3000:]
        # (the traceback below it is accelerate's launcher reporting the failed ranks)
        assert "ddp.yaml" in run.stderr and "raise UserError" not in run.stderr
        assert not (tmp_path / "fsdp" / "model.safetensors").exists()
        return
    sharded, checksums = train(fsdp, family, tmp_path / "fsdp", *data, accumulation=1)
    single, _ = train(["fsdp_on_cpu"], family, tmp_path / "one", *data, accumulation=2)
    assert len(sharded) == len(single) == STEPS
    assert max(abs(a - b) for a, b in zip(sharded, single)) <= LOSS_TOLERANCE, (sharded, single)

    # the full weights were gathered on every rank: one checksum, the saved model's
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "fsdp")
    assert checksums == {weights_checksum(model)}
    reference = AutoModelForMaskedLM.from_pretrained(tmp_path / "one").state_dict()
    for name, value in model.state_dict().items():
        assert torch.allclose(value, reference[name], rtol=0, atol=WEIGHT_TOLERANCE), name
    fill = pipeline("fill-mask", model=str(tmp_path / "fsdp"), top_k=2)
    assert len(fill(f"Shall I compare thee to a summer's {fill.tokenizer.mask_token}?")) == 2
