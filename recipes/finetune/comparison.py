"""Pretrained vs random weights, as a measurement: label counts x seeds x starting weights x
learning rates, run one after the other; the summary (mean, spread, standard error of the
difference), its tables and its one-line verdict.

One fine-tuning run says little: two seeds of the same run can differ as much as the gap people
read as "pretraining helped" (docs/measurements.md, "Does pretraining pay off?"). So the comparison is
a grid of runs, each side's learning rate picked on the validation split, reported on the test
split. A grid can take hours, so each finished run is kept in output_dir/_runs/<run>/ and the
same command, killed and started again, skips it (training.py `save_finished_run`).
"""

import hashlib
import io
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from transformers import AutoModelForSequenceClassification, set_seed

from recipes.finetune.training import (
    fine_tune,
    load_finished_run,
    run_arguments,
    save_finished_run,
)
from recipes.finetune_arguments import ComparisonArguments
from recipes.models.checkpoints import pretrained_model
from recipes.runs.finish import global_batch_size
from recipes.runs.start import RUNS_FOLDER

PRETRAINED, CONTROL = "pretrained", "random init"


# ------------------------------------------------------------------------------ the plan
def label_counts(requested: list[int] | None, available: int) -> list[int]:
    """The learning curve's x values: sorted, at most the training split's size, no repeats."""
    return sorted({min(n, available) for n in requested or [available]})


def learning_rates(args: ComparisonArguments, learning_rate: float) -> dict[str, list[float]]:
    """Learning rates each side tries: the sweep's, or its one rate."""
    if args.sweep_learning_rates:
        rates = sorted(set(args.sweep_learning_rates))
        return {PRETRAINED: rates, CONTROL: rates}
    return {PRETRAINED: [learning_rate], CONTROL: [args.control_learning_rate or learning_rate]}


def run_steps(examples: int, batch: int, epochs: float, min_steps: int) -> int:
    """Optimizer steps for one run: `epochs` passes over `examples`, at least `min_steps`."""
    return max(math.ceil(math.ceil(examples / batch) * epochs), min_steps, 1)


@dataclass(frozen=True)
class PlannedRun:
    """One fine-tuning run of the grid. `candidate`: most labels and first seed, the run whose
    loss curve is plotted and (pretrained) whose model is saved, if its learning rate is kept."""

    side: str  # PRETRAINED or CONTROL: the weights the encoder starts from
    labels: int
    seed: int
    learning_rate: float
    steps: int
    candidate: bool

    @property
    def name(self) -> str:
        return f"{self.side.replace(' ', '-')}-{self.labels}-{self.learning_rate:g}-{self.seed}"

    @property
    def keeps_model(self) -> bool:
        """Its best model is kept on disk: the command may save it at the end."""
        return self.candidate and self.side == PRETRAINED


@dataclass(frozen=True)
class ComparisonPlan:
    """Every run of one command, in the order they train."""

    runs: list[PlannedRun]
    starting_weights: list[str]  # [PRETRAINED] or [PRETRAINED, CONTROL]
    seeds: list[int]
    evaluations_per_run: int


def plan_comparison(
    args: ComparisonArguments, with_control: bool, training_args, train_size: int
) -> ComparisonPlan:
    """Label counts x seeds x starting weights x learning rates, with each run's length."""
    counts = label_counts(args.label_counts, train_size)
    rates = learning_rates(args, training_args.learning_rate)
    starting_weights = [PRETRAINED] + [CONTROL] * with_control
    seeds = [training_args.seed + k for k in range(args.seeds)]
    batch = global_batch_size(training_args)
    runs = []
    for n in counts:
        steps = training_args.max_steps
        if steps <= 0:
            steps = run_steps(n, batch, training_args.num_train_epochs, args.min_train_steps)
        for seed in seeds:
            candidate = n == counts[-1] and seed == seeds[0]
            for side in starting_weights:
                runs += [PlannedRun(side, n, seed, lr, steps, candidate) for lr in rates[side]]
    return ComparisonPlan(runs, starting_weights, seeds, args.evaluations_per_run)


