"""Data-parallel training on this CPU: two real processes (DDP over gloo), as a GPU node runs it.

    accelerate launch --multi_gpu --num_processes 2 -m recipes.pretrain_mlm ... --use_cpu true
    torchrun --standalone --nproc_per_node 2 -m recipes.pretrain_mlm ... --use_cpu true

`--multi_gpu` is what starts two processes (`--cpu --num_processes 2` starts one); `use_cpu`
is what makes Trainer join them over gloo on a machine without GPUs (without it each process
trains alone, which the recipe refuses). The recipe itself is unchanged from a GPU run.
"""

import json
import os
import re
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from helpers import REPO, tiny
from huggingface_hub import ModelCard
from transformers import AutoModelForMaskedLM, AutoTokenizer

from recipes.config import _check_launch
from recipes.data.stream_position import POSITION_FILE
from recipes.errors import UserError
from recipes.models.checkpoints import weights_checksum
from recipes.models.families import MLM_FAMILIES

STEPS, BATCH, SEQ = 8, 8, 32  # per device; two processes -> 16 sequences per optimizer step
TINY = tiny(
    use_cpu=True, max_seq_length=SEQ, per_device_train_batch_size=BATCH, max_steps=STEPS,
    eval_steps=8, save_steps=8,
)  # fmt: skip
CHECKSUM = re.compile(r"final weights checksum \(rank (\d+) of (\d+)\): ([0-9a-f]{12})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(
    launcher: list[str], args: list[str], hf_home, family: str = "roberta", settings=TINY
) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        HF_HOME=str(hf_home),  # a fresh datasets cache: tokenization really runs here
        OMP_NUM_THREADS="1",  # two processes on a small CPU: no thread oversubscription
    )
    config = ["--config", f"recipes/configs/{family}-tiny.yaml"]
    command = [
        sys.executable,
        "-m",
        *launcher,
        "-m",
        "recipes.pretrain_mlm",
        *config,
        *settings,
        *args,
    ]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def rank_checksums(stdout: str) -> dict[int, str]:
    found = {int(rank): digest for rank, world, digest in CHECKSUM.findall(stdout)}
    assert {world for _, world, _ in CHECKSUM.findall(stdout)} == {"2"}, stdout[-2000:]
    return found


# --------------------------------------------------------------------------- accelerate, DDP
@pytest.fixture(scope="module", params=MLM_FAMILIES)
def ddp(request, tmp_path_factory, bpe_tokenizer_dir, corpus_files):
    root = tmp_path_factory.mktemp(f"ddp-{request.param}")
    accelerate = [
        "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
    ]  # fmt: skip
    run = launch(
        accelerate,
        ["--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir),
         "--output_dir", str(root / "model"),
         "--disable_tqdm", "false"],  # the tokenizing bars show which rank tokenized
        hf_home=root / "hf_home",
        family=request.param,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    return root / "model", run


def test_both_ranks_end_with_the_saved_weights(ddp):
    out, run = ddp
    checksums = rank_checksums(run.stdout)
    assert set(checksums) == {0, 1}
    assert checksums[0] == checksums[1]
    assert weights_checksum(AutoModelForMaskedLM.from_pretrained(out)) == checksums[0]


def test_global_batch_is_per_device_batch_times_two(ddp):
    out, _ = ddp
    results = json.loads((out / "all_results.json").read_text())
    # packed blocks, no padding: every position is a real token, counted on both ranks
    assert results["train_tokens"] == STEPS * BATCH * 2 * SEQ
    assert results["train_tokens_per_second"] == pytest.approx(
        results["train_tokens"] / results["train_runtime"], rel=0.01
    )
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == STEPS
    assert f"| global_batch_size | {BATCH * 2} |" in (out / "README.md").read_text()


def test_rank_zero_alone_tokenizes_and_writes(ddp):
    out, run = ddp
    # rank 0 tokenizes first (main_process_first); rank 1 then loads datasets' cache
    for split in ("train", "validation"):
        assert len(re.findall(rf"Tokenizing {split}:\s+0%", run.stderr)) == 1, split
    files = {p.name for p in out.iterdir()}
    assert files == {
        "README.md", "all_results.json", "checkpoint-8", "config.json", "loss_curve.png",
        "model.safetensors", "run_config.yaml", "tokenizer.json", "tokenizer_config.json",
        "trainer_state.json",
        "training_args.bin",
    }  # fmt: skip
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "fill-mask"
    assert json.loads((out / "all_results.json").read_text())["eval_accuracy"] >= 0
    assert (out / "loss_curve.png").stat().st_size > 1000


def test_processes_trainer_does_not_see_are_refused(monkeypatch):
    # What `accelerate launch --multi_gpu` without `use_cpu` gives on this machine: WORLD_SIZE=2
    # exported, yet TrainingArguments.world_size == 1 (each process would train alone).
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="use_cpu: true"):
        _check_launch(SimpleNamespace(world_size=1))
    _check_launch(SimpleNamespace(world_size=2))


