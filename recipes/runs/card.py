"""The model card (README.md in output_dir), one builder for both recipes: YAML metadata the Hub
reads (language, license, metrics as model-index) and a body that says what was trained, on what,
and how well. Each recipe brings its own parts (`pretraining_sections` here,
recipes/finetune/finish.py's `fine_tuning_sections`);
`build_model_card` adds what every card has: the title, the hyperparameters, the loss curve, how
to reproduce the run, the metadata left unset and how to use the model.
"""

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from recipes.errors import UserError
from recipes.models.families import display_name

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
    "minimal_pairs_accuracy": ("accuracy", "Minimal-pair accuracy"),
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
    body += ["## Training hyperparameters", markdown_table(("Hyperparameter", "Value"), rows)]
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
        markdown_table(("Metric", "Value"), metric_rows),
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


def markdown_table(header: tuple[str, str], rows: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {cell(k)} | {cell(v)} |" for k, v in rows.items()]
    return "\n".join(lines)
