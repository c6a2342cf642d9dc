"""One fine-tuning run: the tokenized splits, the classifier's pooling, its TrainingArguments
(evaluated and kept on the validation split), Trainer with the head's own learning rate, the
test score; and the finished run kept on disk (result.json, and the model where it may be the
one saved), so that a killed command does not train it again.
"""

import dataclasses
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainerState,
)
from transformers.trainer import TRAINER_STATE_NAME

from recipes.errors import UserError
from recipes.models.families import display_names, families_with_config_field
from recipes.runs.metrics import compute_classification_metrics

RESULT_FILE = "result.json"  # a finished run's record, written last
MODEL_FOLDER = "model"  # a finished run's best model, where the command may save it


# ---------------------------------------------------------------------------------- data
def tokenize_splits(raw: dict, tokenizer, config, max_length: int) -> tuple[dict, dict]:
    """Each split (columns `text`, `text_pair` for pairs, `label`) tokenized, pairs as pairs,
    truncated to `max_length`; `label` renamed `labels`, as the model takes it. And what
    truncation cut, per split ("train_truncated_examples", "train_truncated_median_tokens_lost",
    ...), printed, with a warning where it cut most of a split."""
    # Segment ids only where the model has a table for them (BERT: 2; RoBERTa: 1; ModernBERT: none)
    use_segments = getattr(config, "type_vocab_size", 0) > 1
    pair = "text_pair" in raw["train"].column_names

    def tokenize(batch):
        texts = (batch["text"], batch["text_pair"] if pair else None)
        encoded = tokenizer(
            *texts, truncation=True, max_length=max_length, return_token_type_ids=use_segments
        )
        # the whole length, to count what truncation cut (verbose: no warning for long texts)
        whole = tokenizer(*texts, return_attention_mask=False, verbose=False)["input_ids"]
        encoded["tokens_lost"] = [max(0, len(ids) - max_length) for ids in whole]
        return encoded

    tokenized, truncation = {}, {}
    for split, ds in raw.items():
        ds = ds.map(tokenize, batched=True, remove_columns=["text"] + ["text_pair"] * pair)
        lost = [n for n in ds["tokens_lost"] if n > 0]
        median = float(np.median(lost)) if lost else 0.0
        truncation[f"{split}_truncated_examples"] = len(lost)
        truncation[f"{split}_truncated_median_tokens_lost"] = median
        if lost:
            print(f"{split}: {len(lost):,} of {len(ds):,} examples truncated to max_seq_length="
                  f"{max_length} (median {median:g} tokens lost)")  # fmt: skip
        if len(lost) > len(ds) / 2:
            print(
                f"warning: most {split} examples ({len(lost) / len(ds):.0%}) are longer than "
                f"max_seq_length={max_length}: the classifier sees only their start. Raise "
                "`max_seq_length` (up to the model's positions) if their ends matter.",
                file=sys.stderr,
            )
        tokenized[split] = ds.remove_columns("tokens_lost").rename_column("label", "labels")
    return tokenized, truncation


# ---------------------------------------------------------------------------------- model
def set_classifier_pooling(config, requested: str) -> None:
    """Mean pooling where the family's head offers it, as `classifier_pooling` says; the
    others' heads read the first token, so only "auto" fits them."""
    if hasattr(config, "classifier_pooling"):
        config.classifier_pooling = "mean" if requested == "auto" else requested
    elif requested != "auto":
        offer = display_names(families_with_config_field("classifier_pooling"))
        raise UserError(
            f"`classifier_pooling: {requested}` is a setting of {offer} classifiers; a "
            f"{config.model_type} classifier reads the first token. Leave `classifier_pooling` "
            "at auto."
        )


# ---------------------------------------------------------------------------------- training
def fine_tune(model, training_args, datasets, tokenizer, num_labels: int, head_lr=None):
    """Train on datasets["train"], keep the checkpoint with the best validation accuracy
    (unless `eval_strategy: no`), test it once; return the Trainer and {metrics}.
    `head_lr`: the classifier head's own peak learning rate."""

    def compute_metrics(eval_pred):
        return compute_classification_metrics(eval_pred, num_labels)

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=datasets["train"],
        eval_dataset=datasets["validation"],
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
        processing_class=tokenizer,  # saved and pushed with the model
        compute_metrics=compute_metrics,
    )
    if head_lr is not None:  # Trainer builds the schedule around it: each group keeps its peak
        trainer.optimizer = optimizer_with_head_lr(trainer, head_lr)
    metrics = dict(trainer.train().metrics)
    metrics.update(trainer.evaluate())  # the kept checkpoint's validation scores
    metrics.update(trainer.evaluate(datasets["test"], metric_key_prefix="test"))
    return trainer, metrics


