"""The end of every run. Pretraining: `train_evaluate_finish` trains, evaluates the final weights
once on the held-out split, prints the verdict and hands over to `finish_pretraining_run`;
fine-tuning ends in `finish_classification_run`. Both end in `finish_run`, the one writer: the
model, the plots, the card, trainer_state.json and all_results.json (last: the run is finished),
the push, and the closing lines that say where the model is and what to run next.
"""

import hashlib
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist
import yaml
from transformers import TrainerCallback

from recipes.runs import hub
from recipes.runs.card import (
    LEARNING_CURVE,
    USER_METADATA,
    build_model_card,
    fine_tuning_sections,
    has_nsp,
    pretraining_sections,
    unset_fields,
)
from recipes.runs.metrics import add_perplexity, perplexity
from recipes.runs.start import FINISHED_MARKER, RUN_CONFIG

LOSS_CURVE = "loss_curve.png"

# The closing lines of a pretraining run suggest the demo's fine-tuning task as a next step.
FINE_TUNE_CONFIG = "recipes/configs/finetune/folio-genre.yaml"
FINE_TUNE_DATA = Path("data/folio-genre")  # written by `python -m recipes.tasks.folio`


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


# ------------------------------------------------------------------------------ the one writer
def finish_run(
    trainer,
    results: dict,
    *,
    card: dict,
    plots: dict[str, Callable[[Path], Path | None]],
    next_steps: list[str],
    commit_message: str,
    args=None,
) -> dict:
    """Save the model and tokenizer into output_dir; then, in the main process only: `plots`
    ({file name: a function that writes the figure to the path it is given, None if there is
    nothing to plot}), trainer_state.json, the card (`card`: the recipe's parts for
    build_model_card), all_results.json (`results`; written last: its presence marks a finished
    run, see prepare_output_dir), the push, and the closing lines: where the model is, then
    `next_steps`. Every process must call it: saving synchronises the ranks, and the checksum
    gathers sharded weights. `args`: the command's TrainingArguments where `trainer` ran with a
    run's own (fine-tuning)."""
    args = args or trainer.args
    out = Path(args.output_dir)
    checksum = weights_checksum(trainer.model)
    print(f"final weights checksum (rank {args.process_index} of {args.world_size}): {checksum}")
    # model + tokenizer (processing_class), safetensors. `_internal_call`: without it, with
    # push_to_hub, Trainer pushes here with a card of its own; we push below with ours.
    trainer.save_model(str(out), _internal_call=True)
    if not trainer.is_world_process_zero():
        return results
    if args is not trainer.args:  # save_model wrote the settings of the run, not this command's
        (out / "training_args.bin").unlink(missing_ok=True)
    written = {name: plot(out / name) for name, plot in plots.items()}
    trainer.state.save_to_json(str(out / "trainer_state.json"))
    model_card = build_model_card(
        repo_id=args.hub_model_id or out.name,
        **card,
        loss_curve_file=LOSS_CURVE if written.get(LOSS_CURVE) else None,
        run_config_file=RUN_CONFIG if (out / RUN_CONFIG).is_file() else None,
    )
    model_card.save(out / "README.md")
    (out / FINISHED_MARKER).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if args.push_to_hub:
        for key in unset_fields(card["metadata"]):
            print(
                f"warning: the model card has no {key}: set `{key}` in the config "
                f"({USER_METADATA[key]}); pushing without it"
            )
        url = hub.push_folder(out, args.hub_model_id, commit_message=commit_message)
        print(f"Pushed to {url}")
    print(f"saved to {out}")
    for line in next_steps:
        print(line)
    return results


