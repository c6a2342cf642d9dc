"""FSDP for real: two CPU processes shard a tiny model with FSDP2 (`fully_shard`, gloo), the
family's layer class as the unit (recipes/families.py), and the run should save a model that a
stock pipeline loads, at the loss of a single-process run of the same global batch.

accelerate 1.15 enables FSDP only on accelerator devices, so `fsdp_on_cpu` (tests/) makes its
state FSDP on CPU processes; the recipe runs unchanged. Today both families fail, for reasons
outside this repository, so the test is a strict xfail that says which (a fix upstream turns
it into a failure to be acted on):
- RoBERTa: FSDP2 raises "Parameter 'lm_head.decoder.bias' is shared with a parameter already
  managed by another FSDP group" at the first forward (the tied LM-head bias; why
  accelerate_configs/fsdp.yaml stays on FSDP1 for GPUs).
- ModernBERT: trains (loss logged at steps 2 and 4), then saving the first checkpoint fails on
  rank 0 in save_pretrained: the full state dict still holds DTensors, whose gather is a
  collective rank 1 never joins (gloo: "Received data size doesn't match expected size").
"""

import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import REPO, tiny
from test_distributed import free_port
from transformers import pipeline

pytestmark = pytest.mark.slow  # trains in real processes

STEPS, BATCH = 4, 4  # per process: two processes = a global batch of 8
LOSS_TOLERANCE = 0.02  # absolute, on the final training loss (same data, same masks)


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


def train(launcher: list[str], family: str, out, corpus_files, tokenizer, batch: int):
    env = dict(os.environ, PYTHONPATH=f"{REPO}:{REPO / 'tests'}", OMP_NUM_THREADS="1")
    args = [
        "--config", f"recipes/configs/{family}-tiny.yaml", "--train_files", *corpus_files,
        "--tokenizer_name_or_path", str(tokenizer), "--output_dir", str(out),
        *tiny(max_steps=STEPS, per_device_train_batch_size=batch, eval_steps=STEPS,
              save_steps=STEPS, logging_steps=1, use_cpu=True, bf16=False),
    ]  # fmt: skip
    command = [sys.executable, "-m", *launcher, "recipes.pretrain_mlm", *args]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.mark.xfail(strict=True, reason="FSDP2 on accelerate 1.15 + torch 2.13: module docstring")
@pytest.mark.parametrize("family", ["modernbert", "roberta"])
def test_fsdp2_run_saves_a_stock_model_at_the_single_process_loss(
    family, tmp_path, corpus_files, bpe_tokenizer_dir
):
    fsdp = [
        "accelerate.commands.launch", "--config_file", fsdp_config(tmp_path),
        "--main_process_port", str(free_port()), "-m", "fsdp_on_cpu",
    ]  # fmt: skip
    sharded = train(fsdp, family, tmp_path / "fsdp", corpus_files, bpe_tokenizer_dir, BATCH)
    single = train(
        ["fsdp_on_cpu"], family, tmp_path / "one", corpus_files, bpe_tokenizer_dir, 2 * BATCH
    )
    assert len(sharded) == len(single) == STEPS
    assert abs(sharded[-1] - single[-1]) <= LOSS_TOLERANCE, (sharded, single)
    fill = pipeline("fill-mask", model=str(tmp_path / "fsdp"), top_k=2)
    assert len(fill(f"Shall I compare thee to a summer's {fill.tokenizer.mask_token}?")) == 2