# --------------------------------------------------------------------------- torchrun, streaming
def test_streaming_under_torchrun_reads_each_line_once_across_ranks(tmp_path, bpe_tokenizer_dir):
    # 8 held-out lines, then 32 training lines of different lengths: one pass is 32 / (4 x 2)
    # = 4 steps. The non-padding tokens counted over those 4 steps sum to the whole training
    # text only if the two ranks together read every line exactly once.
    lines = [f"line {i} " + " ".join(["love"] * (1 + (i * i) % 17)) for i in range(40)]
    corpus = tmp_path / "lines.txt"
    corpus.write_text("\n".join(lines) + "\n")
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    lengths = [len(tok(line, truncation=True, max_length=SEQ)["input_ids"]) for line in lines[8:]]
    # a rank reading everything, or only half of its share, would count something else
    assert sum(lengths) not in (
        2 * sum(lengths[:16]),
        2 * sum(lengths[::2]),
        2 * sum(lengths[1::2]),
    )

    torchrun = ["torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = launch(
        torchrun,
        ["--train_files", str(corpus), "--text_sample_by", "line", "--streaming", "true",
         "--line_by_line", "true", "--streaming_validation_examples", "8",
         "--tokenizer_name_or_path", str(bpe_tokenizer_dir), "--output_dir", str(tmp_path / "model"),
         "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
         "--max_steps", "4", "--eval_steps", "4", "--save_steps", "4"],
        hf_home=tmp_path / "hf_home",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads((tmp_path / "model" / "all_results.json").read_text())
    assert results["train_tokens"] == sum(lengths)
    assert results["epoch"] == pytest.approx(1.0)
    # rank 0 read the stream for both: the checkpoint's position counts 4 steps x 4 x 2 lines
    position = json.loads((tmp_path / "model" / "checkpoint-4" / POSITION_FILE).read_text())
    assert position["examples"] == 32 and position["examples_per_step"] == 8
    checksums = rank_checksums(run.stdout)
    assert set(checksums) == {0, 1} and checksums[0] == checksums[1]


# --------------------------------------------------------------------------- time budget
def test_a_time_budget_stops_every_rank_at_the_same_step(tmp_path, bpe_tokenizer_dir, corpus_files):
    # Each rank's own clock would stop it at its own step, and DDP would then wait forever for
    # the other; rank 0's clock, broadcast at every step, decides for both (and sets the same
    # learning rate on both, so their weights stay equal).
    torchrun = ["torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out = tmp_path / "model"
    run = launch(
        torchrun,
        ["--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir),
         "--output_dir", str(out), "--time_budget", "8s", "--save_every", "2s"],
        hf_home=tmp_path / "hf_home",
        settings=tiny(use_cpu=True, max_steps=None, logging_steps=5),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    checksums = rank_checksums(run.stdout)
    assert set(checksums) == {0, 1} and checksums[0] == checksums[1]
    results = json.loads((out / "all_results.json").read_text())
    assert 8.0 <= results["time_budget_spent"]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] > 8  # the clock ended it, not the fixture's max_steps
    last = [e for e in state["log_history"] if "learning_rate" in e][-1]
    assert last["step"] == state["global_step"]
    assert last["learning_rate"] < 0.05 * 7e-4  # roberta's peak, decayed
