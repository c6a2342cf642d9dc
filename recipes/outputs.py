"""What a run leaves in output_dir, shared by every recipe.

output_dir/
  model.safetensors, config.json      the model, stock transformers format
  tokenizer.json, tokenizer_config.json
  all_results.json                    eval_loss, perplexity, eval_accuracy, speed, precision, ...
  loss_curve.png                      loss, and held-out accuracy vs its floor, against step
  README.md                           model card (huggingface_hub ModelCard)
  run_config.yaml                     the settings that differ from the defaults, to rerun it
  checkpoint-*/                       intermediate checkpoints (for resuming)
"""

import hashlib
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import yaml
from transformers import set_seed
from transformers.trainer import TRAINER_STATE_NAME

from recipes import hub
from recipes.config import is_secret
from recipes.errors import UserError
from recipes.modeling import warn_if_slow_bf16

FINISHED_MARKER = "all_results.json"  # written last: its presence means the run finished
RUN_CONFIG = "run_config.yaml"


def start_run(training_args, overwrite: bool, recipe: str | None = None) -> str | None:
    """What every recipe does first, before any slow work: seed, check the output folder and
    the Hub, record the settings (run_config.yaml). Returns the checkpoint to resume from, if
    any. `recipe`: the module that runs, e.g. "recipes.pretrain_bert", for the rerun command."""
    set_seed(training_args.seed)
    configure_tracking(training_args)
    warn_if_slow_bf16(training_args)  # fp32 by default; bf16 only where it is fast
    resume_from = prepare_output_dir(training_args, overwrite)
    hub.move_token_to_env(training_args)  # else Trainer saves it in training_args.bin
    if training_args.push_to_hub:  # a bad token fails now, not after hours of training
        training_args.hub_model_id = hub.check_hub_access(
            training_args.hub_model_id or Path(training_args.output_dir).name,
            private=training_args.hub_private_repo,
        )
        settings = getattr(training_args, "run_settings", None)
        if settings:  # the full `user/name`: a run continued from this one's folder cites it
            settings["values"]["hub_model_id"] = training_args.hub_model_id
    save_run_config(training_args, recipe)  # once the checks passed: a refused run writes nothing
    return resume_from


# `report_to` value -> the packages that provide it (any one of them).
TRACKERS = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "trackio": ("trackio",),
}


def configure_tracking(training_args) -> None:
    """`report_to: tensorboard` (or wandb, trackio) from the YAML: a tracker that is not
    installed stops the run now, with the install command, not after the data is tokenized.
    TensorBoard logs go to output_dir/runs unless TENSORBOARD_LOGGING_DIR says otherwise
    (transformers v5 dropped `logging_dir` for that variable); `runs/` is never pushed."""
    for tracker in training_args.report_to or []:
        packages = TRACKERS.get(tracker)
        if packages and not any(importlib.util.find_spec(p) for p in packages):
            raise UserError(
                f"`report_to: {tracker}` needs the {packages[0]} package: `pip install "
                f"{packages[0]}` (or drop {tracker} from report_to)."
            )
    if "tensorboard" in (training_args.report_to or []):
        logs = os.environ.setdefault(
            "TENSORBOARD_LOGGING_DIR", str(Path(training_args.output_dir) / "runs")
        )
        if training_args.process_index == 0:
            print(f"TensorBoard logs: {logs} (tensorboard --logdir {logs})")


def prepare_output_dir(training_args, overwrite: bool) -> str | None:
    """Refuse to clobber a finished model; return the checkpoint to resume from, if any.

    A run killed mid-way left checkpoint-N folders: the same command continues from the
    newest complete one, unless `resume_from_checkpoint` names another.
    """
    out = Path(training_args.output_dir)
    if (out / FINISHED_MARKER).exists() and not overwrite:
        raise UserError(
            f"output_dir {out} already holds a finished model. Pick another output_dir, or set "
            "`overwrite_output_dir: true` to train again from scratch there."
        )
    if overwrite:
        # until this run finishes, nothing in output_dir should look finished
        (out / FINISHED_MARKER).unlink(missing_ok=True)
        return None
    chosen = training_args.resume_from_checkpoint
    if chosen and str(chosen).lower() != "true":  # `true` means the newest, as by default
        if not Path(chosen).is_dir():
            raise UserError(f"`resume_from_checkpoint: {chosen}` is not a checkpoint folder.")
        if not checkpoint_is_complete(Path(chosen)):
            raise UserError(
                f"`resume_from_checkpoint: {chosen}` is incomplete (no readable "
                f"{TRAINER_STATE_NAME}: the run stopped while writing it); pick an older one."
            )
    else:
        chosen = last_complete_checkpoint(out) if out.is_dir() else None
    if chosen:
        print(f"Resuming from {chosen}: optimizer, schedule, RNG states and data position")
    return chosen


