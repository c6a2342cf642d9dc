"""Resuming: a run killed with SIGKILL and started again with the same command ends with the
same weights as a run that was never interrupted, on packed datasets and on streams."""

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from helpers import REPO, run_module, tiny
from safetensors.torch import load_file
from transformers import AutoTokenizer

from recipes.data.masking import ResumableMaskingCollator
from recipes.errors import UserError
from recipes.models.families import FAMILIES, MLM_FAMILIES
from recipes.run_folder import checkpoint_is_complete
from recipes.runs.start import prepare_output_dir

ROBERTA = "recipes/configs/roberta-tiny.yaml"  # the tutorial's: the streaming cases

MAX_STEPS = 20
# One thread: a model this small gains nothing from two, and on a busy machine OpenMP threads
# waiting for each other make every step ~10x slower. Both runs of a comparison use it.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TINY = tiny(
    per_device_eval_batch_size=32, max_steps=MAX_STEPS, eval_steps=100, logging_steps=4,
    # one loader worker: masks are drawn in another process, and must not depend on it
    dataloader_num_workers=1, save_total_limit=3,
)  # fmt: skip


def pretrain_command(out, corpus_files, tokenizer_dir, extra, config=ROBERTA):
    return [
        sys.executable, "-m", "recipes.pretrain_mlm",
        "--config", config, "--train_files", *corpus_files,
        "--tokenizer_name_or_path", str(tokenizer_dir), "--output_dir", str(out), *TINY, *extra,
    ]  # fmt: skip


def start(command, log_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), **ONE_THREAD)
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its loader worker goes with it
        )  # fmt: skip


def kill_after_checkpoint(proc, checkpoint, log_path, timeout=300):
    deadline = time.monotonic() + timeout
    try:
        while not checkpoint_is_complete(checkpoint):
            assert proc.poll() is None, f"ended before {checkpoint}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"no {checkpoint} after {timeout}s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        try:  # the dataloader worker, which would notice its parent's death only later
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL


def max_abs_difference(a, b) -> float:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    return max((left[k] - right[k]).abs().max().item() for k in left)


STREAM = ["--streaming", "true", "--streaming_validation_examples", "20"]


@pytest.mark.parametrize(
    "config, extra",
    [*((FAMILIES[family].tiny_config, []) for family in MLM_FAMILIES),
     (ROBERTA, [*STREAM, "--dataloader_num_workers", "0"]),
     (ROBERTA, STREAM),
     (FAMILIES[MLM_FAMILIES[0]].tiny_config, [*STREAM, "--dataloader_num_workers", "0"])],
    # streaming: the checkpoint's stream position; with a loader worker there is none, and the
    # resumed run re-reads the stream up to where it was
    ids=[*(f"packed-{family}" for family in MLM_FAMILIES), "streaming", "streaming-worker",
         f"streaming-{MLM_FAMILIES[0]}"],
)  # fmt: skip
def test_killed_run_resumes_to_the_weights_of_an_unbroken_run(
    tmp_path, corpus_files, bpe_tokenizer_dir, config, extra
):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    # the unbroken run and the one to kill run side by side
    reference = start(
        pretrain_command(whole, corpus_files, bpe_tokenizer_dir, extra, config), tmp_path / "w"
    )
    try:
        victim = start(
            pretrain_command(broken, corpus_files, bpe_tokenizer_dir, extra, config), tmp_path / "b"
        )
        kill_after_checkpoint(victim, broken / "checkpoint-4", tmp_path / "b")
        assert not (broken / "all_results.json").exists()

        # A kill while a checkpoint is being written leaves a newer, partial one: fake that.
        newest = max(
            int(p.name.split("-")[1])
            for p in broken.glob("checkpoint-*")
            if checkpoint_is_complete(p)
        )
        assert newest + 4 < MAX_STEPS
        partial = broken / f"checkpoint-{newest + 4}"
        partial.mkdir(exist_ok=True)
        (partial / "trainer_state.json").write_text('{"global_step": ')  # cut off mid-write

        command = pretrain_command(broken, corpus_files, bpe_tokenizer_dir, extra, config)
        resumed = run_module(*command[2:], env=ONE_THREAD)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"Skipping incomplete checkpoint {partial}" in resumed.stdout
        assert f"Resuming from {broken / f'checkpoint-{newest}'}" in resumed.stdout
        if "--dataloader_num_workers" in extra:  # 8 blocks a step
            assert f"Resuming the stream after its example {newest * 8} " in resumed.stdout
        elif extra:
            assert "re-reading the stream up to where it was" in resumed.stdout
        assert reference.wait(timeout=600) == 0, (tmp_path / "w").read_text()[-3000:]
    finally:
        if reference.poll() is None:
            os.killpg(reference.pid, signal.SIGKILL)
            reference.wait()

    assert max_abs_difference(whole, broken) <= 1e-6
    trained = json.loads((broken / "trainer_state.json").read_text())
    assert trained["global_step"] == MAX_STEPS
    tokens = json.loads((broken / "all_results.json").read_text())["train_tokens"]
    assert tokens == json.loads((whole / "all_results.json").read_text())["train_tokens"]


def test_an_incomplete_checkpoint_named_explicitly_is_refused(tmp_path):
    partial = tmp_path / "checkpoint-8"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"")
    args = SimpleNamespace(output_dir=str(tmp_path), resume_from_checkpoint=str(partial))
    with pytest.raises(UserError, match="checkpoint-8` is incomplete"):
        prepare_output_dir(args, overwrite=False)


def test_masks_depend_only_on_seed_and_batch(bpe_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    blocks = torch.randint(5, len(tokenizer), (6, 64), generator=torch.Generator().manual_seed(0))
    examples = [{"input_ids": row.tolist()} for row in blocks]

    def masked(seed, batch):
        return ResumableMaskingCollator(tokenizer, seed=seed)(batch)["input_ids"]

    collator = ResumableMaskingCollator(tokenizer, seed=1)
    collator(examples[3:])  # an earlier batch, as before a resume: no effect on the next
    assert torch.equal(collator(examples[:3])["input_ids"], masked(1, examples[:3]))
    assert not torch.equal(masked(1, examples[:3]), masked(2, examples[:3]))
    # reshuffled batches (a new epoch) are masked afresh
    assert not torch.equal(masked(1, examples[:3])[0], masked(1, examples[:1] + examples[4:])[0])
    share = (masked(1, examples) != blocks).float().mean().item()
    assert 0.08 < share < 0.2  # 15% selected, of which 80% masked and 10% random
