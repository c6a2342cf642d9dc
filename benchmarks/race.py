"""Time to accuracy: each way trains for the same wall-clock budget; held-out masked accuracy
against training seconds. Called by `make bench` (bench.py) after the throughput.

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

The verdict: the time each way needs to reach a threshold well above the most-frequent-token
floor, measured at the first evaluation that reaches it (every 10 s in the first minute, where
the curves leave the plateau, then every 30 s), and whether the recipe's best needs at most
1/3 of (a)'s time. A way that never reaches it is reported as such.
"""

import os
import time
from pathlib import Path

import matplotlib
import torch
from transformers import (
    DataCollatorForLanguageModeling,
    TrainerCallback,
    set_seed,
)

from benchmarks.ways import (
    STOCK_FAMILY,
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
from recipes.data.packing import tokenize_datasets
from recipes.data.text import load_raw_datasets
from recipes.models.families import FAMILIES
from recipes.pretrain_mlm import parse_args as recipe_args
from recipes.runs.metrics import most_frequent_share

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# (b) and (c): this recipe with a family's tiny config, each way named after its family
RECIPE_RACE = [("b", STOCK_FAMILY), ("c", "modernbert")]
CONFIGS = {family: REPO / FAMILIES[family].tiny_config for _, family in RECIPE_RACE}
RACE_WAYS = {  # key: (letter, what it is)
    "run_mlm": ("a", "run_mlm.py's way, its defaults"),
    "run_mlm_recipe_hp": ("a'", "run_mlm.py's way, the recipe's RoBERTa hyperparameters"),
} | {family: (letter, f"this recipe, {CONFIGS[family].name}") for letter, family in RECIPE_RACE}
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
GOAL = 1 / 3  # the recipe's best reaches the threshold in at most 1/3 of (a)'s time
# Not (a)'s or (a')'s final accuracy: in minutes both end on or near the floor, where evaluations
# wander by ~0.01; 1.5x the floor (0.116 for 0.077) takes learning more than token frequencies.
THRESHOLD_X_FLOOR = 1.5
EARLY_UNTIL = 60.0  # seconds of dense evaluations: the curves leave the plateau in the first minute


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
        recipe = recipe_args(_recipe_argv(STOCK_FAMILY, args, tok_dir, bf16, max_steps))
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
    return most_frequent_share(targets)


def _masked_logits(model, ids, labels):
    """(logits at the masked positions, in row-major order, and the model's loss). Only those
    positions go through the LM head, for every way: where the family's record names the
    head (RoBERTa's lm_head), that head on the encoder's output there (the dense head's logits
    at those positions, a fraction of the time), whatever head the way trained with; a model
    with its own sparse prediction (ModernBERT) does it in its forward when given labels."""
    masked = labels != -100
    head = FAMILIES[model.config.model_type].mlm_head
    if head:
        hidden = model.base_model(input_ids=ids).last_hidden_state
        logits = model.get_submodule(head)(hidden[masked])
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


def eval_marks(budget: float, every: float, early_every: float) -> list[float]:
    """Training seconds at which the race evaluates: every `early_every` s in the first
    EARLY_UNTIL s, then every `every` s; the budget last."""
    marks, t = [], 0.0
    while (t := round(t + (early_every if t < EARLY_UNTIL else every), 6)) < budget:
        marks.append(t)
    return [*marks, budget]


class RaceClock(TrainerCallback):
    """Training seconds, evaluation excluded: evaluates at 0 and at the first step end past
    each of `marks` (its last is the budget, where training stops)."""

    def __init__(self, marks: list[float], evaluate, device: str):
        self.marks, self.evaluate, self.device = marks, evaluate, device
        self.budget = marks[-1]
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
        self.elapsed, self.next = 0.0, 0
        self._evaluate(state, model)
        sync(self.device)
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        sync(self.device)
        self.elapsed += time.perf_counter() - self.start
        over, last = self.elapsed >= self.budget, state.global_step >= state.max_steps
        if over or last or self.elapsed >= self.marks[self.next]:
            self._evaluate(state, model)
            while self.next < len(self.marks) - 1 and self.marks[self.next] <= self.elapsed:
                self.next += 1
        if over or last:
            self.ended_by = "budget" if over else "max_steps"
            control.should_training_stop = True
        self.start = time.perf_counter()  # the clock restarts after the evaluation


# ---- Summaries --------------------------------------------------------------------------------


def threshold_for(floor: float) -> float:
    return THRESHOLD_X_FLOOR * floor


def time_to_reach(points: list[dict], target: float) -> float | None:
    """Training seconds of the first evaluation at or above `target` (measured, not
    interpolated: the crossing lies between it and the evaluation before); None if none is."""
    return next((p["seconds"] for p in points if p["accuracy"] >= target), None)


def accuracy_at(points: list[dict], seconds: float) -> float:
    """The accuracy of the first evaluation at or after `seconds` (the clock evaluates at the
    first step end past each mark); a way that stopped before it keeps its final accuracy."""
    return next((p["accuracy"] for p in points if p["seconds"] >= seconds), points[-1]["accuracy"])


def verdict(ways: dict, threshold: float) -> tuple[str, str]:
    """('met' | 'not met' | 'no verdict', the goal line), from each way's time to `threshold`.
    (a) not reaching the threshold in its T seconds bounds its time from below by T only: the
    recipe's best then meets the goal at <= T/3 and is undecided above."""
    label = {n: f"({w['letter']})" for n, w in ways.items()}
    head = f"{THRESHOLD_X_FLOOR:g}x the floor ({threshold:.3f})"
    times = {n: time_to_reach(ways[n]["points"], threshold) for n in CONFIGS if n in ways}
    reached = {n: t for n, t in times.items() if t is not None}
    a_time = time_to_reach(ways["run_mlm"]["points"], threshold)
    a_seconds = ways["run_mlm"]["train_seconds"]
    a_line = f"(a) never does in {a_seconds:.0f} s" if a_time is None else f"(a) at {a_time:.0f} s"
    if not reached:
        longest = max(ways[n]["train_seconds"] for n in times)
        return "not met", f"neither recipe way reaches {head} in {longest:.0f} s; {a_line}"
    best = min(reached, key=reached.get)
    t = reached[best]
    line = f"{label[best]} reaches {head} at {t:.0f} s; {a_line}"
    if a_time is not None:
        ratio = t / a_time if a_time > 0 else float("inf")
        met = ratio <= GOAL
        return ("met" if met else "not met"), f"{line}: {ratio:.2f} of (a)'s time"
    if t <= GOAL * a_seconds:
        return "met", f"{line}, so {label[best]} takes under {t / a_seconds:.2f} of (a)'s time"
    return "no verdict", (
        f"{line}, more than 1/3 of that: rerun with --race_seconds {3 * t:.0f} or more"
    )


def summarize(ways: dict, marks: list[float], floor: float) -> dict:
    """Accuracy at equal time, each way's time to the threshold, and the goal's verdict."""
    threshold = threshold_for(floor)
    for way in ways.values():
        t = way["time_to_threshold_s"] = time_to_reach(way["points"], threshold)
        # the crossing lies after the evaluation before it: the measurement's resolution
        before = [p["seconds"] for p in way["points"] if t is not None and p["seconds"] < t]
        way["eval_before_threshold_s"] = max(before, default=None)
    table = [
        {"seconds": s} | {n: accuracy_at(w["points"], s) for n, w in ways.items()} for s in marks
    ]
    result, line = verdict(ways, threshold)
    return {
        "threshold_accuracy": threshold,
        "threshold_x_floor": THRESHOLD_X_FLOOR,
        "accuracy_at": table,
        "goal_ratio": GOAL,
        "verdict": result,
        "goal_line": line,
    }


# ---- The race ---------------------------------------------------------------------------------


def run_race(args, tokenizer, tok_dir, bf16: bool, device: str) -> dict:
    budget = args.race_seconds
    marks = eval_marks(budget, args.race_eval_every, args.race_eval_every_early)
    # ---- Data: the recipe's split; run_mlm.py's blocks of the same training text ---------------
    data_args = recipe_args(_recipe_argv(STOCK_FAMILY, args, tok_dir, bf16, 1))[0]
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
        clock = RaceClock(marks, lambda m: held_out_accuracy(m, batches, bf16), device)
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
    summary = summarize(results, marks, floor)
    print(f"race verdict: {summary['goal_line']}: {summary['verdict']}")
    return {
        "budget_s": budget,
        "eval_marks_s": marks,
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
    } | summary


# ---- Report: results.md section, time_to_accuracy.png -----------------------------------------


def _context(r: dict) -> tuple[dict, dict, str]:
    """(machine, settings, command) the race ran with: its own record, which a later
    throughput-only run keeps beside its own."""
    measured = r["race"].get("measured") or r
    return measured["machine"], measured["settings"], measured["command"]


def race_markdown(r: dict) -> list[str]:
    race = r["race"]
    m, s, command = _context(r)
    ways, h = race["ways"], race["held_out"]
    label = {n: f"({w['letter']})" for n, w in ways.items()}
    marks = ", ".join(f"{x:g}" for x in race["eval_marks_s"])
    # in a run of its own (the throughput above kept from an earlier one), say which
    apart = m["date"] != r["machine"]["date"]
    lines = [
        "## Time to accuracy: every way trains for the same seconds",
        "",
        (f"Measured {m['date']} with `{command.strip()}` on " if apart else "On ")
        + f"{m['cpu']} ({m['cores']} cores), {s['precision']}. Each way trains for {race['budget_s']:.0f} s of training time on the "
        f"same tokenizer, Shakespeare training text, model shape and batch ({s['batch_size']} x "
        f"{s['max_seq_length']}). The clock stops while the model is evaluated, at 0 s and at "
        f"the first step end past {marks} s, on the recipe's held-out blocks (first "
        f"{h['validation_split_percentage']:g}% of paragraphs): {h['blocks']} blocks of "
        f"{h['blocks_available']}, {h['masked_tokens']:,} masked tokens "
        f"({h['mlm_probability']:.0%}, masked once with seed {h['seed']}, the same for every "
        "way). Always predicting the most frequent masked token scores "
        f"{h['most_frequent_floor']:.3f}.",
        "",
        "### Held-out masked-token accuracy at equal training time",
        "",
        "| training seconds | " + " | ".join(label[n] for n in ways) + " |",
        "|---:|" + "---:|" * len(ways),
    ]
    for row in race["accuracy_at"]:
        cells = " | ".join(f"{row[n]:.3f}" for n in ways)
        lines.append(f"| {row['seconds']:g} | {cells} |")
    cells = " | ".join(
        f"{w['final_accuracy']:.3f} ({w['train_seconds']:.0f} s)" for w in ways.values()
    )
    threshold = race["threshold_accuracy"]
    lines += [
        f"| end | {cells} |",
        "",
        "Each cell is the way's evaluation at the first step end past that second (at most one "
        "step later); a way that finished its schedule before it keeps its final accuracy.",
        "",
        f"### Time to {race['threshold_x_floor']:g}x the most-frequent-token floor, "
        f"{threshold:.3f}",
        "",
        "| way | first evaluation at or above it | the evaluation before |",
        "|---|---:|---:|",
    ]
    for n, w in ways.items():
        t = w["time_to_threshold_s"]
        reached = f"never in {w['train_seconds']:.0f} s" if t is None else f"{t:.0f} s"
        lines.append(
            f"| {label[n]} {w['description']} | {reached} "
            f"| {_fmt(w['eval_before_threshold_s'], '.0f', '-')}"
            + (" s |" if w["eval_before_threshold_s"] is not None else " |")
        )
    lines += [
        "",
        f"The crossing lies between the two evaluations. Goal: the recipe's best reaches "
        f"{race['threshold_x_floor']:g}x the floor in at most 1/3 of (a)'s time; "
        f"{race['goal_line']}: **{race['verdict']}**.",
        "",
        "![held-out accuracy against training seconds](time_to_accuracy.png)",
        "",
        "### What each way trained with",
        "",
        "Each way's schedule is sized to the budget: a probe of "
        f"{race['probe_steps']} steps measured its s/step and max_steps = budget / (s/step); it "
        "stops at the budget at the latest. Ways run one after another, so load from other jobs "
        "can favour one over another: the 1-minute load average after each way was "
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
    ]
    return lines


def _fmt(x, spec=".3f", none="not reached"):
    return none if x is None else format(x, spec)


def plot_race(r: dict, path: Path) -> None:
    race = r["race"]
    m, s, _ = _context(r)
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for w in race["ways"].values():
        xs = [p["seconds"] for p in w["points"]]
        ys = [p["accuracy"] for p in w["points"]]
        (line,) = ax.plot(
            xs, ys, marker="o", markersize=3, label=f"({w['letter']}) {w['description']}"
        )
        if (t := w["time_to_threshold_s"]) is not None:  # the measured crossing
            ax.plot([t], [next(y for x, y in zip(xs, ys) if x == t)], marker="o", markersize=8,
                    fillstyle="none", color=line.get_color())  # fmt: skip
    floor = race["held_out"]["most_frequent_floor"]
    ax.axhline(floor, color="gray", linestyle="--", label=f"most frequent token ({floor:.3f})")
    threshold = race["threshold_accuracy"]
    ax.axhline(threshold, color="black", linestyle=":", linewidth=1,
               label=f"{race['threshold_x_floor']:g}x the floor ({threshold:.3f})")  # fmt: skip
    ax.set_xlabel("training seconds (evaluation excluded)")
    ax.set_ylabel("held-out masked-token accuracy")
    ax.set_xlim(0, max(race["budget_s"], *(w["train_seconds"] for w in race["ways"].values())))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    loads = [w["load_average_end"][0] for w in race["ways"].values()]
    load = max([(m.get("load_average_start") or [0])[0], *loads])
    ax.set_title(
        f"{m.get('gpu') or m['cpu']} ({m['cores']} cores, load up to {load:.1f}), "
        f"{s['precision']}, batch {s['batch_size']} x {s['max_seq_length']}, {m['date']}\n"
        f"{race['goal_line']}: {race['verdict']}",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
