"""One fine-tuning run: the classifier's pooling, its TrainingArguments (evaluated and kept on
the validation split), Trainer with the head's own learning rate, and the test score.
"""

import dataclasses
import math
from pathlib import Path

import numpy as np
from transformers import (
    DataCollatorWithPadding,
    Trainer,
)

from recipes.errors import UserError
from recipes.runs.metrics import classification_metrics


# ---------------------------------------------------------------------------------- model
def set_classifier_pooling(config, requested: str) -> None:
    """Mean pooling where the family's head offers it (ModernBERT), as `classifier_pooling`
    says; the others' heads read the first token, so only "auto" fits them."""
    if hasattr(config, "classifier_pooling"):
        config.classifier_pooling = "mean" if requested == "auto" else requested
    elif requested != "auto":
        raise UserError(
            f"`classifier_pooling: {requested}` is ModernBERT's setting; a {config.model_type} "
            "classifier reads the first token. Leave `classifier_pooling` at auto."
        )


# ---------------------------------------------------------------------------------- training
def fine_tune(model, training_args, datasets, tokenizer, num_labels: int, head_lr=None):
    """Train on datasets["train"], keep the checkpoint with the best validation accuracy
    (unless `eval_strategy: no`), test it once; return the Trainer and {metrics}.
    `head_lr`: the classifier head's own peak learning rate."""

    def compute_metrics(eval_pred):
        preds = np.asarray(eval_pred.predictions).argmax(axis=-1)
        return classification_metrics(preds, np.asarray(eval_pred.label_ids), num_labels)

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
