"""Pretraining's TrainingArguments: transformers' own plus a time budget (`time_budget: 10m`).

A subclass rather than a dataclass of its own: the budget, its evaluations and checkpoints are
settings of training, read next to max_steps, eval_steps and save_steps (TRL's SFTConfig does
the same). What the budget does is recipes/runs/budget.py.
"""

import re
from dataclasses import dataclass, field

from transformers import TrainingArguments

from recipes.errors import UserError

UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}


def parse_duration(value, name: str = "time_budget") -> float:
    """Seconds from 600, "600", "90s", "10m", "1.5h"; a clear error for anything else."""
    if isinstance(value, bool):  # YAML reads `yes` as True, which int() would take for 1
        value = str(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h)?\s*", str(value))
        if match is None:
            raise UserError(
                f"`{name}: {value}`: give seconds, or a number with s, m or h (90s, 10m, 2h)."
            )
        seconds = float(match.group(1)) * UNITS[match.group(2) or ""]
    if not seconds > 0:
        raise UserError(f"`{name}: {value}`: a duration must be more than 0 seconds.")
    return seconds


@dataclass
class PretrainingArguments(TrainingArguments):
    time_budget: str | None = field(
        default=None,
        metadata={
            "help": "Train for this much time (600, 90s, 10m, 2h) instead of max_steps, then "
            "evaluate and save: training time, from the first step to the last, evaluations "
            "and checkpoints on the way included; start-up and the final evaluation come on "
            "top. The learning-rate schedule (lr_scheduler_type, warm-up as a share: "
            "warmup_steps < 1) runs over the share of the budget spent, so it has decayed when "
            "the time is up on any machine; warmup_stable_decay holds the peak and decays over "
            "the last decay_share. A rerun of a killed run spends only what is left."
        },
    )
    eval_every: str | None = field(
        default=None,
        metadata={
            "help": "With time_budget: evaluate every this much training time (2m, 90s) "
            "instead of every eval_steps. Unset: five times in the budget."
        },
    )
    save_every: str | None = field(
        default=None,
        metadata={
            "help": "With time_budget: save a checkpoint every this much training time instead "
            "of every save_steps. Unset: ten times in the budget, so a killed run loses at most "
            "a tenth of it."
        },
    )
    decay_share: float = field(
        default=0.2,
        metadata={
            "help": "With time_budget and lr_scheduler_type warmup_stable_decay: the last share "
            "of the budget, over which the learning rate falls linearly to 0."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        for name in ("time_budget", "eval_every", "save_every"):
            value = getattr(self, name)
            if value is not None:
                parse_duration(value, name)  # a bad value fails now, not at the first step
        if self.time_budget is None:
            for name in ("eval_every", "save_every"):
                if getattr(self, name) is not None:
                    what = "eval_steps" if name == "eval_every" else "save_steps"
                    raise UserError(
                        f"`{name}` paces a `time_budget` run by the clock; without a budget "
                        f"use `{what}`."
                    )
        if not 0.0 < self.decay_share <= 1.0:
            raise UserError(f"`decay_share` must be in (0, 1], got {self.decay_share}.")

    @property
    def time_budget_seconds(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)