def optimizer_with_head_lr(trainer, head_lr: float):
    """Trainer's own optimizer (class, betas, weight-decay split), with the parameters outside
    the encoder (`base_model_prefix`) at `head_lr`; frozen ones (requires_grad off) left out."""
    model, args = trainer.model, trainer.args
    decay = set(trainer.get_decay_parameter_names(model))
    encoder = model.base_model_prefix + "."
    groups = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            head = not name.startswith(encoder)
            groups.setdefault((head, name in decay), []).append(param)
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    return cls(
        [
            {
                "params": params,
                "lr": head_lr if head else args.learning_rate,
                "weight_decay": args.weight_decay if decays else 0.0,
            }  # fmt: skip
            for (head, decays), params in groups.items()
        ],
        **kwargs,
    )


def run_arguments(training_args, out: Path, seed: int, lr: float, steps: int, evaluations: int):
    """One run's TrainingArguments: its seed, rate and length, evaluated `evaluations` times on
    the validation split, keeping the best checkpoint (model only: runs are not resumed)."""
    every = max(1, math.ceil(steps / evaluations))
    selecting = training_args.eval_strategy != "no"
    return dataclasses.replace(
        training_args,
        output_dir=str(out),
        seed=seed,
        learning_rate=lr,
        max_steps=steps,
        eval_strategy="steps" if selecting else "no",
        eval_steps=every,
        save_strategy="steps" if selecting else "no",
        save_steps=every,
        save_only_model=True,
        load_best_model_at_end=selecting,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        push_to_hub=False,
    )


# ---------------------------------------------------------------------------------- on disk
def save_finished_run(trainer, folder: Path, record: dict, keep_model: bool) -> None:
    """The end of one run: its best model and trainer state kept in folder/model (`keep_model`:
    it may be the model the command saves), its checkpoints deleted, then folder/result.json,
    written whole (a temporary file, then os.replace) and last: its presence marks the run
    finished, whenever the command is killed."""
    if keep_model:  # every process: saving may gather a sharded model
        trainer.save_model(str(folder / MODEL_FOLDER), _internal_call=True)
    if not trainer.is_world_process_zero():
        return
    if keep_model:
        trainer.state.save_to_json(str(folder / MODEL_FOLDER / TRAINER_STATE_NAME))
    for checkpoint in folder.glob("checkpoint-*"):  # the best one is loaded: used, done
        shutil.rmtree(checkpoint, ignore_errors=True)
    partial = folder / f"{RESULT_FILE}.partial"
    partial.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, folder / RESULT_FILE)


def load_finished_run(folder: Path, key: str, needs_model: bool) -> dict | None:
    """The record save_finished_run wrote in `folder`, if it was written for these very
    settings (`key`) and, where the run's model is wanted, with the model; else None."""
    try:
        record = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    if needs_model and not (folder / MODEL_FOLDER / TRAINER_STATE_NAME).is_file():
        return None  # finished as a run whose model nobody needed (another grid's)
    return record


def finished_run_trainer(folder: Path, training_args, tokenizer) -> Trainer:
    """A Trainer around the model and state save_finished_run kept in `folder`, as fine_tune
    left them, whether this command trained the run or an earlier, killed one: for saving the
    model into output_dir with the command's tokenizer, and the card's numbers. Every process
    calls it; it returns once all of them have read the files."""
    saved = folder / MODEL_FOLDER
    with training_args.main_process_first(desc="loading the kept model"):  # rank 0 wrote it
        model = AutoModelForSequenceClassification.from_pretrained(saved, use_safetensors=True)
        state = TrainerState.load_from_json(str(saved / TRAINER_STATE_NAME))
    args = dataclasses.replace(
        training_args,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        push_to_hub=False,  # the command pushes, with its card, at the end
    )
    trainer = Trainer(model=model, args=args, processing_class=tokenizer)
    trainer.state = state
    trainer.accelerator.wait_for_everyone()  # before the main process deletes the folder
    return trainer