# ------------------------------------------------------------------------------ pretraining
def train_evaluate_finish(
    trainer,
    *,
    resume_from: str | None,
    base_model: str | None,
    family: str,
    data_args,
    held_out_texts: list[str],
    metrics: dict | None = None,
    mlm_loss_key: str = "loss",
    time_budget=None,
) -> dict:
    """Train `trainer` (resuming from `resume_from`), evaluate, print, save; the run's metrics.

    base_model: the checkpoint the model starts from (continued pretraining; None: from
        scratch): its weights are evaluated first, so the gain is a number (`eval_before_*`,
        `perplexity_before`), and the card names it.
    metrics: extra numbers the recipe measured before training (e.g. BERT's padding share).
    mlm_loss_key: the eval metric that is the masked-LM loss alone ("loss" for the MLM recipe,
        "mlm_loss" for BERT, whose eval_loss is MLM + NSP); perplexity is exp of it.
    held_out_texts: validation passages; one becomes the card's fill-mask widget example.
    time_budget: the run's recipes/runs/budget.py TimeBudget, if it has one: its numbers go
        into all_results.json, the card and run_config.yaml.
    """
    if base_model:
        evaluate_before(trainer, resume_from)
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(train_result.metrics) | (metrics or {})
    # transformers' PrinterCallback (the progress output without tqdm) pops it from the dict
    metrics.setdefault("total_flos", trainer.state.total_flos)
    tokens = trainer.state.num_input_tokens_seen  # non-padding tokens, all ranks
    metrics["train_tokens"] = tokens
    metrics["train_tokens_per_second"] = round(tokens / metrics["train_runtime"], 1)
    if time_budget:
        metrics |= time_budget.metrics()

    prefix = f"eval_{mlm_loss_key}".removesuffix("_loss")  # eval_loss -> "eval"
    metrics.update(add_perplexity(final_evaluation(trainer), prefix=prefix))
    before = before_metrics(trainer, loss_key=mlm_loss_key)
    metrics.update(before)
    print(result_lines(metrics, before))

    prompt = widget_example(held_out_texts, trainer.processing_class.mask_token)
    results = finish_pretraining_run(
        trainer,
        metrics,
        model_type=family,
        data_args=data_args,
        widget_text=prompt,
        base_model=base_model,
        time_budget=time_budget,
    )
    leave_process_group()
    return results


def final_evaluation(trainer) -> dict:
    """The held-out metrics of the weights training ended with, measured once. With
    `eval_strategy` steps or epoch, Trainer has just evaluated the last step: its numbers are
    the ones a second evaluation would print (the same weights, held-out set and masks, which
    are a function of the seed and the batch: recipes/data/masking.py), so they are reused. It
    evaluates now when no evaluation is of the last step (`eval_strategy: no`, `eval_delay`) or
    `load_best_model_at_end` put an earlier step's weights back."""
    state = trainer.state
    if not trainer.args.load_best_model_at_end:
        last = next((e for e in reversed(state.log_history) if "eval_loss" in e), None)
        if last is not None and last.get("step") == state.global_step:
            return {key: value for key, value in last.items() if key != "step"}
    return trainer.evaluate()


def finish_pretraining_run(
    trainer,
    metrics: dict,
    *,
    model_type: str,
    data_args,
    widget_text: str,
    base_model: str | None = None,
    time_budget=None,
) -> dict:
    """The pretraining card's sections, its loss curve and next steps, through finish_run.
    `base_model`: the checkpoint continued pretraining started from (None: from scratch).
    `time_budget`: the run's TimeBudget, if it has one."""
    args = trainer.args
    out = Path(args.output_dir)
    precision = run_precision(trainer)
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
    if time_budget:  # the clock ended training: max_steps was only a cap never meant to be met
        steps, tokens = trainer.state.global_step, metrics.get("train_tokens", 0)
        hyper["max_steps"] = None
        hyper["warmup_steps"] = f"{args.warmup_steps:.0%} of the time budget"
        hyper["time_budget"] = time_budget.card_line(steps, tokens)
        if trainer.is_world_process_zero():
            time_budget.note_in_run_config(out / RUN_CONFIG, steps, tokens)
    reason = getattr(args, "precision_reason", None)  # recipes/config.py, e.g. for `bf16: auto`
    if precision != ("bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"):
        # not the recipe's bf16/fp16 fields, so a reason given for them does not apply
        reason = f"accelerate launch's mixed_precision: {precision}"
    if reason:
        hyper["precision"] = f"{precision} ({reason})"
    card = pretraining_sections(
        model_type=model_type,
        language=data_args.language,
        license=data_args.license,
        datasets=datasets,
        train_data_description=f"{source} ({metrics.get('train_tokens', '?')} tokens seen)",
        mask_token=trainer.processing_class.mask_token,
        widget_text=widget_text,
        metrics=metrics,
        base_model=base_model,
        base_model_hub_id=published_id(base_model) if base_model else None,
    )
    loss = "masked-LM + NSP" if has_nsp(metrics) else "masked-LM"

    def plot_loss(path: Path) -> Path | None:
        from recipes.runs.plotting import plot_loss_curve  # matplotlib: the main process only

        return plot_loss_curve(
            trainer.state.log_history, path, title=out.name, loss_label=f"{loss} cross-entropy"
        )

    folder = shlex.quote(str(out))
    fine_tune = (
        f"python -m recipes.finetune_classification --config {FINE_TUNE_CONFIG} "
        f"--model_name_or_path {folder}"
    )
    if not FINE_TUNE_DATA.is_dir():
        fine_tune = f"python -m recipes.tasks.folio && {fine_tune}"
    return finish_run(
        trainer,
        metrics | {"train_precision": precision},
        card=card | {"hyperparameters": hyper},
        plots={LOSS_CURVE: plot_loss},
        next_steps=[
            f"try it: python -m recipes.fill_mask --model {folder} {shlex.quote(widget_text)}",
            f"fine-tune it: {fine_tune}",
        ],
        commit_message="End of training",
    )


