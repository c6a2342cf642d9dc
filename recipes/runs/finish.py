"""The end of every run. Pretraining: after the recipe's `trainer.train()`, `finish_pretraining`
evaluates the final weights once on the held-out split, prints the verdict and hands over to
`finish_pretraining_run`; fine-tuning ends in recipes/finetune/finish.py. Both end in `finish_run`, the one writer: the
model, the plots, the card, trainer_state.json and all_results.json (last: the run is finished),
the push, and the closing lines that say where the model is and what to run next.
"""

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist
from transformers import TrainerCallback

from recipes.models.checkpoints import weights_checksum
from recipes.models.families import count_parameters
from recipes.run_folder import FINISHED_MARKER, RUN_CONFIG, read_run_config
from recipes.runs import hub
from recipes.runs.card import (
    USER_METADATA,
    build_model_card,
    has_nsp,
    pretraining_sections,
    unset_fields,
)
from recipes.runs.metrics import add_perplexity, perplexity, score_minimal_pairs
from recipes.runs.revisions import read_revisions

LOSS_CURVE = "loss_curve.png"

# The closing lines of a pretraining run suggest the demo's fine-tuning task as a next step.
FINE_TUNE_CONFIG = "recipes/configs/finetune/folio-genre.yaml"
FINE_TUNE_DATA = Path("data/folio-genre")  # written by `python -m recipes.tasks.folio`


def published_id(base_model: str) -> str | None:
    """The Hub repo id of the checkpoint continued pretraining started from, for the card's
    `base_model` (which must be a Hub id): `base_model` itself unless it is a local folder; a
    local folder written by these recipes and pushed names its repo in run_config.yaml's
    `hub_model_id`. None when there is no Hub id to give."""
    if not Path(base_model).is_dir():
        return base_model
    recorded = read_run_config(base_model)
    return recorded.get("hub_model_id") if recorded.get("push_to_hub") else None


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
        # the usage snippet loads from where the model is: the Hub repo, else this folder
        repo_id=args.hub_model_id if args.push_to_hub else str(out),
        **card,
        loss_curve_file=LOSS_CURVE if written.get(LOSS_CURVE) else None,
        run_config_file=RUN_CONFIG if (out / RUN_CONFIG).is_file() else None,
        revisions=read_revisions(out),
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
def finish_pretraining(
    trainer,
    train_result,
    *,
    base_model: str | None,
    family: str,
    data_args,
    held_out_texts: list[str],
    metrics: dict | None = None,
    mlm_loss_key: str = "loss",
) -> dict:
    """After `trainer.train()` (its `train_result`): evaluate, print, save; the run's metrics.

    base_model: the checkpoint the model starts from (continued pretraining; None: from
        scratch): the card names it, and its numbers before training (evaluate_before) are
        set beside the final ones.
    metrics: extra numbers the recipe measured before training (e.g. BERT's padding share).
    mlm_loss_key: the eval metric that is the masked-LM loss alone ("loss" for the MLM recipe,
        "mlm_loss" for BERT, whose eval_loss is MLM + NSP); perplexity is exp of it.
    held_out_texts: validation passages; one becomes the card's fill-mask widget example.
    """
    metrics = dict(train_result.metrics) | (metrics or {})
    # transformers' PrinterCallback (the progress output without tqdm) pops it from the dict
    metrics.setdefault("total_flos", trainer.state.total_flos)
    tokens = trainer.state.num_input_tokens_seen  # non-padding tokens, all ranks
    metrics["train_tokens"] = tokens
    metrics["train_tokens_per_second"] = round(tokens / metrics["train_runtime"], 1)

    prefix = f"eval_{mlm_loss_key}".removesuffix("_loss")  # eval_loss -> "eval"
    metrics.update(add_perplexity(final_evaluation(trainer), prefix=prefix))
    before = before_metrics(trainer, loss_key=mlm_loss_key)
    metrics.update(before)
    print(result_lines(metrics, before))
    if getattr(data_args, "minimal_pairs", None):
        metrics.update(minimal_pairs_metrics(trainer, data_args.minimal_pairs))

    prompt = widget_example(held_out_texts, trainer.processing_class.mask_token)
    results = finish_pretraining_run(
        trainer,
        metrics,
        model_type=family,
        data_args=data_args,
        widget_text=prompt,
        base_model=base_model,
    )
    leave_process_group()
    return results


def minimal_pairs_metrics(trainer, path: str) -> dict:
    """`minimal_pairs_accuracy` of the final weights on the pairs in `path`, scored by
    pseudo-log-likelihood as `python -m recipes.evaluate` scores them. Every rank scores (a
    sharded model's forward needs them all); the figure is the same on each."""
    from recipes.data.minimal_pairs import load_minimal_pairs

    pairs = load_minimal_pairs(path, "minimal_pairs")
    scored = score_minimal_pairs(trainer.model, trainer.processing_class, pairs)
    print(
        f"minimal pairs ({path}): the good sentence preferred in {scored['accuracy']:.3f} of "
        f"{scored['pairs']} pairs (ties count wrong: {scored['ties']})"
    )
    return {"minimal_pairs_accuracy": scored["accuracy"]}


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


def global_batch_size(args) -> int:
    """Sequences per optimizer step, over every process."""
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size


def hyperparameters(trainer, args, max_seq_length: int) -> dict:
    """The card's hyperparameter rows every recipe has. `train_precision` (popped by the
    caller) is the bare fp32/bf16/fp16; `precision` says why."""
    precision = run_precision(trainer)
    reason = getattr(args, "precision_reason", None)  # recipes/config.py, e.g. for `bf16: auto`
    if precision != ("bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"):
        # bf16/fp16 set by `accelerate launch` (mixed_precision), not the recipe's fields, so a
        # reason given for those does not apply
        reason = f"accelerate launch's mixed_precision: {precision}"
    return {
        "max_seq_length": max_seq_length,
        "learning_rate": args.learning_rate,
        "global_batch_size": global_batch_size(args),
        "max_steps": trainer.state.max_steps,
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "precision": f"{precision} ({reason})" if reason else precision,
        "train_precision": precision,
    }


def finish_pretraining_run(
    trainer,
    metrics: dict,
    *,
    model_type: str,
    data_args,
    widget_text: str,
    base_model: str | None = None,
) -> dict:
    """The pretraining card's sections, its loss curve and next steps, through finish_run.
    `base_model`: the checkpoint continued pretraining started from (None: from scratch)."""
    args = trainer.args
    out = Path(args.output_dir)
    datasets = [data_args.dataset_name] if data_args.dataset_name else []
    source = data_args.dataset_name or ", ".join(data_args.train_files)
    hyper = hyperparameters(trainer, args, data_args.max_seq_length)
    hyper |= {
        "mlm_probability": data_args.mlm_probability,
        "parameters": count_parameters(trainer.model),
    }
    precision = hyper.pop("train_precision")
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
