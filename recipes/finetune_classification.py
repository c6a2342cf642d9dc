"""Fine-tune a pretrained encoder on text classification, next to the same model from random
weights: does the pretraining pay off?

    python -m recipes.finetune_classification --config recipes/configs/finetune/folio-genre.yaml \
        --model_name_or_path outputs/modernbert-tiny
    python -m recipes.finetune_classification --config recipes/configs/finetune/glue-sst2.yaml \
        --model_name_or_path outputs/roberta-tiny --from_scratch_control true --seeds 3

Any masked-LM checkpoint the pretraining recipes write (RoBERTa, BERT, ModernBERT), or a Hub id,
loads with AutoModelForSequenceClassification: the pretrained encoder plus a new classifier head.
Single texts or pairs (`text_pair_column`), from csv/jsonl/parquet files with a text and a label
column or from a Hub dataset (`dataset_name: nyu-mll/glue`, `dataset_config_name: sst2`).

Three splits: train, validation (picks each run's best checkpoint and, in a sweep, the learning
rate) and test (reported, never used to choose). A fine-tuned accuracy means little alone:
`from_scratch_control: true` fine-tunes the same architecture (AutoConfig of the checkpoint) from
random weights with the same tokenizer, data and seeds; `seeds`, `label_counts` and
`sweep_learning_rates` make the comparison a measurement (recipes/learning_curve.py). The
majority-class baseline (always the training data's most frequent label) is the floor under both.

Reads top to bottom: parse -> seed/output/Hub -> data -> tokenizer + config -> tokenize ->
the runs (label counts x seeds x pretrained/control x learning rates) -> summary, model, card,
push.
"""

import dataclasses
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers import logging as hf_logging

from recipes import learning_curve
from recipes.classification_data import ClassificationDataArguments, load_classification_data
from recipes.classification_outputs import finish_classification_run
from recipes.config import TRAINING_DEFAULTS, parse_config
from recipes.errors import UserError, exit_on_user_error
from recipes.learning_curve import CONTROL, PRETRAINED, ComparisonArguments
from recipes.modeling import require_folder_or_hub_id
from recipes.outputs import start_run


@dataclass
class FinetuneModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pretraining recipe's output_dir (outputs/roberta-tiny) or a Hub id."},
    )
    from_scratch_control: bool = field(
        default=False,
        metadata={
            "help": "Also fine-tune the same architecture from random weights (same tokenizer, "
            "data, hyperparameters, seed) and report it next to the pretrained one."
        },
    )
    classifier_pooling: str = field(
        default="auto",
        metadata={
            "help": "ModernBERT's classifier input: 'mean' of every token's vector or the first "
            "token's ('cls'). auto: mean. Masked-LM pretraining never trains the first token's "
            "output, so mean pooling carries what pretraining learnt (README). RoBERTa's and "
            "BERT's heads read the first token; only auto fits them.",
            "choices": ["auto", "mean", "cls"],
        },
    )
    classifier_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Peak learning rate of the new classifier head (everything outside the "
            "encoder); the encoder keeps learning_rate. A head that starts from random weights "
            "can learn fast while a pretrained encoder moves slowly. Unset: learning_rate."
        },
    )
    freeze_embeddings: bool = field(
        default=True,
        metadata={
            "help": "Keep the pretrained token embeddings as pretraining left them (the "
            "random-init control always trains its own): a word that the few labelled examples "
            "never contain keeps its place next to the words they do. Measured on an unseen "
            "task, 256 labels: +0.04 test accuracy on a CPU-pretrained checkpoint (README)."
        },
    )
    attn_implementation: str = field(
        default="sdpa",
        metadata={"help": "Attention kernel.", "choices": ["sdpa", "eager", "flash_attention_2"]},
    )

    def __post_init__(self):
        if not self.model_name_or_path:
            raise UserError(
                "`model_name_or_path` is not set: point it to a pretrained model, e.g. "
                "`--model_name_or_path outputs/roberta-tiny` (a pretraining recipe's output_dir)."
            )


# Fine-tuning defaults, where they differ from pretraining's (RoBERTa's GLUE settings: 6% warm-up,
# weight decay 0.1, beta2 0.98; a learning rate for small models, which take larger steps).
# Evaluation and saving follow `evaluations_per_run` (recipes/learning_curve.py), by steps.
FINETUNE_DEFAULTS = TRAINING_DEFAULTS | {
    "output_dir": "outputs/classifier",
    "learning_rate": 1e-4,
    "weight_decay": 0.1,
    "num_train_epochs": 3,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "logging_steps": 10,
    "save_total_limit": 1,
}


def parse_args(argv=None):
    return parse_config(
        [
            ClassificationDataArguments,
            FinetuneModelArguments,
            ComparisonArguments,
            TrainingArguments,
        ],
        argv,
        defaults=FINETUNE_DEFAULTS,
    )


