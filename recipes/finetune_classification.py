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
`sweep_learning_rates` make the comparison a measurement (recipes/comparison.py). The
majority-class baseline (always the training data's most frequent label) is the floor under both.

Reads top to bottom: parse -> seed/output/Hub -> data -> tokenizer + config -> tokenize ->
the runs (label counts x seeds x pretrained/control x learning rates) -> summary, model, card,
push.
"""

import shutil
from pathlib import Path

from transformers import (
    AutoModelForSequenceClassification,
    TrainingArguments,
    set_seed,
)

from recipes.arguments import (
    FINETUNE_DEFAULTS,
    ClassificationDataArguments,
    ComparisonArguments,
    FinetuneModelArguments,
)
from recipes.config import parse_config
from recipes.data.classification import load_classification_data
from recipes.errors import exit_on_user_error
from recipes.finetune import comparison
from recipes.finetune.comparison import CONTROL, PRETRAINED
from recipes.finetune.training import fine_tune, run_arguments, set_classifier_pooling
from recipes.models.checkpoints import load_pretrained_parts, pretrained_model
from recipes.runs.finish import finish_classification_run
from recipes.runs.metrics import majority_baseline
from recipes.runs.start import start_run


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
    counts = comparison.label_counts(grid.label_counts, sizes["train"])
    rates = comparison.learning_rates(grid, training_args.learning_rate)
    sides = [PRETRAINED] + [CONTROL] * model_args.from_scratch_control
    seeds = [training_args.seed + k for k in range(grid.seeds)]
    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    batch *= training_args.world_size
    out = Path(training_args.output_dir)
    runs, kept = [], {}  # kept: the saved model's candidates (largest count, first seed)
    for n in counts:
        steps = training_args.max_steps
        if steps <= 0:
            steps = comparison.run_steps(
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
    rows = comparison.summarize(runs, sides)
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
    print(comparison.text_table(rows, len(seeds), floor))
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
        line += f"; pretraining: {comparison.difference_text(top)}"
    return line


def _side(side: dict) -> str:
    text = comparison._pm(side)
    return text if "f1" not in side else f"{text} (F1 {side['f1']:.3f})"


if __name__ == "__main__":
    main()