def _running_recipe() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)  # set by `python -m`
    name = getattr(spec, "name", "") or ""
    return name if name.startswith("recipes.") else "recipes.<recipe>"


def save_run_config(training_args, recipe: str | None = None) -> Path | None:
    """Write output_dir/run_config.yaml from `training_args.run_settings` (recipes/config.py:
    {"values": what differs from the defaults, "origins": where each came from}), so that
    `--config run_config.yaml` reruns the run. Main process only; nothing without settings.
    Keys naming a token are never written: the file is pushed with the model."""
    settings = getattr(training_args, "run_settings", None)
    if not settings or training_args.process_index != 0:
        return None
    values, origins = settings.get("values", {}), settings.get("origins", {})
    out = Path(training_args.output_dir)
    recipe = recipe or _running_recipe()
    dropped = sorted(k for k in values if is_secret(k))
    lines = [
        "# Every setting of this run that differs from the defaults; the comment after each says",
        "# where it came from. Rerun it (into a new folder) with:",
        f"#   python -m {recipe} --config {out / RUN_CONFIG} --output_dir NEW",
    ]
    if dropped:
        lines.append(f"# Left out, never written down: {', '.join(dropped)} (use HF_TOKEN).")
    for key, value in values.items():
        if key in dropped:
            continue
        # the value in YAML's one-line (flow) style, a list or mapping included: [value] -> value
        flow = yaml.safe_dump(
            [value], default_flow_style=True, width=4096, allow_unicode=True
        ).strip()[1:-1]
        origin = origins.get(key, "?")
        if "\n" not in flow:
            lines.append(f"{key}: {flow}  # {origin}")
        else:  # too long for one line after all
            block = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True)
            lines += [f"# {origin}", block.rstrip()]
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_CONFIG
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def published_id(base_model: str) -> str | None:
    """The Hub repo id of the checkpoint continued pretraining started from, for the card's
    `base_model` (which must be a Hub id): `base_model` itself unless it is a local folder; a
    local folder written by these recipes and pushed names its repo in run_config.yaml's
    `hub_model_id`. None when there is no Hub id to give."""
    folder = Path(base_model)
    if not folder.is_dir():
        return base_model
    try:
        recorded = yaml.safe_load((folder / RUN_CONFIG).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    pushed = isinstance(recorded, dict) and recorded.get("push_to_hub")
    return recorded.get("hub_model_id") if pushed else None


def run_precision(trainer) -> str:
    """fp32, bf16 or fp16: what accelerate trained in, whether the recipe set `bf16` (then
    TrainingArguments.mixed_precision says bf16) or `accelerate launch` did (then only the
    environment, ACCELERATE_MIXED_PRECISION, and the Accelerator know)."""
    accelerator = getattr(trainer, "accelerator", None)
    mode = getattr(accelerator, "mixed_precision", None) or trainer.args.mixed_precision
    return {"no": "fp32"}.get(str(mode), str(mode))


def checkpoint_is_complete(checkpoint: Path) -> bool:
    """Trainer writes checkpoint-N/ in place, trainer_state.json last (after the weights,
    optimizer and RNG states), so a readable trainer_state.json means the rest is there."""
    try:
        json.loads((checkpoint / TRAINER_STATE_NAME).read_text())
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest checkpoint-N that was written to the end; a run killed while saving leaves a
    newer, partial one, which is reported and left for Trainer to overwrite when it gets there."""
    checkpoints = []
    for path in out.iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if match and path.is_dir():
            checkpoints.append((int(match.group(1)), path))
    for _, path in sorted(checkpoints, reverse=True):
        if checkpoint_is_complete(path):
            return str(path)
        print(f"Skipping incomplete checkpoint {path} (the run stopped while writing it)")
    return None


def widget_example(texts, mask_token: str, min_words: int = 6) -> str:
    """A sentence from the held-out text with one word masked, for the card and the demo."""
    for text in texts:
        line = next((ln.strip() for ln in text.splitlines() if len(ln.split()) >= min_words), None)
        if line is None or not re.search(r"[A-Za-z\u0600-\u06FF]{3,}", line):
            continue
        words = line.split()
        # mask a longish word in the middle: a good guess needs context from both sides
        middle = sorted(range(1, len(words) - 1), key=lambda i: -len(words[i].strip(".,;:!?")))
        i = middle[0]
        stripped = words[i].rstrip(".,;:!?")
        words[i] = mask_token + words[i][len(stripped) :]
        return " ".join(words)
    return f"The {mask_token} of the matter."


def weights_checksum(model) -> str:
    """A short digest of the parameter values. Data-parallel ranks end training with the same
    one (else they diverged), and the saved model reloaded with from_pretrained has it too.
    Under FSDP2 a parameter is a DTensor, one shard per rank: its full value is gathered, a
    collective, so every rank must call this (finish_run does). Under ZeRO-3 each rank holds a
    shard, so there the ranks' digests differ."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        value = param.detach()
        if hasattr(value, "full_tensor"):  # torch.distributed.tensor.DTensor (FSDP2)
            value = value.full_tensor()
        digest.update(name.encode())
        # a copy: numpy() would pin the parameter's own storage, which FSDP2 frees on resharding
        digest.update(value.float().cpu().clone().numpy().tobytes())
    return digest.hexdigest()[:12]


def finish_run(
    trainer,
    metrics: dict,
    *,
    model_type: str,
    data_args,
    widget_text: str,
    base_model: str | None = None,
) -> dict:
    """Save model + tokenizer, results, loss curve and model card; push if asked. Main
    process only writes; every process must call it (saving synchronises ranks).
    `base_model`: the checkpoint continued pretraining started from (None: from scratch)."""
    args = trainer.args
    out = Path(args.output_dir)
    precision = run_precision(trainer)
    checksum = weights_checksum(trainer.model)
    print(f"final weights checksum (rank {args.process_index} of {args.world_size}): {checksum}")
    # model + tokenizer (processing_class), safetensors. `_internal_call`: without it, with
    # push_to_hub, Trainer pushes here with a card of its own; we push below with ours.
    trainer.save_model(_internal_call=True)
    if not trainer.is_world_process_zero():
        return metrics
    from recipes.plotting import plot_loss_curve  # matplotlib: ~1 s to import, only needed here

    loss = "masked-LM + NSP" if hub.has_nsp(metrics) else "masked-LM"
    curve = plot_loss_curve(
        trainer.state.log_history,
        out / "loss_curve.png",
        title=out.name,
        loss_label=f"{loss} cross-entropy",
    )
    trainer.state.save_to_json(str(out / "trainer_state.json"))
    datasets = [data_args.dataset_name] if data_args.dataset_name else []
    source = data_args.dataset_name or ", ".join(data_args.train_files)
    hyper = {
        "max_seq_length": data_args.max_seq_length,
        "mlm_probability": data_args.mlm_probability,
        "learning_rate": args.learning_rate,
        "global_batch_size": args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size,
        "max_steps": trainer.state.max_steps,
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        # bf16/fp16 set in the recipe, or else by `accelerate launch` (mixed_precision: bf16)
        "precision": precision,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
    }
    reason = getattr(args, "precision_reason", None)  # recipes/config.py, e.g. for `bf16: auto`
    if precision != ("bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"):
        # not the recipe's bf16/fp16 fields, so a reason given for them does not apply
        reason = f"accelerate launch's mixed_precision: {precision}"
    if reason:
        hyper["precision"] = f"{precision} ({reason})"
    hub.write_model_card(
        out,
        repo_id=args.hub_model_id or out.name,
        model_type=model_type,
        language=data_args.language,
        license=data_args.license,
        datasets=datasets,
        train_data_description=f"{source} ({metrics.get('train_tokens', '?')} tokens seen)",
        mask_token=trainer.processing_class.mask_token,
        widget_text=widget_text,
        hyperparameters=hyper,
        metrics=metrics,
        loss_curve_file=curve.name if curve else None,
        run_config_file=RUN_CONFIG if (out / RUN_CONFIG).is_file() else None,
        base_model=base_model,
        base_model_hub_id=published_id(base_model) if base_model else None,
    )
    metrics["train_precision"] = precision
    # Written last: its presence marks a finished run (see prepare_output_dir).
    (out / FINISHED_MARKER).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if args.push_to_hub:
        url = hub.push_folder(out, args.hub_model_id, commit_message="End of training")
        print(f"Pushed to {url}")
    return metrics
