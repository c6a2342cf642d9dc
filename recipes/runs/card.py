"""The model card (README.md in output_dir): YAML metadata the Hub reads (language, license,
metrics as model-index) and a body that says what was trained, on what, and how well.
"""

import json
import os
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from recipes.errors import UserError
from recipes.finetune import comparison
from recipes.runs.start import FINISHED_MARKER

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


# --------------------------------------------------------------------------- model card
def build_model_card(
    *,
    repo_id: str,
    model_type: str,
    language: str | list[str] | None,
    license: str | None,
    datasets: list[str],
    train_data_description: str,
    mask_token: str,
    widget_text: str,
    hyperparameters: dict[str, Any],
    metrics: dict[str, float],
    loss_curve_file: str | None,
    run_config_file: str | None = None,
    base_model: str | None = None,
    base_model_hub_id: str | None = None,
) -> ModelCard:
    """Build a fill-mask model card: YAML metadata (model-index, widget) and a readable body.
    `run_config_file` (run_config.yaml, pushed beside the card) gets a Reproduce link.
    `base_model`: the checkpoint continued pretraining started from (a Hub id or a local
    folder; None: pretrained from scratch). The metadata's `base_model` must be a Hub repo id,
    so it is `base_model_hub_id` (None for a folder that was never pushed); the body names
    `base_model` either way."""
    widget_text = _widget_with_mask(widget_text, mask_token)
    model_name = repo_id.split("/")[-1]
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
    data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag="fill-mask",
        tags=["fill-mask", "masked-lm", model_type]
        + (["continued-pretraining"] if base_model else ["pretrained-from-scratch"]),
        base_model=base_model_hub_id,
        datasets=list(datasets) or None,
        model_name=model_name,
        eval_results=eval_results or None,
        widget=[{"text": widget_text}],
    )
    if loss_curve_file is not None:
        # The card links the image relative to itself; the plot is pushed next to README.md.
        curve = Path(loss_curve_file)
        loss_curve_file = curve.name if curve.is_absolute() else curve.as_posix()
    body = _card_body(
        repo_id,
        model_type,
        datasets,
        train_data_description,
        widget_text,
        hyperparameters,
        metrics,
        loss_curve_file,
        run_config_file,
        base_model,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def has_nsp(metrics: dict) -> bool:
    """Whether the run trained next-sentence prediction too (its loss then includes it)."""
    return any(metrics.get(k) is not None for k in ("eval_nsp_accuracy", "eval_mlm_loss"))


def card_metrics(metrics: dict) -> dict[str, tuple[str, str]]:
    """CARD_METRICS, with `eval_loss` named for what it is in this run."""
    if has_nsp(metrics):
        return CARD_METRICS | {"eval_loss": ("loss", NSP_LOSS_NAME)}
    return CARD_METRICS


def write_model_card(output_dir: str | Path, **card_kwargs: Any) -> Path:
    """Build the model card (same keyword arguments as `build_model_card`) into output_dir/README.md."""
    path = Path(output_dir) / "README.md"
    build_model_card(**card_kwargs).save(path)
    return path


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


def _card_body(
    repo_id: str,
    model_type: str,
    datasets: list[str],
    train_data_description: str,
    widget_text: str,
    hyperparameters: dict[str, Any],
    metrics: dict[str, float],
    loss_curve_file: str | None,
    run_config_file: str | None = None,
    base_model: str | None = None,
) -> str:
    arch = {"roberta": "RoBERTa", "bert": "BERT"}.get(model_type, model_type)
    objective = "masked language modeling"
    if metrics.get("eval_nsp_accuracy") is not None:
        objective += " and next-sentence prediction"
    dataset_links = ", ".join(f"[{d}](https://huggingface.co/datasets/{d})" for d in datasets)
    names = card_metrics(metrics)
    metric_rows = {names.get(k, (k, k))[1]: v for k, v in metrics.items() if v is not None}
    perplexity_note = "Perplexity is exp(MLM loss), the masked-LM loss per masked token"
    if has_nsp(metrics):
        perplexity_note += f" alone; the {NSP_LOSS_NAME} adds the next-sentence loss to it"
    sections = [
        f"# {repo_id.split('/')[-1]}",
        f"A {arch} model {_origin(base_model)} with {objective}. It has not been fine-tuned: "
        "use it to fill in masked words, or as a starting point for fine-tuning.",
        "## Training data",
        train_data_description + (f"\n\nDatasets: {dataset_links}" if dataset_links else ""),
        "## Training hyperparameters",
        _table(("Hyperparameter", "Value"), hyperparameters),
        "## Evaluation",
        "Final metrics on the held-out split:",
        _table(("Metric", "Value"), metric_rows),
    ]
    if metrics.get("perplexity") is not None:
        sections.append(perplexity_note + ".")
    if loss_curve_file:
        sections += ["## Loss curve", f"![Training and evaluation loss]({loss_curve_file})"]
        if metrics.get("eval_accuracy") is not None:  # evaluated: the plot has an accuracy panel
            sections.append(
                "Below the loss, held-out accuracy at each evaluation against the accuracy of "
                "always predicting the most frequent token or label (dashed): above that line "
                "the model has learned more than frequencies."
            )
    if run_config_file:
        sections += [
            "## Reproduce",
            f"Reproduce: [{Path(run_config_file).name}]({Path(run_config_file).name}) holds every "
            "setting of this run that differs from the defaults, each with where it came from; "
            "its first lines give the command that reruns it.",
        ]
    sections += [
        "## How to use",
        "```python\nfrom transformers import pipeline\n\n"
        f'fill_mask = pipeline("fill-mask", model="{repo_id}")\n'
        f"print(fill_mask({widget_text!r}))\n```",
    ]
    return "\n\n".join(sections) + "\n"


def classification_card(repo_id, base, results, hyper, data_args, label_names, curve):
    """A text-classification model card: the results next to the control and the baseline, and
    the checkpoint it was fine-tuned from."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

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
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["text-classification"],
        base_model=base if on_hub else None,
        datasets=[data_args.dataset_name] if data_args.dataset_name else None,
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
    )
    seeds = len(results["seeds"])
    floor = (f"Always '{results['majority_label']}' (the most frequent training label) scores "
             f"{results['majority_baseline_accuracy']:.3f}.")  # fmt: skip
    source = data_args.dataset_name or ", ".join(data_args.train_files)
    if data_args.dataset_config_name:
        source += f" ({data_args.dataset_config_name})"
    sections = [
        f"# {repo_id.split('/')[-1]}",
        f"A text classifier with labels {', '.join(label_names)}.",
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
        "![Learning curve](comparison.png)",
        "## Training data",
        f"{source}: {results['train_examples']:,} training examples; this model was fine-tuned "
        f"on {results['learning_curve'][-1]['labels']:,} of them (seed {results['seeds'][0]}).",
        "## Training hyperparameters",
        _table(("Hyperparameter", "Value"), {k: v for k, v in hyper.items() if v is not None}),
    ]
    if curve is not None:
        sections += ["## Loss curve", f"![Fine-tuning loss]({Path(curve).name})"]
    sections += [
        "## How to use",
        "```python\nfrom transformers import pipeline\n\n"
        f'classify = pipeline("text-classification", model="{repo_id}")\n'
        'print(classify("..."))  # a pair: classify({"text": "...", "text_pair": "..."})\n```',
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _base_summary(base: str) -> str:
    """What the base checkpoint's own all_results.json says about its pretraining, if local."""
    path = Path(base) / FINISHED_MARKER
    if not path.is_file():
        return "."
    pre = json.loads(path.read_text())
    parts = []
    if "eval_accuracy" in pre:
        parts.append(f"held-out masked-token accuracy {pre['eval_accuracy']:.3f}")
    if "perplexity" in pre:
        parts.append(f"perplexity {pre['perplexity']:.1f}")
    if "train_tokens" in pre:
        parts.append(f"{pre['train_tokens']:,} tokens seen")
    how = "further pretrained" if "eval_before_accuracy" in pre else "pretrained from scratch"
    return f", {how} with masked-LM" + (f": {', '.join(parts)}." if parts else ".")
