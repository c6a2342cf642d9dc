"""What a pretraining run builds and what it will cost, said before the hours go by: the model
(family, shape, parameters) once it is built, and after a few steps the tokens/s measured on
this machine and the time max_steps will take at that rate.
"""

import time

from transformers import TrainerCallback

from recipes.models.families import FAMILIES, count_parameters

# Above this a model is base-sized (ModernBERT-base, RoBERTa-base: over 100M): on a CPU a step
# of it takes many seconds, where the tiny configs' models (about 10M) take a fraction of one.
BASE_SIZED_PARAMETERS = 50_000_000


def model_summary(family: str, model, max_seq_length: int, attention: str | None = None) -> str:
    """One line: the family, the model class, its shape and parameter count."""
    config = model.config
    shape = (
        f"{config.num_hidden_layers} layers x {config.hidden_size} hidden, "
        f"{config.num_attention_heads} heads, {max_seq_length}-token sequences"
    )
    size = f"{count_parameters(model) / 1e6:.1f}M parameters"
    kernel = f", {attention} attention" if attention else ""
    module = type(model).__module__  # the hand-written BERT says where it lives
    where = "" if module.startswith("transformers.") else f" from {module}"
    name = f"{FAMILIES[family].display_name} ({type(model).__name__}{where})"
    return f"{name}: {shape}; {size}{kernel}"


def size_warning(family: str, parameters: int, device_type: str) -> str | None:
    """For a base-sized model on a CPU: say so, and name the family's small config."""
    if device_type != "cpu" or parameters <= BASE_SIZED_PARAMETERS:
        return None
    return (
        f"This is a base-sized model ({parameters / 1e6:.0f}M parameters) on a CPU: expect many "
        "seconds a step (the measured speed follows after a few steps). For a first run on a "
        f"CPU, `--config {FAMILIES[family].tiny_config}` trains a small one made for it."
    )


def report_model(family: str, model, max_seq_length: int, training_args, attention=None) -> None:
    """Print model_summary (and size_warning where it applies), on the main process."""
    if training_args.process_index != 0:
        return
    print(model_summary(family, model, max_seq_length, attention))
    warning = size_warning(family, count_parameters(model), training_args.device.type)
    if warning:
        print(warning)


def duration(seconds: float) -> str:
    """As people say an estimate: "about 8 min"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"about {seconds / 3600:.1f} h"
    return f"about {seconds / 86400:.1f} days"


def throughput_line(
    tokens: int,
    seconds: float,
    steps: range,
    max_steps: int,
    resumed_at: int = 0,
    budget_left: float | None = None,
) -> str:
    """The rate measured over `steps` (`tokens` non-padding tokens in `seconds`; 0 tokens: not
    counted) and the time max_steps take at it (a resumed run: the steps it has left); with a
    time budget (`budget_left` seconds of it left), the steps and tokens it buys at that rate."""
    step_s = seconds / len(steps)
    rate = f"{tokens / seconds:,.0f} tokens/s, " if tokens else ""
    if budget_left is not None:
        buys = budget_left / step_s
        more = f" ({tokens / len(steps) * buys:,.0f} tokens)" if tokens else ""
        return (
            f"speed on this machine: {rate}{step_s:.3g} s a step (steps {steps.start}-"
            f"{steps.stop - 1}); the {duration(budget_left).removeprefix('about ')} left of "
            f"time_budget buy about {buys:,.0f} more steps{more}, less what evaluations and "
            "checkpoints take"
        )
    left = max_steps - resumed_at
    todo = (
        f"the {left:,} steps left of max_steps {max_steps:,}"
        if resumed_at
        else f"max_steps {max_steps:,}"
    )
    return (
        f"speed on this machine: {rate}{step_s:.3g} s a step (steps {steps.start}-"
        f"{steps.stop - 1}); {todo} take {duration(left * step_s)} of training, "
        "evaluations and checkpoints aside"
    )


class ThroughputReport(TrainerCallback):
    """Times `steps` training steps after the first `skip` (thread pools, allocations, kernel
    choices make the first ones slow), the time of evaluations and checkpoints in between left
    out, and prints throughput_line once, on the main process. A run too short for that
    reports what it measured when training ends. `budget`: the run's TimeBudget
    (recipes/runs/budget.py), if it has one: then the line says what the time left buys."""

    def __init__(self, budget=None, skip: int = 1, steps: int = 3, clock=time.perf_counter):
        self.budget, self.skip, self.steps, self.clock = budget, skip, steps, clock
        self.resumed_at = self.seen = 0
        self.window = None  # (time, tokens seen, global step) where the timed steps begin
        self.paused = 0.0  # seconds since then spent evaluating and saving
        self.last_step_end = None
        self.done = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.resumed_at = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        self.seen += 1
        self.last_step_end = self.clock()
        if self.done or self.seen < self.skip:
            return
        if self.window is None:
            self.window = (self.last_step_end, state.num_input_tokens_seen, state.global_step)
        elif state.global_step - self.window[2] >= self.steps:
            self._report(state)

    def _pause(self) -> None:
        # Trainer evaluates and saves right after a step ends, before the next one begins
        if self.window is not None and not self.done:
            now = self.clock()
            self.paused += now - self.last_step_end
            self.last_step_end = now

    def on_evaluate(self, args, state, control, **kwargs):
        self._pause()

    def on_save(self, args, state, control, **kwargs):
        self._pause()

    def on_train_end(self, args, state, control, **kwargs):
        if self.window is not None and state.global_step > self.window[2]:
            self._report(state)

    def _report(self, state) -> None:
        if self.done:
            return
        self.done = True
        start, tokens, step = self.window
        if state.is_world_process_zero:
            line = throughput_line(
                state.num_input_tokens_seen - tokens,
                self.last_step_end - start - self.paused,
                range(step + 1, state.global_step + 1),
                state.max_steps,
                self.resumed_at,
                budget_left=self.budget.left() if self.budget else None,
            )
            print(line)