def leave_process_group() -> None:
    """Under `accelerate launch` / torchrun: wait for every rank, then leave the process group.
    A rank that exits with the group's threads still running aborts at exit ("terminate called
    without an active exception", SIGABRT: a failed launch after a finished run)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def result_lines(metrics: dict, before: dict) -> str:
    """The run's verdict: held-out accuracy against the most-frequent-token baseline, and
    perplexity (and for BERT next-sentence accuracy against the more frequent label)."""

    def was(key: str, spec: str, what: str) -> str:
        return f" ({before[key]:{spec}} {what})" if before else ""

    lines = [
        f"held-out masked-token accuracy {metrics['eval_accuracy']:.3f}"
        f"{was('eval_before_accuracy', '.3f', 'before training')} vs "
        f"{metrics['eval_majority_baseline_accuracy']:.3f} for always predicting the most "
        f"frequent token; perplexity {metrics['perplexity']:.1f}"
        f"{was('perplexity_before', '.1f', 'before')}"
    ]
    if "eval_nsp_accuracy" in metrics:
        lines.append(
            f"held-out next-sentence accuracy {metrics['eval_nsp_accuracy']:.3f}"
            f"{was('eval_before_nsp_accuracy', '.3f', 'before training')} vs "
            f"{metrics['eval_nsp_majority_baseline_accuracy']:.3f} for the more frequent label"
        )
    return "\n".join(lines)


class _KeepBeforeMetrics(TrainerCallback):
    """Trainer starts a fresh log history when training begins: put the before-training
    evaluation back at its head (step 0), so every checkpoint carries it and a resumed run
    reports it too."""

    def __init__(self, metrics: dict):
        self.metrics = metrics

    def on_train_begin(self, args, state, control, **kwargs):
        if not any(key in entry for entry in state.log_history for key in self.metrics):
            state.log_history.insert(0, {**self.metrics, "step": 0})


def evaluate_before(trainer, resume_from: str | None) -> None:
    """Evaluate the starting model on the held-out split (`eval_before_*`), before training.
    Not on a resume: the weights are no longer the starting ones (the checkpoint has the
    numbers the first run measured)."""
    if resume_from is None:
        trainer.add_callback(_KeepBeforeMetrics(trainer.evaluate(metric_key_prefix="eval_before")))


def before_metrics(trainer, loss_key: str = "loss") -> dict:
    """The before-training numbers from the log history, with `perplexity_before` (exp of
    `eval_before_<loss_key>`, the masked-LM loss); empty if there are none."""
    for entry in trainer.state.log_history:
        if f"eval_before_{loss_key}" in entry:
            metrics = {
                k: v
                for k, v in entry.items()
                if k.startswith("eval_before_") and ("loss" in k or "accuracy" in k)
            }
            metrics["perplexity_before"] = perplexity(metrics[f"eval_before_{loss_key}"])
            return metrics
    return {}


# ------------------------------------------------------------------------------ fine-tuning
def finish_classification_run(
    trainer, args, results, histories, data_args, base, label_names
) -> dict:
    """Fine-tuning's end: the kept run's model (`trainer`), the runs' loss curves (`histories`),
    the learning curve, the card's sections and the next step, through finish_run. Every
    process calls it; `args`: the command's TrainingArguments."""
    out = Path(args.output_dir)
    hyper = {
        "max_seq_length": data_args.max_seq_length,
        "learning_rate": results["learning_curve"][-1]["pretrained"]["learning_rate"],
        "seeds": ", ".join(map(str, results["seeds"])),
        "global_batch_size": args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size,
        "epochs": args.num_train_epochs if args.max_steps <= 0 else None,
        "max_steps": trainer.state.max_steps,
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "token_embeddings": "frozen, as pretrained" if results["freeze_embeddings"] else "trained",
        "precision": run_precision(trainer),
    }

    def plot_losses(path: Path) -> Path:
        from recipes.runs.plotting import plot_fine_tuning  # matplotlib: the main process only

        return plot_fine_tuning(histories, path, title=out.name)

    def plot_learning(path: Path) -> Path:
        from recipes.runs.plotting import plot_learning_curve

        return plot_learning_curve(
            results["learning_curve"], results["majority_baseline_accuracy"], path,
            title=f"{out.name}: test accuracy",
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
