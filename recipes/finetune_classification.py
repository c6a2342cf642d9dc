"""Fine-tune a pretrained encoder on text classification, next to the same model from random
weights: does the pretraining pay off?

    python -m recipes.finetune_classification --config recipes/configs/finetune/folio-genre.yaml \
        --model_name_or_path outputs/modernbert-tiny
    python -m recipes.finetune_classification --config recipes/configs/finetune/glue-sst2.yaml \
        --model_name_or_path outputs/roberta-tiny --from_scratch_control true

Any masked-LM checkpoint the pretraining recipes write (RoBERTa, BERT, ModernBERT), or a Hub id,
loads with AutoModelForSequenceClassification: the pretrained encoder plus a new classifier head.
Single texts or pairs (`text_pair_column`), from csv/jsonl/parquet files with a text and a label
column or from a Hub dataset (`dataset_name: nyu-mll/glue`, `dataset_config_name: sst2`).

A fine-tuned accuracy means little alone. `from_scratch_control: true` fine-tunes the same
architecture (AutoConfig of the checkpoint) from random weights with the same tokenizer, data,
hyperparameters and seed; the gap between the two is what pretraining bought. The majority-class
baseline (always the training data's most frequent label) is the floor under both.

Reads top to bottom: parse -> seed/output/Hub -> data -> tokenizer + config -> tokenize ->
fine-tune the pretrained model -> the random-init control -> results, card, push.
"""

import dataclasses
import json
import os
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

from recipes import hub
from recipes.classification_data import load_classification_data
from recipes.config import TRAINING_DEFAULTS, DataSourceArguments, parse_config
from recipes.errors import UserError, exit_on_user_error
from recipes.modeling import require_folder_or_hub_id
from recipes.outputs import FINISHED_MARKER, start_run


@dataclass
class ClassificationDataArguments(DataSourceArguments):
    """Data for fine-tuning; `text_column` (inherited) holds the (first) text."""

    text_pair_column: str | None = field(
        default=None,
        metadata={"help": "Second text of a pair (GLUE mrpc: sentence2); unset: single texts."},
    )
    label_column: str = field(default="label", metadata={"help": "Column that holds the label."})
    train_split: str = field(default="train", metadata={"help": "Hub dataset split to train on."})
    validation_split: str = field(
        default="validation",
        metadata={"help": "Hub dataset split to evaluate on (MNLI: validation_matched)."},
    )
    validation_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Without validation data, hold out this share of the training data."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on a seeded random subset of this many examples."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on the first N held-out examples."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train even if output_dir holds a finished model."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.streaming:
            raise UserError("`streaming` is for pretraining corpora; fine-tuning data is loaded.")


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
FINETUNE_DEFAULTS = TRAINING_DEFAULTS | {
    "output_dir": "outputs/classifier",
    "learning_rate": 1e-4,
    "weight_decay": 0.1,
    "num_train_epochs": 3,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_steps": 10,
    "save_total_limit": 1,
}


