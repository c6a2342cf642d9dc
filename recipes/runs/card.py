"""The model card (README.md in output_dir), one builder for both recipes: YAML metadata the Hub
reads (language, license, metrics as model-index) and a body that says what was trained, on what,
and how well. Each recipe brings its own parts (`pretraining_sections`, `fine_tuning_sections`);
`build_model_card` adds what every card has: the title, the hyperparameters, the loss curve, how
to reproduce the run, the metadata left unset and how to use the model.
"""

import json
import os
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from recipes.errors import UserError
from recipes.finetune import comparison
from recipes.models.checkpoints import HUB_PATTERNS, recorded_base, task_head
from recipes.models.families import display_name
from recipes.runs.start import FINISHED_MARKER

LEARNING_CURVE = "learning_curve.png"  # fine-tuning's test accuracy against labelled examples

# Metric key from trainer.evaluate() -> (model-index metric type, display name). Perplexity
# is exp of the masked-LM loss alone (recipes/runs/metrics.py): for RoBERTa that is `eval_loss`;
# for BERT `eval_loss` is masked-LM + NSP and the masked-LM part is `eval_mlm_loss`, so there
# `eval_loss` goes by NSP_LOSS_NAME instead (card_metrics).
CARD_METRICS = {
    "eval_loss": ("loss", "MLM loss"),
    "eval_mlm_loss": ("loss", "MLM loss"),
    "perplexity": ("perplexity", "Perplexity"),
    "eval_accuracy": ("accuracy", "Masked-token accuracy"),
    "eval_nsp_accuracy": ("accuracy", "Next-sentence accuracy"),
}


NSP_LOSS_NAME = "MLM + NSP loss"


# Mask placeholders people write by habit; the widget only works with the tokenizer's own one.
KNOWN_MASK_TOKENS = ("<mask>", "[MASK]")

# Card metadata that describes the user's data and rights, so only they can set it: the field
# of the pretraining config that sets it, and an example value.
USER_METADATA = {
    "language": "ISO code(s) of the text, e.g. `language: en`",
    "license": "a license id from the Hub's list, e.g. `license: apache-2.0`",
}


# --------------------------------------------------------------------------- the builder
def build_model_card(
    *,
    repo_id: str,
    metadata: dict[str, Any],
    summary: str,
    sections: list[str],
    hyperparameters: dict[str, Any],
    usage_input: str,
    usage_note: str | None = None,
    loss_curve_file: str | None = None,
    loss_curve_note: str | None = None,
    run_config_file: str | None = None,
    revisions: list[tuple[str, int, int]] | None = None,
) -> ModelCard:
    """The card of either recipe. From the recipe: `metadata` (ModelCardData fields:
    pipeline_tag, tags, language, license, datasets, eval_results, widget, ...), `summary` (the
    paragraph under the title), `sections` (its own markdown: data, evaluation, ...) and
    `usage_input` (the Python argument of the How-to-use pipeline call, `usage_note` a comment
    after it). Common: the hyperparameter table, the loss curve (`loss_curve_file`, pushed beside
    the card, with `loss_curve_note` under it), a Reproduce link to `run_config_file`, and, for a
    `language` or `license` key of `metadata` without a value, a line that says so and how to
    set it (USER_METADATA). `repo_id`: the Hub id the card goes to, or the local folder that
    holds it (the usage snippet loads from it). `revisions`: (branch, step, tokens seen) of the
    checkpoints pushed as revisions (recipes/runs/revisions.py)."""
    name = Path(repo_id).name
    data = ModelCardData(library_name="transformers", model_name=name, **metadata)
    unset = [
        f"**{key}: not set** (set `{key}` in the config: {USER_METADATA[key]})."
        for key in unset_fields(metadata)
    ]
    body = [f"# {name}", summary, *unset, *sections]
    rows = {k: v for k, v in hyperparameters.items() if v is not None}
    body += ["## Training hyperparameters", _table(("Hyperparameter", "Value"), rows)]
    if loss_curve_file:
        # The card links the image relative to itself; the plot is pushed next to README.md.
        curve = Path(loss_curve_file)
        curve = curve.name if curve.is_absolute() else curve.as_posix()
        body += ["## Loss curve", f"![Training and evaluation loss]({curve})"]
        body += [loss_curve_note] if loss_curve_note else []
    if run_config_file:
        config = Path(run_config_file).name
        body += [
            "## Reproduce",
            f"Reproduce: [{config}]({config}) holds every setting of this run that differs from "
            "the defaults, each with where it came from; its first lines give the command that "
            "reruns it.",
        ]
    if revisions:
        body += revisions_section(repo_id, revisions)
    task = metadata["pipeline_tag"]
    call = task.replace("-", "_")
    comment = f"  # {usage_note}" if usage_note else ""
    body += [
        "## How to use",
        "```python\nfrom transformers import pipeline\n\n"
        f'{call} = pipeline("{task}", model="{repo_id}")\n'
        f"print({call}({usage_input})){comment}\n```",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(body) + "\n")


def revisions_section(repo_id: str, revisions: list[tuple[str, int, int]]) -> list[str]:
    """The card's list of the checkpoints pushed as branches, and how to load one."""
    rows = "\n".join(f"| `{name}` | {step:,} | {tokens:,} |" for name, step, tokens in revisions)
    return [
        "## Revisions",
        "Checkpoints from along the run, each a branch of this repository (the same list, "
        "one line per revision: [revisions](revisions)):",
        "| revision | step | tokens seen |\n| --- | --- | --- |\n" + rows,
        "```python\nfrom transformers import AutoModelForMaskedLM\n\n"
        f'model = AutoModelForMaskedLM.from_pretrained("{repo_id}", '
        f'revision="{revisions[-1][0]}")\n```',
    ]


