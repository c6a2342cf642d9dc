"""What a run says it builds and how fast it goes (recipes/runs/throughput.py)."""

from types import SimpleNamespace

import pytest
from helpers import tiny_model
from transformers import RobertaConfig, RobertaForMaskedLM

from recipes.runs.throughput import (
    ThroughputReport,
    duration,
    model_summary,
    size_warning,
    throughput_line,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def state(step: int, tokens: int, max_steps: int = 1000, main: bool = True):
    return SimpleNamespace(
        global_step=step,
        num_input_tokens_seen=tokens,
        max_steps=max_steps,
        is_world_process_zero=main,
    )


def train(report, clock, steps, step_s=0.5, tokens_per_step=512, start=0, evaluate_after=()):
    """Drive `report` as Trainer does: on_train_begin, then each step's end (and an evaluation
    that takes 60 s after the steps in `evaluate_after`)."""
    report.on_train_begin(None, state(start, start * tokens_per_step), None)
    for step in range(start + 1, start + steps + 1):
        clock.now += step_s
        report.on_step_end(None, state(step, step * tokens_per_step), None)
        if step in evaluate_after:
            clock.now += 60
            report.on_evaluate(None, state(step, step * tokens_per_step), None)
    report.on_train_end(None, state(start + steps, (start + steps) * tokens_per_step), None)


def test_the_speed_is_measured_after_the_first_step_and_projected_to_max_steps(capsys):
    clock = Clock()
    train(ThroughputReport(clock=clock), clock, steps=10)
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (
        "speed on this machine: 1,024 tokens/s, 0.5 s a step (steps 2-4); max_steps 1,000 "
        "take about 8 min of training, evaluations and checkpoints aside"
    )


def test_evaluation_time_is_left_out(capsys):
    clock = Clock()
    train(ThroughputReport(clock=clock), clock, steps=10, evaluate_after=(2, 3))
    assert "1,024 tokens/s, 0.5 s a step (steps 2-4)" in capsys.readouterr().out


def test_a_resumed_run_projects_the_steps_it_has_left(capsys):
    clock = Clock()
    train(ThroughputReport(clock=clock), clock, steps=10, step_s=2.0, start=400)
    out = capsys.readouterr().out
    assert "(steps 402-404); the 600 steps left of max_steps 1,000 take about 20 min" in out


def test_a_short_run_reports_what_it_measured_and_other_ranks_say_nothing(capsys):
    clock = Clock()
    train(ThroughputReport(clock=clock), clock, steps=3)
    assert "(steps 2-3)" in capsys.readouterr().out
    report = ThroughputReport(clock=clock)
    report.on_train_begin(None, state(0, 0), None)
    for step in range(1, 6):
        clock.now += 1
        report.on_step_end(None, state(step, step * 8, main=False), None)
    assert capsys.readouterr().out == ""


def test_without_a_token_count_the_line_gives_seconds_a_step():
    line = throughput_line(0, 6.0, range(2, 5), 100)
    assert "tokens/s" not in line and "2 s a step" in line and "about 3 min" in line


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.2, "under a second"),
        (42, "about 42 s"),
        (600, "about 10 min"),
        (5 * 3600, "about 5.0 h"),
        (3 * 86400, "about 3.0 days"),
    ],
)
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


def test_the_model_line_names_family_shape_and_size():
    model = tiny_model(RobertaForMaskedLM, RobertaConfig)
    line = model_summary("roberta", model, 32, "sdpa")
    assert line.startswith("RoBERTa (RobertaForMaskedLM): 2 layers x 32 hidden, 2 heads, ")
    assert "32-token sequences; 0.0M parameters, sdpa attention" in line


def test_a_base_sized_model_on_a_cpu_points_to_the_family_tiny_config():
    warning = size_warning("modernbert", 115_500_000, "cpu")
    assert "base-sized model (116M parameters) on a CPU" in warning
    assert "--config recipes/configs/modernbert-tiny.yaml" in warning
    assert "roberta-tiny.yaml" in size_warning("roberta", 125_000_000, "cpu")
    assert size_warning("modernbert", 115_500_000, "cuda") is None
    assert size_warning("modernbert", 12_000_000, "cpu") is None