# ------------------------------------------------------------------------------ the runs
def run_comparison(
    plan: ComparisonPlan, splits: dict, tokenizer, config, model_args, training_args
) -> dict[str, dict]:
    """Fine-tune every planned run, or take its record from output_dir/_runs where an earlier
    command (killed, or stopped) finished it with the same settings: {run name: record}, a
    record being {"key", "run": side, labels, seed, learning_rate, steps and the metrics,
    "log_history"}. The run that was in progress starts again from scratch."""
    root = Path(training_args.output_dir) / RUNS_FOLDER
    shared = shared_settings(model_args, training_args, splits, config)
    records, to_train = {}, []
    for run in plan.runs:
        folder = root / run.name
        args = run_arguments(
            training_args, folder, run.seed, run.learning_rate, run.steps, plan.evaluations_per_run
        )
        key = run_key(shared, run, args)
        record = load_finished_run(folder, key, needs_model=run.keeps_model)
        if record is None:
            to_train.append((run, folder, args, key))
        else:
            records[run.name] = record
    if records:
        n = len(records)
        print(f"skipping {n} finished run{'s' * (n > 1)} (kept in {root} by an earlier command)")

    subsets, loaded = {}, False
    for run, folder, args, key in to_train:
        # a killed command's run, cut short, or one finished with other settings
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        # the same n examples for both sides and every rate, a different draw per seed
        if (run.labels, run.seed) not in subsets:
            train = splits["train"].shuffle(seed=run.seed).select(range(run.labels))
            subsets[run.labels, run.seed] = dict(splits, train=train)
        set_seed(run.seed)  # the new classifier head (and the control) start alike
        model = starting_model(run.side, config, model_args, quiet=loaded)
        loaded |= run.side == PRETRAINED
        trainer, metrics = fine_tune(
            model, args, subsets[run.labels, run.seed], tokenizer, len(config.id2label),
            model_args.classifier_learning_rate,
        )  # fmt: skip
        result = {"side": run.side, "labels": run.labels, "seed": run.seed,
                  "learning_rate": run.learning_rate, "steps": run.steps, **metrics}  # fmt: skip
        result["validation_accuracy"] = metrics.get("eval_accuracy", float("nan"))
        print(f"{run.side}: {run.labels:,} labels, lr {run.learning_rate:g}, seed {run.seed}, "
              f"{run.steps} steps: validation {result['validation_accuracy']:.3f}, "
              f"test {metrics['test_accuracy']:.3f}")  # fmt: skip
        records[run.name] = {"key": key, "run": result, "log_history": trainer.state.log_history}
        save_finished_run(trainer, folder, records[run.name], keep_model=run.keeps_model)
    return records


def starting_model(side: str, config, model_args, quiet: bool):
    """The classifier a run starts from: the checkpoint's encoder under a new head (its token
    embeddings frozen if `freeze_embeddings`), or the same architecture from random weights.
    `quiet`: the checkpoint's load report was printed already."""
    if side == CONTROL:
        return AutoModelForSequenceClassification.from_config(config)
    model = pretrained_model(model_args.model_name_or_path, config, quiet=quiet)
    if model_args.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    return model


def shared_settings(model_args, training_args, splits: dict, config) -> dict:
    """What every run of the command depends on besides its own TrainingArguments: the model
    (its path, and the size and time of its files, so a checkpoint trained again in the same
    folder is not mistaken for the old one), its config with this task's labels, the options of
    the model side, the number of processes, and the tokenized data itself."""
    model = Path(model_args.model_name_or_path)
    files = {}
    if model.is_dir():
        model = model.resolve()
        for file in sorted(model.iterdir()):
            if file.is_file():
                files[file.name] = [file.stat().st_size, file.stat().st_mtime_ns]
    options = {k: v for k, v in vars(model_args).items() if k != "from_scratch_control"}
    return {
        "model": str(model),
        "model_files": files,
        "config": config.to_dict(),
        "model_options": options,
        "world_size": training_args.world_size,
        "data": splits_digest(splits),
    }