# ---------------------------------------------------------------------------------- metrics
def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> dict:
    """Accuracy; with two classes also F1 of class 1 (GLUE's F1 for MRPC and QQP)."""
    metrics = {"accuracy": float((predictions == labels).mean())}
    if num_labels == 2:
        tp = int(((predictions == 1) & (labels == 1)).sum())
        predicted, actual = int((predictions == 1).sum()), int((labels == 1).sum())
        metrics["f1"] = 2 * tp / (predicted + actual) if predicted + actual else 0.0
    return metrics


def majority_baseline(train_labels, eval_labels, num_labels: int) -> dict:
    """Always predict the training data's most frequent label (looking at no held-out label)."""
    majority = int(np.bincount(np.asarray(train_labels), minlength=num_labels).argmax())
    eval_labels = np.asarray(eval_labels)
    constant = np.full_like(eval_labels, majority)
    return {"label": majority, **classification_metrics(constant, eval_labels, num_labels)}


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


def load_pretrained_parts(path: str, label_names: list[str], max_seq_length: int, attn: str):
    """Tokenizer and the checkpoint's config with this task's labels, checked for fit."""
    require_folder_or_hub_id(
        path,
        "model_name_or_path",
        "Pretrain a model first (e.g. `make demo`) and point to its output_dir, or give a Hub id.",
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(
            path,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            attn_implementation=attn,
        )
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0]
        raise UserError(
            f"could not load a model from `model_name_or_path: {path}` (a pretraining recipe's "
            f"output_dir or a Hub id): {reason}"
        ) from None
    if tokenizer.pad_token is None:
        raise UserError(f"the tokenizer in {path} has no pad token; set `pad_token` and save it.")
    # RoBERTa numbers positions from pad_token_id + 1 (recipes/modeling.py roberta_config)
    offset = config.pad_token_id + 1 if config.model_type == "roberta" else 0
    positions = getattr(config, "max_position_embeddings", max_seq_length) - offset
    if max_seq_length > positions:
        raise UserError(
            f"`max_seq_length: {max_seq_length}` is longer than {path} takes ({positions} "
            "positions, as it was pretrained): lower max_seq_length."
        )
    return tokenizer, config


