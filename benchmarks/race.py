"""Time to accuracy: each way trains for the same wall-clock budget; held-out masked accuracy
against training seconds (issue 11). Called by `make bench` (bench.py) after the throughput.

    a   run_mlm.py's way as a user runs it: group_texts blocks, stock RobertaForMaskedLM (dense
        head), stock DataCollatorForLanguageModeling (15%), TrainingArguments' own defaults
    a'  a with the recipe's RoBERTa hyperparameters (roberta-tiny.yaml with the recipe's
        defaults: learning rate, warm-up, schedule, AdamW, weight decay, dropout)
    b   recipes/pretrain_mlm.py with recipes/configs/roberta-tiny.yaml
    c   recipes/pretrain_mlm.py with recipes/configs/modernbert-tiny.yaml

a -> a' is the gap the hyperparameters make; a' -> b the one the recipe's engineering makes.
Every way: the bench's tokenizer, model shape, batch and precision, and the recipe's training
text (Shakespeare minus its hold-out). The clock counts training only: it stops while the
model is evaluated on the recipe's held-out blocks, masked once with a fixed seed, so every way
answers the same questions. Each way's schedule ends at the budget: a probe measures its
s/step first and max_steps = budget / (s/step); training stops at the budget at the latest.
"""

import os
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
from transformers import (
    DataCollatorForLanguageModeling,
    RobertaForMaskedLM,
    TrainerCallback,
    set_seed,
)

from benchmarks.ways import (
    recipe_argv,
    recipe_way,
    run_mlm_blocks,
    stock_model,
    stock_training_args,
    sync,
    train_quietly,
)
from recipes.config import model_overrides
from recipes.data.masking import ResumableMaskingCollator
from recipes.data.text import load_raw_datasets, tokenize_datasets
from recipes.pretrain_mlm import parse_args as recipe_args

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CONFIGS = {
    "roberta": REPO / "recipes/configs/roberta-tiny.yaml",
    "modernbert": REPO / "recipes/configs/modernbert-tiny.yaml",
}
RACE_WAYS = {  # key: (the letter, what it is)
    "run_mlm": ("a", "run_mlm.py's way, its defaults"),
    "run_mlm_recipe_hp": ("a'", "run_mlm.py's way, the recipe's RoBERTa hyperparameters"),
    "roberta": ("b", "this recipe, roberta-tiny.yaml"),
    "modernbert": ("c", "this recipe, modernbert-tiny.yaml"),
}
# What a' takes from the recipe's parsed roberta-tiny.yaml (the rest stays run_mlm.py's)
HYPERPARAMETERS = (
    "learning_rate",
    "warmup_steps",
    "lr_scheduler_type",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
)
EVAL_MLM_PROBABILITY = 0.15  # held-out masking, the same for every way whatever it trains with
EVAL_BATCH = 64
GOAL = 1 / 3  # issue 11: the recipe's best reaches a's final accuracy in <= 1/3 of a's time


# ---- Building each way ----------------------------------------------------------------------


def _recipe_argv(name: str, args, tok_dir, bf16: bool, max_steps: int) -> list[str]:
    out = Path(args.work_dir) / "race" / name
    return ["--config", str(CONFIGS[name]), *recipe_argv(args, tok_dir, bf16)] + [
        "--output_dir",
        str(out),
        "--max_steps",
        str(max_steps),
    ]


def build(name: str, args, tokenizer, tok_dir, bf16: bool, max_steps: int, data: dict):
    """(model, TrainingArguments, collator, training blocks, settings) for race way `name`."""
    set_seed(args.seed)
    if name in CONFIGS:
        way = recipe_way(_recipe_argv(name, args, tok_dir, bf16, max_steps), tokenizer)
        key = (name, "train")
        if key not in data:  # the recipe's own loading and packing of its training split
            raw = load_raw_datasets(way.data_args)
            data[key] = tokenize_datasets({"train": raw["train"]}, tokenizer, way.data_args, None)[
                "train"
            ]
        sparse = way.model_args.sparse_mlm_head
        return way.model, way.training_args, way.collator, data[key], sparse
    hp, dropout = {}, {}
    if name == "run_mlm_recipe_hp":
        recipe = recipe_args(_recipe_argv("roberta", args, tok_dir, bf16, max_steps))
        hp = {k: getattr(recipe[3], k) for k in HYPERPARAMETERS}
        dropout = {k: v for k, v in model_overrides(recipe[2]).items() if "dropout" in k}
    out = Path(args.work_dir) / "race" / name
    training_args = stock_training_args(args, out, max_steps, bf16, **hp)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    return stock_model(tokenizer, args, **dropout), training_args, collator, data["run_mlm"], False


