"""Train for a time budget (`time_budget: 10m`): the clock, not a step count, ends training.

    python -m recipes.pretrain_mlm --config recipes/configs/modernbert-tiny.yaml --time_budget 10m

What counts is training time: from this run's first step to the step where the budget is spent,
evaluations and checkpoints on the way included (that is what the user waits for). Start-up
(tokenizing, building the model) and the final evaluation and save come on top, and are reported.

The learning-rate schedule is a function of the share of the budget spent (progress = spent /
budget), as cramming's `budget-*` schedulers are (Geiping & Goldstein 2022), so on any machine
it has decayed when the time is up. The shape is the run's own lr_scheduler_type with its
warm-up share; `warmup_stable_decay` holds the peak until the last `decay_share`.

Evaluations and checkpoints follow the clock too (`eval_every`, `save_every`). Each checkpoint's
trainer_state.json records the time spent (under stateful_callbacks["time_budget"], written with
the rest of that file, whose presence marks a complete checkpoint): the same command after a
kill continues the schedule where it stood and spends only what is left.

On several processes the clock is rank 0's, broadcast at every step: every rank sets the same
learning rate and stops, evaluates and saves at the same step.
"""

import math
import time
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import SchedulerType, TrainerCallback

from recipes.budget_arguments import PretrainingArguments, parse_duration
from recipes.errors import UserError
from recipes.settings_record import setting_origin

RECORD = "time_budget"  # the key in trainer_state.json's stateful_callbacks
# max_steps while the clock decides: Trainer needs a number to size its epochs, and a budget
# run should never meet it (1e9 steps at 10 ms each would be four months).
STEP_CAP = 1_000_000_000
SHAPES = ("linear", "cosine", "constant", "constant_with_warmup", "warmup_stable_decay")
EVALUATIONS_PER_BUDGET = 5
CHECKPOINTS_PER_BUDGET = 10  # a kill loses at most a tenth of the budget


def lr_factor(progress: float, shape: str, warmup: float = 0.0, decay_share: float = 0.2) -> float:
    """The learning rate over its peak once `progress` (0 to 1) of the budget is spent: linear
    warm-up over the first `warmup` share, then the shape's decay, reaching 0 at 1."""
    progress = min(max(progress, 0.0), 1.0)
    if shape == "constant":
        return 1.0
    if progress < warmup:
        return progress / warmup
    if shape == "constant_with_warmup":
        return 1.0
    if shape == "warmup_stable_decay":
        decay_from = max(1.0 - decay_share, warmup)
        return 1.0 if progress < decay_from else (1.0 - progress) / (1.0 - decay_from)
    done = (progress - warmup) / (1.0 - warmup)
    if shape == "linear":
        return 1.0 - done
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    raise ValueError(f"unknown schedule shape {shape!r}")