def parse_args(argv=None):
    return parse_config(
        [ClassificationDataArguments, FinetuneModelArguments, TrainingArguments],
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


def pretrained_model(path: str, config):
    """The checkpoint's encoder under a new classifier head; says which weights start fresh."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the masked-LM head we drop
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, config=config, use_safetensors=True, output_loading_info=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    fresh = sorted(info["missing_keys"])
    print(
        f"{type(model).__name__} from {path}: {model.num_parameters() / 1e6:.1f}M parameters; "
        f"new (random) weights: {', '.join(fresh) or 'none'}"
    )
    return model


# ---------------------------------------------------------------------------------- training
def fine_tune(model, training_args, datasets, tokenizer, num_labels: int, resume_from=None):
    """Train on datasets["train"] and evaluate on datasets["validation"]; return the Trainer
    and {train and eval metrics}."""

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
    metrics = dict(trainer.train(resume_from_checkpoint=resume_from).metrics)
    metrics.update(trainer.evaluate())
    return trainer, metrics


@exit_on_user_error
def main(argv=None) -> dict:
    data_args, model_args, training_args = parse_args(argv)
    path = model_args.model_name_or_path

    # ---- Seed, output folder, Hub access (fail in seconds, not after training) ---------------
    resume_from = start_run(training_args, data_args.overwrite_output_dir)

    # ---- Data: load, check the columns and labels, label ids --------------------------------
    raw, label_names = load_classification_data(data_args, seed=training_args.seed)
    num_labels = len(label_names)
    baseline = majority_baseline(raw["train"]["label"], raw["validation"]["label"], num_labels)

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
    print(f"{sizes['train']:,} training and {sizes['validation']:,} held-out examples, "
          f"labels {label_names}")  # fmt: skip

    # ---- Fine-tune the pretrained model -----------------------------------------------------
    model = pretrained_model(path, config)
    trainer, metrics = fine_tune(
        model, training_args, tokenized, tokenizer, num_labels, resume_from
    )
    # model + tokenizer, safetensors. `_internal_call`: Trainer would push here with a card of
    # its own; we push at the end with ours.
    trainer.save_model(_internal_call=True)
    results = {**metrics, "train_examples": sizes["train"], "eval_examples": sizes["validation"]}
    results |= {f"majority_baseline_{k}": v for k, v in baseline.items() if k != "label"}
    results["majority_label"] = label_names[baseline["label"]]
    histories = {"pretrained": trainer.state.log_history}

    # ---- The control: same architecture, random weights, everything else the same -----------
    if model_args.from_scratch_control:
        control_args = dataclasses.replace(
            training_args,
            output_dir=str(Path(training_args.output_dir) / "_control"),  # "_*": never pushed
            save_strategy="no",
            push_to_hub=False,
        )
        set_seed(training_args.seed)
        control = AutoModelForSequenceClassification.from_config(config)
        control_trainer, control_metrics = fine_tune(
            control, control_args, tokenized, tokenizer, num_labels
        )
        results |= {f"control_{k}": v for k, v in control_metrics.items()}
        histories["random init"] = control_trainer.state.log_history

    print(summary_line(results, path))
    if not trainer.is_world_process_zero():
        return results
    return finish_classification_run(trainer, results, histories, data_args, path, label_names)


def summary_line(results: dict, path: str) -> str:
    line = f"held-out accuracy {_scores(results, 'eval_')} fine-tuned from {path}"
    if "control_eval_accuracy" in results:
        line += f" vs {_scores(results, 'control_eval_')} from random weights (same architecture and steps)"
    return line + (
        f" vs {_scores(results, 'majority_baseline_')} for always predicting "
        f"'{results['majority_label']}' (the most frequent training label)"
    )


# ---------------------------------------------------------------------------------- outputs
def finish_classification_run(trainer, results, histories, data_args, base, label_names) -> dict:
    """Loss curves, card, trainer state, all_results.json (last: the run is finished), push."""
    args = trainer.args
    out = Path(args.output_dir)
    curve = plot_fine_tuning(histories, out / "loss_curve.png", title=out.name)
    trainer.state.save_to_json(str(out / "trainer_state.json"))
    hyper = {
        "max_seq_length": data_args.max_seq_length,
        "learning_rate": args.learning_rate,
        "global_batch_size": args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size,
        "epochs": args.num_train_epochs if args.max_steps <= 0 else None,
        "max_steps": trainer.state.max_steps,
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "seed": args.seed,
        "precision": {"no": "fp32"}.get(args.mixed_precision, args.mixed_precision),
    }
    repo_id = args.hub_model_id or out.name
    card = classification_card(repo_id, base, results, hyper, data_args, label_names, curve)
    card.save(out / "README.md")
    (out / FINISHED_MARKER).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if args.push_to_hub:
        url = hub.push_folder(out, args.hub_model_id, commit_message="End of fine-tuning")
        print(f"Pushed to {url}")
    return results


def plot_fine_tuning(histories: dict, path: Path, title: str) -> Path | None:
    """Train and held-out loss against step, one colour per run (pretrained, random init)."""
    import matplotlib  # ~1 s to import: only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for (name, history), color in zip(histories.items(), ["tab:blue", "tab:gray"]):
        train = [(e["step"], e["loss"]) for e in history if "loss" in e]
        evals = [(e["step"], e["eval_loss"]) for e in history if "eval_loss" in e]
        if train:
            ax.plot(*zip(*train), color=color, linewidth=1.0, label=f"{name}: train")
        if evals:
            ax.plot(*zip(*evals), "o--", color=color, label=f"{name}: held-out")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("classification cross-entropy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


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
            metric_value=round(float(results[f"eval_{key}"]), 4),
        )
        for key in ("accuracy", "f1")
        if f"eval_{key}" in results
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
    rows = {"fine-tuned from the pretrained model": _scores(results, "eval_")}
    if "control_eval_accuracy" in results:
        rows["fine-tuned from random weights (same architecture)"] = _scores(
            results, "control_eval_"
        )
    rows[f"always '{results['majority_label']}' (majority)"] = _scores(
        results, "majority_baseline_"
    )
    source = data_args.dataset_name or ", ".join(data_args.train_files)
    if data_args.dataset_config_name:
        source += f" ({data_args.dataset_config_name})"
    sections = [
        f"# {repo_id.split('/')[-1]}",
        f"A text classifier with labels {', '.join(label_names)}.",
        "## Fine-tuned from",
        f"Fine-tuned from `{base}`{_base_summary(base)}",
        "## Does the pretraining pay off?",
        f"Held-out accuracy on {results['eval_examples']:,} examples:",
        hub._table(("model", "accuracy"), rows),
        "## Training data",
        f"{source}: {results['train_examples']:,} training examples.",
        "## Training hyperparameters",
        hub._table(("Hyperparameter", "Value"), {k: v for k, v in hyper.items() if v is not None}),
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


def _scores(results: dict, prefix: str) -> str:
    text = f"{results[f'{prefix}accuracy']:.3f}"
    return text if f"{prefix}f1" not in results else f"{text} (F1 {results[f'{prefix}f1']:.3f})"


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
    return ", pretrained from scratch with masked-LM" + (f": {', '.join(parts)}." if parts else ".")


if __name__ == "__main__":
    main()