def pretrained_model(path: str, config, quiet: bool = False):
    """The checkpoint's encoder under a new classifier head; says which weights start fresh
    (unless `quiet`: every later run loads the same)."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the masked-LM head we drop
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, config=config, use_safetensors=True, output_loading_info=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    fresh = sorted(info["missing_keys"])
    if not quiet:
        print(
            f"{type(model).__name__} from {path}: {model.num_parameters() / 1e6:.1f}M "
            f"parameters; new (random) weights: {', '.join(fresh) or 'none'}"
        )
    return model


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


@exit_on_user_error
def main(argv=None) -> dict:
    data_args, model_args, grid, training_args = parse_args(argv)
    path = model_args.model_name_or_path

    # ---- Seed, output folder, Hub access (fail in seconds, not after training) ---------------
    start_run(training_args, data_args.overwrite_output_dir)

    # ---- Data: load, check the columns and labels, label ids --------------------------------
    raw, label_names = load_classification_data(data_args, seed=training_args.seed)
    num_labels = len(label_names)
    baseline = majority_baseline(raw["train"]["label"], raw["test"]["label"], num_labels)

    # ---- Tokenizer and config from the checkpoint, with this task's labels --------------------
    tokenizer, config = load_pretrained_parts(
        path, label_names, data_args.max_seq_length, model_args.attn_implementation
    )
    set_classifier_pooling(config, model_args.classifier_pooling)
    # Segment ids only where the model has a table for them (BERT: 2; RoBERTa: 1; ModernBERT: none)
    use_segments = getattr(config, "type_vocab_size", 0) > 1
    pair = data_args.text_pair_column is not None

    def tokenize(batch):
        return tokenizer(
            batch["text"],
            batch["text_pair"] if pair else None,
            truncation=True,
            max_length=data_args.max_seq_length,
            return_token_type_ids=use_segments,
        )

    with training_args.main_process_first(desc="tokenizing"):
        tokenized = {
            split: ds.map(tokenize, batched=True, remove_columns=["text"] + ["text_pair"] * pair)
            for split, ds in raw.items()
        }
    tokenized = {split: ds.rename_column("label", "labels") for split, ds in tokenized.items()}
    sizes = {split: len(ds) for split, ds in tokenized.items()}
    print(f"{sizes['train']:,} training, {sizes['validation']:,} validation and "
          f"{sizes['test']:,} test examples, labels {label_names}")  # fmt: skip

    # ---- The runs: label counts x seeds x (pretrained, random init) x learning rates ----------
    counts = learning_curve.label_counts(grid.label_counts, sizes["train"])
    rates = learning_curve.learning_rates(grid, training_args.learning_rate)
    sides = [PRETRAINED] + [CONTROL] * model_args.from_scratch_control
    seeds = [training_args.seed + k for k in range(grid.seeds)]
    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    batch *= training_args.world_size
    out = Path(training_args.output_dir)
    runs, kept = [], {}  # kept: the saved model's candidates (largest count, first seed)
    for n in counts:
        steps = training_args.max_steps
        if steps <= 0:
            steps = learning_curve.run_steps(
                n, batch, training_args.num_train_epochs, grid.min_train_steps
            )
        for seed in seeds:
            # the same n examples for both sides and every rate, a different draw per seed
            subset = dict(tokenized, train=tokenized["train"].shuffle(seed=seed).select(range(n)))
            for side in sides:
                for lr in rates[side]:
                    run_dir = out / "_runs" / f"{side.replace(' ', '-')}-{n}-{lr:g}-{seed}"
                    shutil.rmtree(run_dir, ignore_errors=True)  # a killed command's leftovers
                    args = run_arguments(
                        training_args, run_dir, seed, lr, steps, grid.evaluations_per_run
                    )
                    set_seed(seed)  # the new classifier head (and the control) start alike
                    model = (
                        pretrained_model(path, config, quiet=bool(runs))
                        if side == PRETRAINED
                        else AutoModelForSequenceClassification.from_config(config)
                    )
                    if side == PRETRAINED and model_args.freeze_embeddings:
                        model.get_input_embeddings().weight.requires_grad_(False)
                    trainer, metrics = fine_tune(
                        model, args, subset, tokenizer, num_labels,
                        model_args.classifier_learning_rate,
                    )  # fmt: skip
                    shutil.rmtree(run_dir, ignore_errors=True)  # its checkpoints: used, done
                    run = {"side": side, "labels": n, "seed": seed, "learning_rate": lr,
                           "steps": steps, **metrics}  # fmt: skip
                    run["validation_accuracy"] = metrics.get("eval_accuracy", float("nan"))
                    runs.append(run)
                    print(f"{side}: {n:,} labels, lr {lr:g}, seed {seed}, {steps} steps: "
                          f"validation {run['validation_accuracy']:.3f}, "
                          f"test {metrics['test_accuracy']:.3f}")  # fmt: skip
                    if n == counts[-1] and seed == seeds[0]:  # the control: its curve only
                        model_kept = trainer if side == PRETRAINED else None
                        kept[(side, lr)] = (model_kept, trainer.state.log_history)

    # ---- Summary: per label count, each side's kept rate, mean and spread; the difference ----
    rows = learning_curve.summarize(runs, sides)
    top = rows[-1]
    results = {
        "test_accuracy": top[PRETRAINED]["mean"],
        "train_examples": sizes["train"],
        "validation_examples": sizes["validation"],
        "test_examples": sizes["test"],
        "seeds": seeds,
        "freeze_embeddings": model_args.freeze_embeddings,
        "learning_curve": rows,
        "runs": [{k: v for k, v in r.items() if not k.startswith("train_")} for r in runs],
    }
    if "f1" in top[PRETRAINED]:
        results["test_f1"] = top[PRETRAINED]["f1"]
    if CONTROL in top:
        results["control_test_accuracy"] = top[CONTROL]["mean"]
        results["test_accuracy_difference"] = top["difference"]
        results["test_accuracy_difference_se"] = top["difference_se"]
    results |= {f"majority_baseline_{k}": v for k, v in baseline.items() if k != "label"}
    results["majority_label"] = label_names[baseline["label"]]
    floor = (f"always '{results['majority_label']}' (the most frequent training label): "
             f"{results['majority_baseline_accuracy']:.3f}")  # fmt: skip
    print(f"test accuracy on {sizes['test']:,} examples:")
    print(learning_curve.text_table(rows, len(seeds), floor))
    print(summary_line(results, path, top))

    # ---- The model: pretrained, most labels, first seed, the kept rate ----------------------
    trainer, history = kept[(PRETRAINED, top[PRETRAINED]["learning_rate"])]
    # `_internal_call`: Trainer would push here with a card of its own; we push ours at the end
    trainer.save_model(str(out), _internal_call=True)
    histories = {PRETRAINED: history}
    if CONTROL in top:
        histories[CONTROL] = kept[(CONTROL, top[CONTROL]["learning_rate"])][1]
    if not trainer.is_world_process_zero():
        return results
    shutil.rmtree(out / "_runs", ignore_errors=True)
    return finish_classification_run(
        trainer, training_args, results, histories, data_args, path, label_names
    )


def summary_line(results: dict, path: str, top: dict) -> str:
    n = f"{top['labels']:,} labels"
    line = f"test accuracy {_side(top[PRETRAINED])} fine-tuned from {path} ({n})"
    if CONTROL in top:
        line += f" vs {_side(top[CONTROL])} from random weights (same architecture and data)"
    majority = {"mean": results["majority_baseline_accuracy"], "std": None}
    if "majority_baseline_f1" in results:
        majority["f1"] = results["majority_baseline_f1"]
    line += (
        f" vs {_side(majority)} for always predicting "
        f"'{results['majority_label']}' (the most frequent training label)"
    )
    if CONTROL in top:
        line += f"; pretraining: {learning_curve.difference_text(top)}"
    return line


def _side(side: dict) -> str:
    text = learning_curve._pm(side)
    return text if "f1" not in side else f"{text} (F1 {side['f1']:.3f})"


if __name__ == "__main__":
    main()
