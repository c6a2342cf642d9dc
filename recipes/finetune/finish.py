"""Fine-tuning's end of run: the kept model, its loss curves and learning curve, and a card that
sets the results next to the random-init control and the majority label, through the one writer
(recipes/runs/finish.py `finish_run`)."""

import json
import os
import shlex
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

from recipes.finetune import comparison
from recipes.models.checkpoints import HUB_PATTERNS, recorded_base, task_head
from recipes.run_folder import FINISHED_MARKER
from recipes.runs.card import has_nsp
from recipes.runs.finish import LOSS_CURVE, finish_run, hyperparameters

LEARNING_CURVE = "learning_curve.png"  # test accuracy against labelled examples


def finish_classification_run(
    trainer, args, results, histories, data_args, base, label_names
) -> dict:
    """Fine-tuning's end: the kept run's model (`trainer`), the runs' loss curves (`histories`),
    the learning curve, the card's sections and the next step, through finish_run. Every
    process calls it; `args`: the command's TrainingArguments."""
    out = Path(args.output_dir)
    hyper = hyperparameters(trainer, args, data_args.max_seq_length) | {
        "learning_rate": results["learning_curve"][-1]["pretrained"]["learning_rate"],
        "seeds": ", ".join(map(str, results["seeds"])),
        "epochs": args.num_train_epochs if args.max_steps <= 0 else None,
        "token_embeddings": "frozen, as pretrained" if results["freeze_embeddings"] else "trained",
    }
    hyper.pop("train_precision")

    def plot_losses(path: Path) -> Path:
        from recipes.runs.plotting import plot_fine_tuning  # matplotlib: the main process only

        return plot_fine_tuning(histories, path, title=out.name)

    def plot_learning(path: Path) -> Path:
        from recipes.runs.plotting import plot_learning_curve

        return plot_learning_curve(
            results["learning_curve"], results["majority_baseline_accuracy"], path,
            title=f"{out.name}: test accuracy", sides=(comparison.PRETRAINED, comparison.CONTROL),
        )  # fmt: skip

    code = (
        "from transformers import pipeline; "
        f'print(pipeline("text-classification", model="{out}")("Some text to classify."))'
    )
    return finish_run(
        trainer,
        results,
        args=args,
        card=fine_tuning_sections(base, results, data_args, label_names)
        | {"hyperparameters": hyper},
        plots={LOSS_CURVE: plot_losses, LEARNING_CURVE: plot_learning},
        next_steps=[f"try it: python -c {shlex.quote(code)}"],
        commit_message="End of fine-tuning",
    )


def fine_tuning_sections(base, results, data_args, label_names) -> dict[str, Any]:
    """A text-classification card's own parts, for `build_model_card`: the results next to the
    control and the baseline (LEARNING_CURVE, pushed beside the card), the checkpoint it was
    fine-tuned from, and the data."""
    dataset = data_args.dataset_name or "custom"
    eval_results = [
        EvalResult(
            task_type="text-classification",
            dataset_type=dataset,
            dataset_name=data_args.dataset_config_name or dataset,
            metric_type=key,
            metric_value=round(float(results[f"test_{key}"]), 4),
        )
        for key in ("accuracy", "f1")
        if f"test_{key}" in results
    ]
    on_hub = not os.path.isdir(base)  # base_model must name a Hub repo, not a local folder
    metadata = dict(
        pipeline_tag="text-classification",
        tags=["text-classification"],
        base_model=base if on_hub else None,
        datasets=[data_args.dataset_name] if data_args.dataset_name else None,
        eval_results=eval_results or None,
    )
    seeds = len(results["seeds"])
    floor = (f"Always '{results['majority_label']}' (the most frequent training label) scores "
             f"{results['majority_baseline_accuracy']:.3f}.")  # fmt: skip
    source = data_args.dataset_name or ", ".join(data_args.train_files)
    if data_args.dataset_config_name:
        source += f" ({data_args.dataset_config_name})"
    sections = [
        "## Fine-tuned from",
        f"Fine-tuned from `{base}`{base_summary(base)}",
        "## Does the pretraining pay off?",
        f"Test accuracy on {results['test_examples']:,} examples, fine-tuned from the pretrained "
        "model"
        + " and, as the control, from random weights (same architecture)"
        * ("control_test_accuracy" in results)
        + f"; each side's learning rate kept on {results['validation_examples']:,} validation examples:",
        comparison.markdown_table(results["learning_curve"], seeds),
        floor,
        f"![Learning curve]({LEARNING_CURVE})",
        "## Training data",
        f"{source}: {results['train_examples']:,} training examples; this model was fine-tuned "
        f"on {results['learning_curve'][-1]['labels']:,} of them (seed {results['seeds'][0]}).",
    ]
    return dict(
        metadata=metadata,
        summary=f"A text classifier with labels {', '.join(label_names)}.",
        sections=sections,
        usage_input='"..."',
        usage_note='a pair: text_classification({"text": "...", "text_pair": "..."})',
    )


def base_summary(base: str) -> str:
    """What the base checkpoint was, from its own files (a local folder, or a Hub id's files
    downloaded for the run): pretrained here from scratch or continued from another checkpoint
    (its all_results.json and run_config.yaml), a fine-tuned model whose task head was discarded
    (the run would have been refused otherwise: check_task_head), or a checkpoint these recipes
    did not train. Only a run of this repository is said to be pretrained from scratch."""
    folder = _base_folder(base)
    if folder is None:
        return ", a checkpoint this repository did not train."
    path = folder / FINISHED_MARKER
    pre = json.loads(path.read_text()) if path.is_file() else {}
    came_from = recorded_base(str(folder))
    head = task_head(str(folder))
    if head or "learning_curve" in pre:  # fine-tuning's results
        what = "a model this repository did not train, fine-tuned already"
        if "learning_curve" in pre:
            what = "a classifier this repository fine-tuned" + (
                f" from `{came_from}`" if came_from else ""
            )
        if head:
            what += (
                f"; its task head ({head}) was discarded (`discard_task_head`) and this "
                "model's classifier head started from random weights"
            )
        return f", {what}."
    if "train_tokens" not in pre:  # not the results of a pretraining run of these recipes
        return ", a checkpoint this repository did not train."
    parts = []
    if "eval_accuracy" in pre:
        parts.append(f"held-out masked-token accuracy {pre['eval_accuracy']:.3f}")
    if "perplexity" in pre:
        parts.append(f"perplexity {pre['perplexity']:.1f}")
    parts.append(f"{pre['train_tokens']:,} tokens seen")
    objective = "masked LM and next-sentence prediction" if has_nsp(pre) else "masked LM"
    if "eval_before_accuracy" in pre or came_from:
        source = f"`{came_from}`" if came_from else "another checkpoint"
        how = f"continued from {source} and further pretrained by this repository"
    else:
        how = "pretrained from scratch by this repository"
    return f", {how} with {objective}: {', '.join(parts)}."


def _base_folder(base: str) -> Path | None:
    """The base checkpoint's files: its folder, or a Hub id's files as the run downloaded them
    (from the local cache, never the network); None if neither is here."""
    if os.path.isdir(base):
        return Path(base)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(base, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except (OSError, ValueError):  # not cached, or no repo id at all: nothing to describe
        return None
