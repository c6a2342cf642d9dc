"""The time budget without training: durations, the schedule as a function of the share of the
budget spent, and the callback's decisions driven by a fake clock (recipes/runs/budget.py)."""

from types import SimpleNamespace

import pytest
import torch
from helpers import FIXTURES
from transformers import TrainerControl, TrainerState
from transformers.optimization import get_constant_schedule

from recipes import pretrain_mlm
from recipes.budget_arguments import parse_duration
from recipes.errors import UserError
from recipes.runs.budget import RECORD, STEP_CAP, TimeBudget, lr_factor
from recipes.runs.throughput import throughput_line

DATA = ["--train_files", "a.txt", "--tokenizer_name_or_path", "tok"]


@pytest.mark.parametrize(
    "value, seconds",
    [(600, 600.0), ("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("10min", 600.0),
     ("2h", 7200.0), ("1.5h", 5400.0), (" 20s ", 20.0), (0.5, 0.5)],
)  # fmt: skip
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["ten minutes", "10 d", "-5", "0", "1h30m", "", True, 0])
def test_bad_durations_say_how_to_write_one(value):
    with pytest.raises(UserError, match="time_budget"):
        parse_duration(value)


def test_the_schedule_follows_the_share_of_the_budget():
    # linear, 10% warm-up: half way up at 5%, the peak at 10%, half way down at 55%, 0 at the end
    assert lr_factor(0.0, "linear", 0.1) == 0.0
    assert lr_factor(0.05, "linear", 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, "linear", 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, "linear", 0.1) == pytest.approx(0.5)
    assert lr_factor(1.0, "linear", 0.1) == 0.0
    assert lr_factor(1.7, "linear", 0.1) == 0.0  # past the budget (the last step's overshoot)
    assert lr_factor(0.55, "cosine", 0.1) == pytest.approx(0.5)
    assert lr_factor(0.325, "cosine", 0.1) == pytest.approx(0.5 + 0.5 * 2**-0.5)
    # warm-up, stable, decay over the last 20%
    assert lr_factor(0.5, "warmup_stable_decay", 0.1, 0.2) == 1.0
    assert lr_factor(0.8, "warmup_stable_decay", 0.1, 0.2) == 1.0
    assert lr_factor(0.9, "warmup_stable_decay", 0.1, 0.2) == pytest.approx(0.5)
    assert lr_factor(1.0, "warmup_stable_decay", 0.1, 0.2) == 0.0
    assert lr_factor(0.99, "constant_with_warmup", 0.1) == 1.0


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def drive(budget: TimeBudget, clock: FakeClock, step_s: float, state=None, steps=10_000):
    """Trainer's calls, as _inner_training_loop makes them: (step, lr it used, control) each step."""
    args = SimpleNamespace(device=torch.device("cpu"))
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = get_constant_schedule(optimizer)  # what Trainer builds under a budget
    state = state or TrainerState()
    budget.on_train_begin(
        args, state, TrainerControl(), lr_scheduler=scheduler, optimizer=optimizer
    )
    trace = []
    for _ in range(steps):
        control = TrainerControl()
        budget.on_step_begin(args, state, control)
        used = optimizer.param_groups[0]["lr"]
        clock.now += step_s
        optimizer.step()
        scheduler.step()
        state.global_step += 1
        budget.on_step_end(args, state, control, lr_scheduler=scheduler)
        trace.append((state.global_step, used, control))
        if control.should_training_stop:
            break
    return trace, state


def test_training_stops_when_the_budget_is_spent_with_the_lr_decayed():
    clock = FakeClock()
    budget = TimeBudget(100.0, "linear", 0.1, 0.2, eval_every=20.0, save_every=10.0, clock=clock)
    trace, state = drive(budget, clock, step_s=0.5)
    assert len(trace) == 200  # 100 s at 0.5 s a step
    step, _, last = trace[-1]
    assert last.should_training_stop and last.should_evaluate and last.should_save
    assert last.should_log  # the last step's learning rate is logged
    assert budget.lr_at_stop == 0.0
    # the lr each step used: warm-up over the first 10 s (20 steps), the peak, then down
    lrs = [lr for _, lr, _ in trace]
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(1.0, abs=0.03)
    assert lrs[110] == pytest.approx(0.5, abs=0.01)  # 55 s in
    # evaluations every 20 s and checkpoints every 10 s of training, by the clock
    assert [s for s, _, c in trace if c.should_evaluate] == [40, 80, 120, 160, 200]
    assert [s for s, _, c in trace if c.should_save] == [20 * k for k in range(1, 11)]
    assert state.stateful_callbacks[RECORD] == {"budget": 100.0, "spent": 100.0, "runs": 1}