def rank0_value(value: float, device) -> float:
    """Rank 0's `value` on every rank (itself where there is one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def seconds_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.1f} min"


class TimeBudget(TrainerCallback):
    """Ends training when `seconds` of training time are spent, drives the learning rate by the
    share spent, and evaluates and saves by the clock. Build it with `from_args`."""

    def __init__(self, seconds, shape, warmup, decay_share, eval_every, save_every, clock=None):
        self.seconds, self.shape = seconds, shape  # the budget; lr_scheduler_type's shape
        self.warmup, self.decay_share = warmup, decay_share  # shares of the budget
        self.eval_every, self.save_every = eval_every, save_every  # None: not at all
        self.clock = clock or time.perf_counter
        self.prior = 0.0  # seconds spent by the earlier runs of this command (the checkpoint's)
        self.runs = 1  # this one and the earlier ones
        self.spent = 0.0  # rank 0's training seconds at the last step's end, all runs
        self.started = None  # the clock at this run's first step
        self.stopped_at = None  # the clock when the budget ran out
        self.next_eval = self.next_save = math.inf
        self.startup = self.after = None  # seconds before the first step, after the last
        # built as the recipe reads its settings: start-up is counted from here (the imports
        # before it take a few seconds more)
        self.built = time.monotonic()
        self.lr_at_stop = None

    @classmethod
    def from_args(cls, training_args, clock=None) -> "TimeBudget | None":
        """The budget `training_args` asks for (None without `time_budget`). The clock ends
        training, so a max_steps from a config is set aside (refused beside time_budget on the
        command line: one of the two would be ignored)."""
        seconds = getattr(training_args, "time_budget_seconds", None)
        if seconds is None:
            return None
        if setting_origin(training_args, "max_steps") == "command line":
            raise UserError(
                "set `time_budget` or `max_steps`, not both: with a budget the clock ends "
                "training and the learning rate decays over the time, not the steps."
            )
        set_aside = training_args.max_steps

        def every(name: str, times: int) -> float | None:
            strategy = "eval_strategy" if name == "eval_every" else "save_strategy"
            if str(getattr(training_args, strategy).value) == "no":
                return None
            value = getattr(training_args, name)
            return seconds / times if value is None else parse_duration(value, name)

        budget = cls.taking_over(
            training_args,
            seconds,
            eval_every=every("eval_every", EVALUATIONS_PER_BUDGET),
            save_every=every("save_every", CHECKPOINTS_PER_BUDGET),
            clock=clock,
        )
        if set_aside > 0 and training_args.process_index == 0:
            where = setting_origin(training_args, "max_steps")
            print(
                f"time_budget {training_args.time_budget} ends training: max_steps "
                f"{set_aside} ({where}) is set aside"
            )
        return budget

    @classmethod
    def taking_over(
        cls, training_args, seconds: float, eval_every=None, save_every=None, clock=None
    ) -> "TimeBudget":
        """A budget of `seconds` for any TrainingArguments (the benchmarks' stock ones too):
        their lr_scheduler_type and warm-up share become the budget's schedule, and Trainer
        gets a constant one and a max_steps it never meets, which the budget replaces when
        training begins. `clock`: seconds, by default time.perf_counter."""
        shape = SchedulerType(training_args.lr_scheduler_type).value
        if shape not in SHAPES:
            raise UserError(
                f"`lr_scheduler_type: {shape}` has no time-budget form: with `time_budget` "
                f"choose one of {', '.join(SHAPES)}."
            )
        warmup = training_args.warmup_steps
        if warmup >= 1:
            raise UserError(
                f"`warmup_steps: {warmup:g}` counts steps, unknown in advance with a "
                "`time_budget`: give the warm-up as a share of the budget, e.g. 0.06."
            )
        training_args.max_steps = STEP_CAP
        training_args.lr_scheduler_type = SchedulerType.CONSTANT
        decay_share = getattr(training_args, "decay_share", PretrainingArguments.decay_share)
        return cls(seconds, shape, warmup, decay_share, eval_every, save_every, clock=clock)

    # ---- the clock ----------------------------------------------------------------------
    def elapsed(self) -> float:
        """This process's training seconds so far, the earlier runs' included."""
        if self.started is None:
            return self.prior
        return self.prior + ((self.stopped_at or self.clock()) - self.started)

    def left(self) -> float:
        return max(self.seconds - self.spent, 0.0)

    def factor(self) -> float:
        return lr_factor(self.spent / self.seconds, self.shape, self.warmup, self.decay_share)

    def _next(self, every: float | None, spent: float) -> float:
        return math.inf if every is None else (math.floor(spent / every) + 1) * every

    def _record(self, state, spent: float) -> None:
        # saved in trainer_state.json by the next checkpoint, read back by a resumed run
        state.stateful_callbacks[RECORD] = {
            "budget": self.seconds,
            "spent": round(spent, 3),
            "runs": self.runs,
        }

    # ---- Trainer's events ---------------------------------------------------------------
    def on_train_begin(self, args, state, control, lr_scheduler=None, optimizer=None, **kwargs):
        record = state.stateful_callbacks.get(RECORD)
        if record:
            self.prior, self.runs = float(record["spent"]), int(record.get("runs", 1)) + 1
        elif state.global_step > 0 and state.is_world_process_zero:
            print("the checkpoint holds no time spent (a run without time_budget): counting from 0")
        self.spent = self.prior
        self.next_eval = self._next(self.eval_every, self.prior)
        self.next_save = self._next(self.save_every, self.prior)
        if not hasattr(lr_scheduler, "lr_lambdas"):
            raise UserError("`time_budget` needs Trainer's own scheduler (not DeepSpeed's).")

        def by_the_clock(_step):  # a function, so the scheduler's state_dict leaves it out
            return self.factor()

        lr_scheduler.lr_lambdas = [by_the_clock] * len(optimizer.param_groups)
        self._set_lr(lr_scheduler)  # where the schedule stands: 0 spent, or resumed
        if state.is_world_process_zero:
            left = self.seconds - self.prior
            print(
                f"time budget {seconds_text(self.seconds)}: {seconds_text(left)} left of "
                f"training, {self.shape} schedule by the clock"
                + (f" (warm-up {self.warmup:.0%})" if self.warmup else "")
            )

    def on_step_begin(self, args, state, control, **kwargs):
        if self.started is None:
            self.started = self.clock()
            self.startup = time.monotonic() - self.built

    def _set_lr(self, lr_scheduler) -> None:
        # The scheduler stepped before this step ended, with the time of the step before; the
        # next step gets the learning rate of now (and the last one logs where it ended, 0).
        lrs = [base * self.factor() for base in lr_scheduler.base_lrs]
        for group, lr in zip(lr_scheduler.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        lr_scheduler._last_lr = lrs

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        if self.stopped_at is not None:
            return
        self.spent = rank0_value(self.elapsed(), args.device)  # the same on every rank
        self._set_lr(lr_scheduler)
        if self.spent >= self.seconds:  # out of time: evaluate and save as at max_steps
            self.stopped_at = self.clock()
            control.should_training_stop = control.should_log = True
            control.should_evaluate = self.eval_every is not None
            control.should_save = self.save_every is not None
            self.lr_at_stop = lr_scheduler.get_last_lr()[0]
        else:  # the clock's evaluations and checkpoints, not eval_steps' and save_steps'
            control.should_evaluate = self.spent >= self.next_eval
            control.should_save = self.spent >= self.next_save
            if control.should_evaluate:
                self.next_eval = self._next(self.eval_every, self.spent)
            if control.should_save:
                self.next_save = self._next(self.save_every, self.spent)
        self._record(state, self.spent)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.stopped_at is None:  # a checkpoint right after counts the evaluation's time
            self._record(state, self.elapsed())

    def on_train_end(self, args, state, control, **kwargs):
        if self.stopped_at is not None:
            self.after = self.clock() - self.stopped_at
        if not state.is_world_process_zero:
            return
        runs = f" over {self.runs} runs" if self.runs > 1 else ""
        tokens = state.num_input_tokens_seen  # 0 where Trainer does not count them
        lines = [
            f"time budget {seconds_text(self.seconds)}: {self.spent:.1f} s of training spent"
            f"{runs}, {state.global_step:,} steps" + (f", {tokens:,} tokens" if tokens else "")
        ]
        if self.lr_at_stop is not None:
            lines.append(f"learning rate at the last step: {self.lr_at_stop:.3g}")
        outside = f"outside the budget: start-up {self.startup or 0:.0f} s before the first step"
        if self.after is not None:
            outside += f", {self.after:.1f} s for the last evaluation and checkpoint"
        print("\n".join([*lines, outside]))

    # ---- what the run records -----------------------------------------------------------
    def metrics(self) -> dict:
        """all_results.json's numbers: the budget and the training seconds spent, all runs."""
        return {
            "time_budget": self.seconds,
            "time_budget_spent": round(self.spent, 1),
            "time_budget_runs": self.runs,
            "time_budget_startup_seconds": round(self.startup or 0.0, 1),
        }

    def card_line(self, steps: int, tokens: int) -> str:
        runs = f" over {self.runs} runs" if self.runs > 1 else ""
        return (
            f"{seconds_text(self.seconds)} ({self.spent:.1f} s of training spent{runs}: "
            f"{steps:,} steps, {tokens:,} tokens)"
        )

    def note_in_run_config(self, path: Path, steps: int, tokens: int) -> None:
        """Add what the budget bought to run_config.yaml, as a comment: the file still reruns
        the run (and a rerun into a new folder spends the whole budget again)."""
        if path.is_file():
            with path.open("a", encoding="utf-8") as file:
                file.write(f"# time_budget spent: {self.card_line(steps, tokens)}\n")