# Settings that change neither a run's numbers nor its log: where it is written, what it tells.
UNKEYED = {"output_dir", "run_name", "report_to", "disable_tqdm", "push_to_hub"}


def run_key(shared: dict, run: PlannedRun, args) -> str:
    """A digest of everything one run's result depends on: a finished run is reused only by a
    command that would train it exactly so again."""
    own = {
        k: v
        for k, v in args.to_dict().items()
        if k not in UNKEYED and not k.startswith("hub_")  # fmt: skip
    }
    text = json.dumps(
        {"shared": shared, "side": run.side, "labels": run.labels, "args": own},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def splits_digest(splits: dict) -> str:
    """A digest of the tokenized splits, row by row (Arrow IPC bytes of each split's table)."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        table = splits[name].with_format("arrow")[:].combine_chunks()
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(name.encode() + b"\0" + sink.getvalue())
    return digest.hexdigest()


def runs_at_kept_rates(plan: ComparisonPlan, top_row: dict) -> dict[str, PlannedRun]:
    """Per side, the candidate run (most labels, first seed) at the side's kept learning rate:
    the pretrained one is the model the command saves; both give the plotted loss curves."""
    return {
        run.side: run
        for run in plan.runs
        if run.candidate and run.side in top_row
        and run.learning_rate == top_row[run.side]["learning_rate"]
    }  # fmt: skip


# ------------------------------------------------------------------------------ summary
def summarize(runs: list[dict], starting_weights: list[str]) -> list[dict]:
    """One row per label count: per side the kept learning rate (best mean validation
    accuracy), its test accuracies over seeds, mean and standard deviation; and the difference
    pretrained - control with its standard error, sqrt(sd_p^2 / k + sd_c^2 / k)."""
    rows = []
    for n in sorted({r["labels"] for r in runs}):
        row = {"labels": n}
        for side in starting_weights:
            mine = [r for r in runs if r["labels"] == n and r["side"] == side]
            by_rate = {}
            for r in mine:
                by_rate.setdefault(r["learning_rate"], []).append(r)
            rate = max(by_rate, key=lambda lr: np.mean([r["validation_accuracy"] for r in by_rate[lr]]))  # fmt: skip
            at_rate = by_rate[rate]
            accuracy = [r["test_accuracy"] for r in at_rate]
            row[side] = {
                "learning_rate": rate,
                "validation_accuracy": float(np.mean([r["validation_accuracy"] for r in at_rate])),
                "accuracy": accuracy,
                "mean": float(np.mean(accuracy)),
                "std": float(np.std(accuracy, ddof=1)) if len(accuracy) > 1 else None,
                **(
                    {"f1": float(np.mean([r["test_f1"] for r in at_rate]))}
                    if "test_f1" in at_rate[0]
                    else {}
                ),  # fmt: skip
            }
        if CONTROL in row and PRETRAINED in row:
            p, c = row[PRETRAINED], row[CONTROL]
            row["difference"] = p["mean"] - c["mean"]
            k = len(p["accuracy"])
            row["difference_se"] = (
                math.sqrt((p["std"] ** 2 + c["std"] ** 2) / k) if p["std"] is not None else None
            )
        rows.append(row)
    return rows


def comparison_results(
    plan: ComparisonPlan,
    records: dict[str, dict],
    sizes: dict[str, int],
    baseline: dict,
    label_names: list[str],
    freeze_embeddings: bool,
) -> dict:
    """all_results.json: the learning curve, every run, the top row's numbers, the majority
    baseline (`baseline`: recipes/runs/metrics.py majority_baseline)."""
    runs = [records[run.name]["run"] for run in plan.runs]
    rows = summarize(runs, plan.starting_weights)
    top = rows[-1]
    results = {
        "test_accuracy": top[PRETRAINED]["mean"],
        "train_examples": sizes["train"],
        "validation_examples": sizes["validation"],
        "test_examples": sizes["test"],
        "seeds": plan.seeds,
        "freeze_embeddings": freeze_embeddings,
        "learning_curve": rows,
        "runs": [{k: v for k, v in r.items() if not k.startswith("train_")} for r in runs],
    }
    if "f1" in top[PRETRAINED]:
        results["test_f1"] = top[PRETRAINED]["f1"]
    if CONTROL in top:
        results["control_test_accuracy"] = top[CONTROL]["mean"]
        results["test_accuracy_difference"] = top["difference"]
        results["test_accuracy_difference_se"] = top["difference_se"]
    results |= {f"majority_baseline_{k}": v for k, v in baseline.items() if k != "label"}
    results["majority_label"] = label_names[baseline["label"]]
    return results


def report(results: dict, path: str) -> str:
    """The table of test accuracies with the majority floor under it, and the verdict line."""
    floor = (f"always '{results['majority_label']}' (the most frequent training label): "
             f"{results['majority_baseline_accuracy']:.3f}")  # fmt: skip
    rows, seeds = results["learning_curve"], len(results["seeds"])
    return "\n".join(
        [
            f"test accuracy on {results['test_examples']:,} examples:",
            text_table(rows, seeds, floor),
            summary_line(results, path),
        ]
    )


def summary_line(results: dict, path: str) -> str:
    top = results["learning_curve"][-1]
    n = f"{top['labels']:,} labels"
    line = f"test accuracy {side_text(top[PRETRAINED])} fine-tuned from {path} ({n})"
    if CONTROL in top:
        line += f" vs {side_text(top[CONTROL])} from random weights (same architecture and data)"
    majority = {"mean": results["majority_baseline_accuracy"], "std": None}
    if "majority_baseline_f1" in results:
        majority["f1"] = results["majority_baseline_f1"]
    line += (
        f" vs {side_text(majority)} for always predicting "
        f"'{results['majority_label']}' (the most frequent training label)"
    )
    if CONTROL in top:
        line += f"; pretraining: {difference_text(top)}"
    return line


def side_text(side: dict) -> str:
    """'0.812 ± 0.013 (F1 0.790)': mean ± sd over seeds, and the F1 where there is one."""
    text = mean_sd(side)
    return text if "f1" not in side else f"{text} (F1 {side['f1']:.3f})"


def mean_sd(side: dict) -> str:
    """'0.812 ± 0.013', or the mean alone with one seed."""
    return f"{side['mean']:.3f}" + (f" ± {side['std']:.3f}" if side["std"] is not None else "")


def difference_text(row: dict) -> str:
    """'+0.081 (5.2 standard errors)', or the difference alone with one seed."""
    text = f"{row['difference']:+.3f}"
    se = row.get("difference_se")
    if se is None:
        return text + " (one seed: no standard error)"
    return text + (f" ({row['difference'] / se:.1f} standard errors)" if se > 0 else " (SE 0)")


def table(rows: list[dict], seeds: int) -> tuple[list[str], list[list[str]]]:
    """Header and cells: labels, each side's mean ± sd (its learning rate), the difference."""
    sides = [s for s in (PRETRAINED, CONTROL) if s in rows[0]]
    header = ["labels"] + [f"{s} (mean ± sd over {seeds} seed{'s' * (seeds > 1)})" for s in sides]
    if len(sides) == 2:
        header.append("difference")
    cells = []
    for row in rows:
        line = [f"{row['labels']:,}"]
        line += [f"{mean_sd(row[s])} (lr {row[s]['learning_rate']:g})" for s in sides]
        if len(sides) == 2:
            line.append(difference_text(row))
        cells.append(line)
    return header, cells


def text_table(rows: list[dict], seeds: int, floor: str) -> str:
    header, cells = table(rows, seeds)
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)) for line in [header, *cells]]
    return "\n".join(lines + [floor])


def markdown_table(rows: list[dict], seeds: int) -> str:
    header, cells = table(rows, seeds)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