def test_a_resumed_run_continues_the_schedule_and_spends_what_is_left():
    clock = FakeClock()
    whole = TimeBudget(100.0, "cosine", 0.06, 0.2, eval_every=None, save_every=10.0, clock=clock)
    whole_trace, _ = drive(whole, clock, step_s=0.5)

    clock = FakeClock()
    first = TimeBudget(100.0, "cosine", 0.06, 0.2, eval_every=None, save_every=10.0, clock=clock)
    trace, state = drive(first, clock, step_s=0.5, steps=130)  # killed at 65 s ...
    saved = TrainerState(global_step=120)  # ... after the checkpoint of 60 s, step 120
    saved.stateful_callbacks = {RECORD: {"budget": 100.0, "spent": 60.0, "runs": 1}}
    clock = FakeClock()
    clock.now = 5000.0  # another process: its clock starts anywhere
    again = TimeBudget(100.0, "cosine", 0.06, 0.2, eval_every=None, save_every=10.0, clock=clock)
    resumed, state = drive(again, clock, step_s=0.5, state=saved)
    assert len(resumed) == 80  # the 40 s left
    assert state.global_step == 200
    assert [lr for _, lr, _ in resumed] == pytest.approx([lr for _, lr, _ in whole_trace[120:]])
    assert again.metrics()["time_budget_spent"] == 100.0
    assert again.metrics()["time_budget_runs"] == 2
    assert not any(c.should_evaluate for _, _, c in resumed)  # eval_strategy no: none


def parse(*argv):
    return pretrain_mlm.parse_args(["--config", str(FIXTURES / "tiny-mlm.yaml"), *DATA, *argv])


def test_a_budget_sets_max_steps_aside_and_drives_a_constant_base_schedule(capsys):
    *_, training = parse("--time_budget", "10m", "--lr_scheduler_type", "cosine")
    budget = TimeBudget.from_args(training)
    assert "max_steps 8 (" in capsys.readouterr().out  # the fixture's, set aside
    assert training.max_steps == STEP_CAP
    assert training.lr_scheduler_type == "constant"
    assert (budget.seconds, budget.shape, budget.warmup) == (600.0, "cosine", 0.06)
    assert (budget.eval_every, budget.save_every) == (120.0, 60.0)
    *_, training = parse("--time_budget", "90", "--eval_every", "1m", "--save_strategy", "no")
    budget = TimeBudget.from_args(training)
    assert (budget.eval_every, budget.save_every) == (60.0, None)
    assert TimeBudget.from_args(parse()[-1]) is None


@pytest.mark.parametrize(
    "argv, message",
    [(["--time_budget", "10m", "--max_steps", "100"], "`time_budget` or `max_steps`, not both"),
     (["--time_budget", "10m", "--warmup_steps", "100"], "as a share of the budget"),
     (["--time_budget", "10m", "--lr_scheduler_type", "polynomial"], "no time-budget form"),
     (["--time_budget", "ten"], "`time_budget: ten`: give seconds"),
     (["--eval_every", "2m"], "without a budget use `eval_steps`"),
     (["--time_budget", "1h", "--save_every", "often"], "`save_every: often`")],
)  # fmt: skip
def test_settings_a_budget_cannot_take_are_refused(argv, message):
    with pytest.raises(UserError, match=message):
        TimeBudget.from_args(parse(*argv)[-1])


def test_the_throughput_line_says_what_the_budget_buys():
    line = throughput_line(3000, 2.0, range(2, 5), STEP_CAP, budget_left=600.0)
    # 0.667 s a step, 1000 tokens a step: 600 s buy 900 steps, 900,000 tokens
    assert "the 10 min left of time_budget buy about 900 more steps (900,000 tokens)" in line


def test_any_training_arguments_can_be_taken_over_keeping_their_shape(tmp_path):
    # the benchmarks' stock ways: run_mlm.py's linear decay without warm-up, sized by the clock
    from transformers import TrainingArguments

    stock = TrainingArguments(output_dir=str(tmp_path), max_steps=10, report_to="none")
    budget = TimeBudget.taking_over(stock, 60.0, clock=FakeClock())
    assert (budget.shape, budget.warmup, budget.eval_every, budget.save_every) == (
        "linear", 0.0, None, None
    )  # fmt: skip
    assert stock.max_steps == STEP_CAP and stock.lr_scheduler_type == "constant"
    stock = TrainingArguments(output_dir=str(tmp_path), warmup_steps=100, report_to="none")
    with pytest.raises(UserError, match="as a share of the budget"):
        TimeBudget.taking_over(stock, 60.0)
