"""`--time_budget`: real runs that the clock ends, with the learning rate decayed at their last
step, and a run killed with SIGKILL that the same command finishes within the budget.

The assertions read what the runs recorded (all_results.json, trainer_state.json), never the
wall clock of this machine: on a busy one a budget buys fewer steps, not a longer run."""

import json
import os
import re
import signal
import sys
import time

import pytest
from helpers import run_module, tiny
from test_resume import ONE_THREAD, start

from recipes.run_folder import checkpoint_is_complete
from recipes.runs.budget import RECORD

PEAK_LR = 7e-4  # roberta's family default (recipes/models/families.py)


def budget_command(out, corpus_files, tokenizer_dir, *extra):
    return [
        sys.executable, "-m", "recipes.pretrain_mlm",
        "--config", "recipes/configs/roberta-tiny.yaml", "--train_files", *corpus_files,
        "--tokenizer_name_or_path", str(tokenizer_dir), "--output_dir", str(out),
        *tiny(max_steps=None, logging_steps=10, save_total_limit=3), *extra,
    ]  # fmt: skip


def learning_rates(out) -> list[tuple[int, float]]:
    state = json.loads((out / "trainer_state.json").read_text())
    return [(e["step"], e["learning_rate"]) for e in state["log_history"] if "learning_rate" in e]


def test_the_clock_ends_training_with_the_schedule_decayed(
    tmp_path, corpus_files, bpe_tokenizer_dir
):
    out = tmp_path / "run"
    command = budget_command(out, corpus_files, bpe_tokenizer_dir, "--time_budget", "10s")
    run = run_module(*command[2:], env=ONE_THREAD)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "max_steps 900 (recipes/configs/roberta-tiny.yaml) is set aside" in run.stdout
    assert "the 10 s left of time_budget buy about" in run.stdout

    results = json.loads((out / "all_results.json").read_text())
    assert results["time_budget"] == 10.0
    # spent: at the end of the first step past the budget
    assert 10.0 <= results["time_budget_spent"] < 15.0
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] > 8  # not the fixture's max_steps
    last_step, last_lr = learning_rates(out)[-1]
    assert last_step == state["global_step"]  # the last step's lr is logged ...
    assert last_lr < 0.05 * PEAK_LR  # ... and has decayed
    assert max(lr for _, lr in learning_rates(out)) > 0.5 * PEAK_LR
    # checkpoints by the clock, each with the time spent; the last one at the last step
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints[-1].name == f"checkpoint-{state['global_step']}"
    saved = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
    spent = saved["stateful_callbacks"][RECORD]["spent"]
    assert spent == pytest.approx(results["time_budget_spent"], abs=0.05)
    assert "| time_budget | 10 s (" in (out / "README.md").read_text()
    assert "# time_budget spent: 10 s (" in (out / "run_config.yaml").read_text()


def kill_past_half_the_budget(proc, out, budget: float, log_path, timeout=300):
    """SIGKILL once a complete checkpoint records more than half the budget spent."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert proc.poll() is None, f"ended before half the budget:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"no checkpoint past half after {timeout}s"
            for checkpoint in out.glob("checkpoint-*") if out.is_dir() else []:
                if checkpoint_is_complete(checkpoint):
                    state = json.loads((checkpoint / "trainer_state.json").read_text())
                    spent = state["stateful_callbacks"][RECORD]["spent"]
                    if spent > budget / 2:
                        os.kill(proc.pid, signal.SIGKILL)
                        proc.wait(timeout=60)
                        return spent
            time.sleep(0.05)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_killed_run_resumes_and_spends_only_what_is_left(
    tmp_path, corpus_files, bpe_tokenizer_dir
):
    out = tmp_path / "run"
    budget = 16.0
    command = budget_command(
        out, corpus_files, bpe_tokenizer_dir, "--time_budget", "16s", "--save_every", "2s"
    )
    victim = start(command, tmp_path / "log")
    spent_at_kill = kill_past_half_the_budget(victim, out, budget, tmp_path / "log")
    assert victim.returncode == -signal.SIGKILL
    assert not (out / "all_results.json").exists()

    resumed = run_module(*command[2:], env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stdout
    # from the checkpoint seen, or one the run wrote after it before the kill landed
    left = float(re.search(r"time budget 16 s: (\d+) s left of training", resumed.stdout)[1])
    assert left <= round(budget - spent_at_kill) + 1
    results = json.loads((out / "all_results.json").read_text())
    assert results["time_budget_runs"] == 2
    # both runs together: the budget, overshot by at most the last step (and an evaluation)
    assert budget <= results["time_budget_spent"] <= 1.1 * budget + 1.0
    # the resumed run continued the schedule: after its peak the lr only falls, across the
    # resume too (a restarted schedule would warm up again)
    lrs = [lr for _, lr in learning_rates(out)]
    peak = lrs.index(max(lrs))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))
    assert lrs[-1] < 0.05 * PEAK_LR


def test_bert_trains_for_a_budget_too(tmp_path, corpus_files):
    # pretrain_bert takes the same settings and callback; its WordPiece tokenizer is trained here
    from recipes.arguments import DataSourceArguments
    from tokenizer_training.train_tokenizer import TokenizerArguments, train_tokenizer

    tok = tmp_path / "tok"
    args = TokenizerArguments(tokenizer_type="wordpiece", vocab_size=800, output_dir=str(tok))
    train_tokenizer(args, DataSourceArguments(train_files=corpus_files))
    out = tmp_path / "bert"
    run = run_module(
        "recipes.pretrain_bert", "--config", "recipes/configs/bert-tiny-nsp.yaml",
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(tok),
        "--output_dir", str(out), "--time_budget", "6s",
        *tiny(max_steps=None, text_sample_by="paragraph", logging_steps=10),
        env=ONE_THREAD,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    assert results["time_budget"] == 6.0 and results["time_budget_spent"] >= 6.0
    last_step, last_lr = learning_rates(out)[-1]
    assert last_step == json.loads((out / "trainer_state.json").read_text())["global_step"]
    assert last_lr < 0.05 * 5e-4  # bert-tiny-nsp.yaml's peak, decayed
    assert "| time_budget | 6 s (" in (out / "README.md").read_text()