def unset_fields(metadata: dict[str, Any]) -> list[str]:
    """The user's fields (USER_METADATA) the recipe's card metadata has but leaves empty."""
    return [key for key in USER_METADATA if key in metadata and not metadata[key]]


# --------------------------------------------------------------------------- pretraining
def pretraining_sections(
    *,
    model_type: str,
    language: str | list[str] | None,
    license: str | None,
    datasets: list[str],
    train_data_description: str,
    mask_token: str,
    widget_text: str,
    metrics: dict[str, float],
    base_model: str | None = None,
    base_model_hub_id: str | None = None,
) -> dict[str, Any]:
    """A fill-mask card's own parts, for `build_model_card`: the model-index of the held-out
    metrics, the widget, the training data and the evaluation. `base_model`: the checkpoint
    continued pretraining started from (a Hub id or a local folder; None: pretrained from
    scratch). The metadata's `base_model` must be a Hub repo id, so it is `base_model_hub_id`
    (None for a folder that was never pushed); the body names `base_model` either way."""
    widget_text = _widget_with_mask(widget_text, mask_token)
    dataset_id = datasets[0] if datasets else "custom"
    eval_results = [
        EvalResult(
            task_type="fill-mask",
            task_name="Masked language modeling",
            dataset_type=dataset_id,
            dataset_name=dataset_id,
            metric_type=metric_type,
            metric_name=display,
            metric_value=round(float(metrics[key]), 4),
        )
        for key, (metric_type, display) in card_metrics(metrics).items()
        if metrics.get(key) is not None
    ]
    metadata = dict(
        language=language,
        license=license,
        pipeline_tag="fill-mask",
        tags=["fill-mask", "masked-lm", model_type]
        + (["continued-pretraining"] if base_model else ["pretrained-from-scratch"]),
        base_model=base_model_hub_id,
        datasets=list(datasets) or None,
        eval_results=eval_results or None,
        widget=[{"text": widget_text}],
    )
    arch = display_name(model_type)
    objective = "masked language modeling"
    if metrics.get("eval_nsp_accuracy") is not None:
        objective += " and next-sentence prediction"
    dataset_links = ", ".join(f"[{d}](https://huggingface.co/datasets/{d})" for d in datasets)
    names = card_metrics(metrics)
    metric_rows = {names.get(k, (k, k))[1]: v for k, v in metrics.items() if v is not None}
    sections = [
        "## Training data",
        train_data_description + (f"\n\nDatasets: {dataset_links}" if dataset_links else ""),
        "## Evaluation",
        "Final metrics on the held-out split:",
        _table(("Metric", "Value"), metric_rows),
    ]
    if metrics.get("perplexity") is not None:
        note = "Perplexity is exp(MLM loss), the masked-LM loss per masked token"
        if has_nsp(metrics):
            note += f" alone; the {NSP_LOSS_NAME} adds the next-sentence loss to it"
        sections.append(note + ".")
    curve_note = None
    if metrics.get("eval_accuracy") is not None:  # evaluated: the plot has an accuracy panel
        curve_note = (
            "Below the loss, held-out accuracy at each evaluation against the accuracy of "
            "always predicting the most frequent token or label (dashed): above that line "
            "the model has learned more than frequencies."
        )
    return dict(
        metadata=metadata,
        summary=f"A {arch} model {_origin(base_model)} with {objective}. It has not been "
        "fine-tuned: use it to fill in masked words, or as a starting point for fine-tuning.",
        sections=sections,
        usage_input=repr(widget_text),
        loss_curve_note=curve_note,
    )


def has_nsp(metrics: dict) -> bool:
    """Whether the run trained next-sentence prediction too (its loss then includes it)."""
    return any(metrics.get(k) is not None for k in ("eval_nsp_accuracy", "eval_mlm_loss"))


def card_metrics(metrics: dict) -> dict[str, tuple[str, str]]:
    """CARD_METRICS, with `eval_loss` named for what it is in this run."""
    if has_nsp(metrics):
        return CARD_METRICS | {"eval_loss": ("loss", NSP_LOSS_NAME)}
    return CARD_METRICS


def _origin(base_model: str | None) -> str:
    if base_model is None:
        return "pretrained from scratch"
    if Path(base_model).is_dir():
        return f"continued from `{base_model}` (a local checkpoint), further pretrained"
    return f"continued from [{base_model}](https://huggingface.co/{base_model}), further pretrained"


def _widget_with_mask(text: str, mask_token: str) -> str:
    if mask_token in text:
        return text
    for other in KNOWN_MASK_TOKENS:
        if other in text:
            return text.replace(other, mask_token)
    raise UserError(
        f"the widget text {text!r} has no mask token: write {mask_token} (this tokenizer's mask "
        "token) where the model should fill in a word."
    )


def _table(header: tuple[str, str], rows: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {cell(k)} | {cell(v)} |" for k, v in rows.items()]
    return "\n".join(lines)


# --------------------------------------------------------------------------- fine-tuning
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
        f"Fine-tuned from `{base}`{_base_summary(base)}",
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


def _base_summary(base: str) -> str:
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
