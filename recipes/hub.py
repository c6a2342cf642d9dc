"""Publishing to the Hugging Face Hub: check access early, write the model card, push the folder.

`check_hub_access` runs before training so that a bad token or an unwritable repo fails in
seconds instead of after hours. Every call honours `HF_ENDPOINT`, read when the call is made
(huggingface_hub itself reads it once, at import time). The token never appears in a message,
a log line, a saved file (`move_token_to_env`) or a pushed file.

With push_to_hub, Trainer itself pushes only what `hub_strategy` asks for during training
(the recipes default to "end": nothing); `outputs.finish_run` then pushes the final folder
with our model card, never Trainer's.
"""

import logging
import os
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalTokenNotFoundError,
    OIDCError,
)
from huggingface_hub.utils import filter_repo_objects, validate_repo_id

from recipes.errors import UserError

logger = logging.getLogger(__name__)

# Trainer leaves these in output_dir; none of them belongs in a published model repo.
# (run_config.yaml does: the card links it, to reproduce the run. tests/test_hub.py checks.)
PUSH_IGNORE_PATTERNS = ["checkpoint-*", "_*", "runs/", "training_args.bin"]

# Files up to this size are checked for the token before a push (configs, logs, cards).
SCAN_LIMIT_BYTES = 50 * 2**20

# Metric key from trainer.evaluate() -> (model-index metric type, display name). Perplexity
# is exp of the masked-LM loss alone (recipes/metrics.py): for RoBERTa that is `eval_loss`;
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

LOGIN_HINT = "run `hf auth login` or set HF_TOKEN to a token with write access"


def _api(token: str | None) -> HfApi:
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)


def _effective_token(token: str | None) -> str | None:
    """The token requests will carry: the argument, else HF_TOKEN or the saved login."""
    try:
        return token or get_token()
    except OIDCError:
        return None


def _redact(text: str, token: str | None) -> str:
    secret = _effective_token(token)
    return text.replace(secret, "hf_***") if secret else text


def _status(err: HfHubHTTPError) -> int | None:
    return err.response.status_code if err.response is not None else None


# --------------------------------------------------------------------------- token
def move_token_to_env(training_args) -> None:
    """Take `hub_token` out of the TrainingArguments and hand it over as HF_TOKEN.

    Trainer pickles its arguments into training_args.bin: in output_dir, in every checkpoint,
    and on the Hub with `hub_strategy: checkpoint`. A token given as `--hub_token` would be
    saved there in clear. huggingface_hub reads HF_TOKEN on every request, so Trainer's pushes
    and ours still authenticate; the variable lives in this process and its children only.
    """
    if training_args.hub_token:
        os.environ["HF_TOKEN"] = training_args.hub_token
        training_args.hub_token = None


# --------------------------------------------------------------------------- access check
def check_hub_access(repo_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Check the token and create the repo if needed; return the full repo id (`user/name`)."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"hub_model_id '{repo_id}' is not a valid Hub repo id: {err}") from None
    api = _api(token)
    try:
        me = api.whoami()
    except LocalTokenNotFoundError:
        raise UserError(
            f"push_to_hub is on but no Hugging Face token was found: {LOGIN_HINT}."
        ) from None
    except HfHubHTTPError as err:
        if _status(err) == 401:
            raise UserError(
                f"the Hub at {api.endpoint} rejected the token: {LOGIN_HINT}."
            ) from None
        raise UserError(
            f"could not check the token with {api.endpoint}: {_redact(str(err), token)}"
        ) from None
    except (OSError, httpx2.TransportError) as err:  # network down, wrong HF_ENDPOINT
        raise UserError(
            f"could not reach the Hub at {api.endpoint} ({type(err).__name__})."
        ) from None

    user = me["name"]
    namespace, _, name = repo_id.rpartition("/")
    namespace = namespace or user
    full_id = f"{namespace}/{name}"

    # create_repo(exist_ok=True) answers a 403 by falling back to repo_info, so an existing
    # repo we can read but not write would pass silently; whoami tells us up front instead.
    # Fine-grained tokens list permissions per resource; for those the server decides.
    role = me.get("auth", {}).get("accessToken", {}).get("role")
    if role == "read":
        raise UserError(
            f"the Hugging Face token for '{user}' is read-only, so it cannot push to {full_id}: "
            f"{LOGIN_HINT}."
        )
    writable = [user] + [o["name"] for o in me.get("orgs", []) if o.get("roleInOrg") != "read"]
    if role != "fineGrained" and namespace not in writable:
        raise UserError(_not_writable(full_id, namespace, writable))

    try:
        api.create_repo(full_id, exist_ok=True, repo_type="model", private=private)
    except HfHubHTTPError as err:
        if _status(err) in (401, 403):
            raise UserError(_not_writable(full_id, namespace, writable)) from None
        raise UserError(f"could not create {full_id}: {_redact(str(err), token)}") from None
    return full_id


def _not_writable(full_id: str, namespace: str, writable: list[str]) -> str:
    return (
        f"the token cannot write to '{full_id}' (namespace '{namespace}'); it can write to: "
        f"{', '.join(writable)}. Set hub_model_id to a repo in one of those namespaces, e.g. "
        f"'{writable[0]}/{full_id.split('/')[-1]}', or use a token with access to '{namespace}'."
    )


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


# --------------------------------------------------------------------------- push
def push_folder(
    output_dir: str | Path,
    repo_id: str,
    token: str | None = None,
    commit_message: str = "Upload model pretrained from scratch",
) -> str:
    """Upload model, tokenizer, card, results and plots from output_dir; return the commit URL."""
    output_dir = Path(output_dir)
    _refuse_files_with_token(output_dir, _effective_token(token))
    try:
        info = _api(token).upload_folder(
            repo_id=repo_id,
            folder_path=output_dir,
            repo_type="model",
            commit_message=commit_message,
            ignore_patterns=list(PUSH_IGNORE_PATTERNS),
        )
    except HfHubHTTPError as err:
        if _status(err) in (401, 403):
            raise UserError(f"the Hub refused the push to {repo_id}: {LOGIN_HINT}.") from None
        raise
    logger.info("Pushed %s to %s", output_dir, info.commit_url)
    return info.commit_url


def _refuse_files_with_token(output_dir: Path, token: str | None) -> None:
    # A config or log dump can carry the token; a public repo would then leak it for good.
    # Weights are skipped by size: reading gigabytes to find a 40-byte string is not worth it.
    if not token:
        return
    files = sorted(
        p.relative_to(output_dir).as_posix() for p in output_dir.rglob("*") if p.is_file()
    )
    for rel in filter_repo_objects(files, ignore_patterns=PUSH_IGNORE_PATTERNS):
        path = output_dir / rel
        if path.stat().st_size <= SCAN_LIMIT_BYTES and token.encode() in path.read_bytes():
            raise UserError(
                f"{path} contains your Hugging Face token; remove it (or the file) before pushing."
            )