def settings(model, training_args, collator, sparse: bool) -> dict:
    """What the way trains with, read back from the objects it trains with."""
    config = model.config.to_dict()
    return {
        "model": type(model).__name__,
        "lm_head": "masked positions only" if sparse else "dense, every position",
        "collator": type(collator).__name__,
        "mlm_probability": collator.mlm_probability,
        "learning_rate": training_args.learning_rate,
        "warmup_steps": training_args.warmup_steps,
        "lr_scheduler_type": str(getattr(training_args.lr_scheduler_type, "value", "")),
        "adam_betas": [training_args.adam_beta1, training_args.adam_beta2],
        "weight_decay": training_args.weight_decay,
        "optim": str(getattr(training_args.optim, "value", training_args.optim)),
        "dropout": {k: v for k, v in config.items() if "dropout" in k and "classifier" not in k},
        "bf16": training_args.bf16,
    }


# ---- Held-out evaluation ----------------------------------------------------------------------


def held_out_batches(blocks, tokenizer, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The held-out blocks masked once (15%, seeded): every way answers the same questions."""
    collator = ResumableMaskingCollator(tokenizer, mlm_probability=EVAL_MLM_PROBABILITY, seed=seed)
    batches = []
    for i in range(0, len(blocks), EVAL_BATCH):
        chunk = blocks[i : i + EVAL_BATCH]
        rows = zip(chunk["input_ids"], chunk["special_tokens_mask"])
        batch = collator([{"input_ids": a, "special_tokens_mask": s} for a, s in rows])
        batches.append((batch["input_ids"], batch["labels"]))
    return batches


def most_frequent_floor(batches) -> float:
    targets = torch.cat([labels[labels != -100] for _, labels in batches]).numpy()
    return float(np.bincount(targets).max() / targets.size)


def _masked_logits(model, ids, labels):
    """(logits at the masked positions, in row-major order, and the model's loss). Only those
    positions go through the LM head, for every way: on the stock RoBERTa that is its own
    lm_head on the encoder's output there (the dense head's logits at those positions, a
    fraction of the time); the recipe's models do it in their forward when given labels."""
    masked = labels != -100
    if isinstance(model, RobertaForMaskedLM):
        hidden = model.roberta(input_ids=ids).last_hidden_state
        logits = model.lm_head(hidden[masked])
        return logits, torch.nn.functional.cross_entropy(logits.float(), labels[masked])
    out = model(input_ids=ids, labels=labels)
    logits = out.logits if out.logits.dim() == 2 else out.logits[masked]
    return logits, out.loss


def held_out_accuracy(model, batches, bf16: bool) -> dict:
    """Masked-token accuracy and loss on the held-out batches, in the training precision."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    with torch.no_grad(), autocast:
        for ids, labels in batches:
            ids, labels = ids.to(device), labels.to(device)
            logits, loss = _masked_logits(model, ids, labels)
            targets = labels[labels != -100]
            correct += int((logits.argmax(dim=-1) == targets).sum())
            total += targets.numel()
            loss_sum += float(loss) * targets.numel()
    model.train(was_training)
    return {"accuracy": correct / total, "loss": loss_sum / total}


# ---- Clocks -----------------------------------------------------------------------------------


class Probe(TrainerCallback):
    """Seconds per step over the steps after the first `warmup`."""

    def __init__(self, warmup: int, device: str):
        self.warmup, self.device, self.start, self.step_s = warmup, device, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in (self.warmup, state.max_steps):
            sync(self.device)
            if state.global_step == self.warmup:
                self.start = time.perf_counter()
            else:
                self.step_s = (time.perf_counter() - self.start) / (state.max_steps - self.warmup)


class RaceClock(TrainerCallback):
    """Training seconds, evaluation excluded: evaluates at 0 and every `every` seconds (at the
    first step end past each mark), stops training at `budget` seconds."""

    def __init__(self, budget: float, every: float, evaluate, device: str):
        self.budget, self.every, self.evaluate, self.device = budget, every, evaluate, device
        self.points, self.eval_seconds, self.ended_by = [], 0.0, None

    def _evaluate(self, state, model):
        start = time.perf_counter()
        point = {"seconds": self.elapsed, "step": state.global_step} | self.evaluate(model)
        self.points.append(point)
        self.eval_seconds += time.perf_counter() - start
        print(
            f"  {point['seconds']:7.1f} s, step {point['step']}: accuracy {point['accuracy']:.4f}"
        )

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.elapsed, self.next = 0.0, self.every
        self._evaluate(state, model)
        sync(self.device)
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        sync(self.device)
        self.elapsed += time.perf_counter() - self.start
        over, last = self.elapsed >= self.budget, state.global_step >= state.max_steps
        if over or last or self.elapsed >= self.next:
            self._evaluate(state, model)
            while self.next <= self.elapsed:
                self.next += self.every
        if over or last:
            self.ended_by = "budget" if over else "max_steps"
            control.should_training_stop = True
        self.start = time.perf_counter()  # the clock restarts after the evaluation


# ---- Summaries --------------------------------------------------------------------------------


def time_to_reach(points: list[dict], target: float) -> float | None:
    """Training seconds at which accuracy first reaches `target`, linearly interpolated between
    the two evaluations around it; None if it never does."""
    for i, p in enumerate(points):
        if p["accuracy"] >= target:
            if i == 0:
                return p["seconds"]
            q = points[i - 1]
            share = (target - q["accuracy"]) / (p["accuracy"] - q["accuracy"])
            return q["seconds"] + share * (p["seconds"] - q["seconds"])
    return None


def accuracy_at(points: list[dict], seconds: float) -> float:
    """Accuracy at `seconds`, interpolated between evaluations; after a way's last evaluation
    (it finished its schedule early) its final accuracy."""
    times = [p["seconds"] for p in points]
    return float(np.interp(seconds, times, [p["accuracy"] for p in points]))


def summarize(ways: dict, budget: float, every: float, n_evals: int, floor: float) -> dict:
    """Times to (a)'s final accuracy and the goal's verdict. A target at or below the
    most-frequent-token floor (a never left the unigram plateau) makes no verdict."""
    base = ways["run_mlm"]
    target = base["final_accuracy"]
    base_time = time_to_reach(base["points"], target)
    for way in ways.values():
        way["time_to_target_s"] = time_to_reach(way["points"], target)
        t = way["time_to_target_s"]
        way["ratio_to_a"] = None if t is None or not base_time else t / base_time
    marks = [every * k for k in range(1, n_evals + 1)]
    table = [
        {"seconds": s} | {n: accuracy_at(w["points"], s) for n, w in ways.items()} for s in marks
    ]
    recipe = {n: ways[n]["ratio_to_a"] for n in CONFIGS if n in ways}
    reached = {n: r for n, r in recipe.items() if r is not None}
    best = min(reached, key=reached.get) if reached else None
    return {
        "target_accuracy": target,
        "target_time_s": base_time,
        "accuracy_at": table,
        "best_recipe_way": best,
        "best_ratio": reached.get(best),
        "goal_ratio": GOAL,
        "target_above_floor": target > floor,
        "goal_met": best is not None and reached[best] <= GOAL and target > floor,
    }


# ---- The race ---------------------------------------------------------------------------------


def run_race(args, tokenizer, tok_dir, bf16: bool, device: str) -> dict:
    budget, every = args.race_seconds, args.race_seconds / args.race_evals
    # ---- Data: the recipe's split; run_mlm.py's blocks of the same training text ---------------
    data_args = recipe_args(_recipe_argv("roberta", args, tok_dir, bf16, 1))[0]
    raw = load_raw_datasets(data_args)
    held_out = tokenize_datasets({"validation": raw["validation"]}, tokenizer, data_args, None)
    blocks = held_out["validation"]
    if args.race_eval_blocks:  # the first N: evaluations are ~1/4 of the race's time already
        blocks = blocks.select(range(min(args.race_eval_blocks, len(blocks))))
    batches = held_out_batches(blocks, tokenizer, args.seed)
    data = {"run_mlm": run_mlm_blocks(raw["train"], tokenizer, args.max_seq_length)}
    floor = most_frequent_floor(batches)
    n_masked = sum(int((labels != -100).sum()) for _, labels in batches)
    print(f"race: {len(blocks)} held-out blocks, {n_masked} masked tokens")

    # ---- Probe: each way's s/step, so its schedule (max_steps) ends at the budget ----------
    probes, results = {}, {}
    for name in RACE_WAYS:
        steps = 1 + args.probe_steps  # the first step (thread pools, allocations) untimed
        model, targs, collator, dataset, _ = build(
            name, args, tokenizer, tok_dir, bf16, steps, data
        )
        probe = Probe(1, device)
        train_quietly(model, targs, collator, dataset, tokenizer, probe)
        probes[name] = probe.step_s
        print(f"race probe {name}: {probe.step_s:.3f} s/step")

    # ---- Race: one way after another, each for `budget` training seconds ---------------------
    for name, (letter, what) in RACE_WAYS.items():
        max_steps = max(1, int(budget / probes[name]))
        model, targs, collator, dataset, sparse = build(
            name, args, tokenizer, tok_dir, bf16, max_steps, data
        )
        print(f"race ({letter}) {what}: max_steps {max_steps}")
        clock = RaceClock(budget, every, lambda m: held_out_accuracy(m, batches, bf16), device)
        trainer = train_quietly(model, targs, collator, dataset, tokenizer, clock)
        results[name] = {
            "letter": letter,
            "description": what,
            "settings": settings(model, targs, collator, sparse),
            "probe_step_s": probes[name],
            "max_steps": max_steps,
            "steps": trainer.state.global_step,
            "ended_by": clock.ended_by,
            "train_seconds": clock.points[-1]["seconds"],
            "eval_seconds": clock.eval_seconds,
            "points": clock.points,
            "final_accuracy": clock.points[-1]["accuracy"],
            "load_average_end": os.getloadavg(),  # other jobs on the machine slow a way down
        }
    return {
        "budget_s": budget,
        "eval_every_s": every,
        "probe_steps": args.probe_steps,
        "held_out": {
            "blocks": len(blocks),
            "blocks_available": len(held_out["validation"]),
            "masked_tokens": n_masked,
            "mlm_probability": EVAL_MLM_PROBABILITY,
            "seed": args.seed,
            "most_frequent_floor": floor,
            "validation_split_percentage": data_args.validation_split_percentage,
        },
        "ways": results,
    } | summarize(results, budget, every, args.race_evals, floor)


# ---- Report: results.md section, time_to_accuracy.png -----------------------------------------


def _fmt(x, spec=".3f", none="not reached"):
    return none if x is None else format(x, spec)


def race_markdown(r: dict) -> list[str]:
    race, s = r["race"], r["settings"]
    ways, h = race["ways"], race["held_out"]
    label = {n: f"({w['letter']})" for n, w in ways.items()}
    lines = [
        "## Time to accuracy: every way trains for the same seconds (issue 11)",
        "",
        f"Each way trains for {race['budget_s']:.0f} s of training time on the same tokenizer, "
        f"Shakespeare training text, model shape and batch ({s['batch_size']} x "
        f"{s['max_seq_length']}), in {s['precision']}. Every {race['eval_every_s']:.0f} s the "
        f"clock stops and the model is evaluated on the recipe's held-out blocks (first "
        f"{h['validation_split_percentage']:g}% of paragraphs): {h['blocks']} blocks of "
        f"{h['blocks_available']}, "
        f"{h['masked_tokens']:,} masked tokens ({h['mlm_probability']:.0%}, masked once with seed "
        f"{h['seed']}, the same for every way). Always predicting the most frequent masked token "
        f"scores {h['most_frequent_floor']:.3f}. Each way's schedule is sized to the budget: a "
        f"probe of {race['probe_steps']} steps measured its s/step and max_steps = budget / "
        "(s/step); it stops at the budget at the latest. Ways run one after another, so load "
        "from other jobs can favour one over another: the 1-minute load average after each way "
        "was "
        + ", ".join(f"{label[n]} {w['load_average_end'][0]:.1f}" for n, w in ways.items())
        + ".",
        "",
        "| way | what | model, LM head | collator (masking) | lr | warm-up | schedule "
        "| AdamW betas | weight decay | dropout | probe s/step | max_steps | steps run | ended by |",
        "|---|---|---|---|---:|---:|---|---|---:|---|---:|---:|---:|---|",
    ]
    for n, w in ways.items():
        c = w["settings"]
        dropout = ", ".join(f"{k} {v:g}" for k, v in c["dropout"].items()) or "none"
        lines.append(
            f"| {label[n]} | {w['description']} | {c['model']}, {c['lm_head']} "
            f"| {c['collator']} ({c['mlm_probability']:.0%}) | {c['learning_rate']:g} "
            f"| {c['warmup_steps']:g} | {c['lr_scheduler_type']} "
            f"| ({c['adam_betas'][0]:g}, {c['adam_betas'][1]:g}) | {c['weight_decay']:g} "
            f"| {dropout} | {w['probe_step_s']:.3f} | {w['max_steps']:,} | {w['steps']:,} "
            f"| {w['ended_by']} |"
        )
    lines += [
        "",
        "A warm-up below 1 is a share of max_steps. (a) is run_mlm.py as a user runs it: "
        "what is not listed is TrainingArguments' default (fused AdamW, gradient clipping at "
        "1.0). (a') changes only the hyperparameters, to the recipe's RoBERTa ones; (b) adds "
        "the recipe's engineering (LM head at masked positions only, its collator).",
        "",
        "### Held-out masked-token accuracy at equal training time",
        "",
        "| training seconds | " + " | ".join(label[n] for n in ways) + " |",
        "|---:|" + "---:|" * len(ways),
    ]
    for row in race["accuracy_at"]:
        cells = " | ".join(f"{row[n]:.3f}" for n in ways)
        lines.append(f"| {row['seconds']:.0f} | {cells} |")
    cells = " | ".join(
        f"{w['final_accuracy']:.3f} ({w['train_seconds']:.0f} s)" for w in ways.values()
    )
    lines += [
        f"| end | {cells} |",
        "",
        "Interpolated between evaluations; a way that finished its schedule before the budget "
        "keeps its final accuracy.",
        "",
        f"### Time to reach (a)'s final accuracy, {race['target_accuracy']:.3f}",
        "",
        "| way | training seconds | x (a)'s time |",
        "|---|---:|---:|",
    ]
    for n, w in ways.items():
        lines.append(
            f"| {label[n]} {w['description']} | {_fmt(w['time_to_target_s'], '.0f')} "
            f"| {_fmt(w['ratio_to_a'], '.2f', '-')} |"
        )
    best = race["best_recipe_way"]
    verdict = (
        f"the recipe's best, {label[best]}, takes {race['best_ratio']:.2f} of (a)'s time: "
        + ("**met**" if race["goal_met"] else "**not met**")
        if best
        else "(a) never rose above its starting accuracy: no ratio"
        if race["target_time_s"] == 0
        else "neither recipe way reached it: **not met**"
    )
    if not race.get("target_above_floor", True):
        verdict = verdict.replace(": **met**", "").replace(": **not met**", "")
        verdict += (
            f", but **no verdict**: (a)'s final accuracy ({race['target_accuracy']:.3f}) is not "
            f"above the most-frequent-token floor ({race['held_out']['most_frequent_floor']:.3f}):"
            " (a) never left the unigram plateau in its budget, so reaching it measures nothing;"
            " run a longer budget or on a quieter machine"
        )
    lines += [
        "",
        f"Goal: the recipe's best reaches (a)'s final accuracy in at most 1/3 of (a)'s time; "
        f"{verdict}.",
        "",
        "![held-out accuracy against training seconds](time_to_accuracy.png)",
    ]
    return lines


def plot_race(r: dict, path: Path) -> None:
    race, m, s = r["race"], r["machine"], r["settings"]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for w in race["ways"].values():
        xs = [p["seconds"] for p in w["points"]]
        ys = [p["accuracy"] for p in w["points"]]
        ax.plot(xs, ys, marker="o", markersize=3, label=f"({w['letter']}) {w['description']}")
    floor = race["held_out"]["most_frequent_floor"]
    ax.axhline(floor, color="gray", linestyle="--", label=f"most frequent token ({floor:.3f})")
    target = race["target_accuracy"]
    ax.axhline(target, color="black", linestyle=":", linewidth=1, label="(a)'s final accuracy")
    if race["target_time_s"]:
        ax.axvline(GOAL * race["target_time_s"], color="tab:red", linestyle=":", linewidth=1,
                   label="goal: 1/3 of (a)'s time")  # fmt: skip
    ax.set_xlabel("training seconds (evaluation excluded)")
    ax.set_ylabel("held-out masked-token accuracy")
    ax.set_xlim(0, max(race["budget_s"], *(w["train_seconds"] for w in race["ways"].values())))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    loads = [w["load_average_end"][0] for w in race["ways"].values()]
    load = max([(m.get("load_average_start") or [0])[0], *loads])
    ax.set_title(
        f"{m.get('gpu') or m['cpu']} ({m['cores']} cores, load up to {load:.1f}), "
        f"{s['precision']}, batch {s['batch_size']} x {s['max_seq_length']}, {m['date']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
