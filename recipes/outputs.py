"""What a run leaves in output_dir, shared by every recipe.

output_dir/
  model.safetensors, config.json      the model, stock transformers format
  tokenizer.json, tokenizer_config.json
  all_results.json                    eval_loss, perplexity, eval_accuracy, speed, ...
  loss_curve.png                      train and eval loss against step
  README.md                           model card (huggingface_hub ModelCard)
  checkpoint-*/                       intermediate checkpoints (for resuming)
"""

import json
import re
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from recipes import hub
from recipes.errors import UserError
from recipes.plotting import plot_loss_curve

FINISHED_MARKER = "all_results.json"  # written last: its presence means the run finished


def prepare_output_dir(training_args, overwrite: bool) -> str | None:
    """Refuse to clobber a finished model; return the checkpoint to resume from, if any.

    A run killed mid-way left checkpoint-N folders: the same command continues from the
    newest one, unless `resume_from_checkpoint` names another.
    """
    out = Path(training_args.output_dir)
    if (out / FINISHED_MARKER).exists() and not overwrite:
        raise UserError(
            f"output_dir {out} already holds a finished model. Pick another output_dir, or set "
            "`overwrite_output_dir: true` to train again from scratch there."
        )
    if overwrite:
        return None
    if training_args.resume_from_checkpoint:
        if not Path(training_args.resume_from_checkpoint).is_dir():
            raise UserError(
                f"`resume_from_checkpoint: {training_args.resume_from_checkpoint}` is not a "
                "checkpoint folder."
            )
        return training_args.resume_from_checkpoint
    return get_last_checkpoint(str(out)) if out.is_dir() else None


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


def finish_run(trainer, metrics: dict, *, model_type: str, data_args, widget_text: str) -> dict:
    """Save model + tokenizer, results, loss curve and model card; push if asked. Main
    process only writes; every process must call it (saving synchronises ranks)."""
    args = trainer.args
    out = Path(args.output_dir)
    trainer.save_model()  # model + tokenizer (processing_class), safetensors
    if not trainer.is_world_process_zero():
        return metrics
    curve = plot_loss_curve(trainer.state.log_history, out / "loss_curve.png", title=out.name)
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
        "precision": "bf16" if args.bf16 else ("fp16" if args.fp16 else "fp32"),
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
    }
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
    )
    # Written last: its presence marks a finished run (see prepare_output_dir).
    (out / FINISHED_MARKER).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if args.push_to_hub:
        url = hub.push_folder(out, args.hub_model_id, commit_message="End of training")
        print(f"Pushed to {url}")
    return metrics
