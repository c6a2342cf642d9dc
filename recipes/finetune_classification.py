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
`sweep_learning_rates` make the comparison a measurement (recipes/finetune/comparison.py). The
majority-class baseline (always the training data's most frequent label) is the floor under both.
Each finished run is kept in output_dir/_runs until the end: killed, the same command skips the
runs it finished and starts the one it was in again (`overwrite_output_dir: true` forgets them).

Reads top to bottom: parse -> seed/output/Hub -> data -> tokenizer + config -> tokenize ->
the runs (label counts x seeds x pretrained/control x learning rates) -> summary, model, card,
push.
"""

import shutil
from pathlib import Path

from transformers import TrainingArguments

from recipes.config import parse_config
from recipes.data.classification import load_classification_data
from recipes.errors import exit_on_user_error
from recipes.finetune import comparison
from recipes.finetune.comparison import PRETRAINED
from recipes.finetune.finish import finish_classification_run
from recipes.finetune.training import finished_run_trainer, set_classifier_pooling, tokenize_splits
from recipes.finetune_arguments import (
    FINETUNE_DEFAULTS,
    ClassificationDataArguments,
    ComparisonArguments,
    FinetuneModelArguments,
)
from recipes.models.checkpoints import (
    NO_CHECKPOINT_HINT,
    check_task_head,
    load_pretrained_parts,
    local_checkpoint,
)
from recipes.runs.metrics import majority_baseline
from recipes.runs.start import RUNS_FOLDER, start_run


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
    data_args, model_args, comparison_args, training_args = parse_args(argv)
    path = model_args.model_name_or_path
    out = Path(training_args.output_dir)

    # ---- Seed, output folder, Hub access (fail in seconds, not after training) ---------------
    start_run(training_args, data_args.overwrite_output_dir)
    if data_args.overwrite_output_dir:  # nor reuse the runs a killed command finished
        shutil.rmtree(out / RUNS_FOLDER, ignore_errors=True)

    # ---- The checkpoint's folder (or Hub download), checked before any data is read ---------
    check_task_head(local_checkpoint(path, NO_CHECKPOINT_HINT), path, model_args.discard_task_head)

    # ---- Data: load, check the columns and labels, label ids --------------------------------
    raw, label_names = load_classification_data(data_args, seed=training_args.seed)
    baseline = majority_baseline(raw["train"]["label"], raw["test"]["label"], len(label_names))

    # ---- Tokenizer and config from the checkpoint, with this task's labels --------------------
    tokenizer, config = load_pretrained_parts(
        path, label_names, data_args.max_seq_length, model_args.attn_implementation
    )
    set_classifier_pooling(config, model_args.classifier_pooling)
    with training_args.main_process_first(desc="tokenizing"):
        splits, truncation = tokenize_splits(raw, tokenizer, config, data_args.max_seq_length)
    sizes = {split: len(ds) for split, ds in splits.items()}
    print(f"{sizes['train']:,} training, {sizes['validation']:,} validation and "
          f"{sizes['test']:,} test examples, labels {label_names}")  # fmt: skip

    # ---- The runs: label counts x seeds x (pretrained, random init) x learning rates ----------
    plan = comparison.plan_comparison(
        comparison_args, model_args.from_scratch_control, training_args, sizes["train"]
    )
    records = comparison.run_comparison(plan, splits, tokenizer, config, model_args, training_args)

    # ---- Summary: per label count, each side's kept rate, mean and spread; the difference ----
    results = comparison.comparison_results(
        plan, records, sizes, baseline, label_names, model_args.freeze_embeddings
    )
    results.update(truncation)
    print(comparison.report(results, path))

    # ---- The model: pretrained, most labels, first seed, the kept rate ----------------------
    at_kept_rates = comparison.runs_at_kept_rates(plan, results["learning_curve"][-1])
    saved_run = out / RUNS_FOLDER / at_kept_rates[PRETRAINED].name
    trainer = finished_run_trainer(saved_run, training_args, tokenizer)
    histories = {side: records[run.name]["log_history"] for side, run in at_kept_rates.items()}
    results = finish_classification_run(  # every process: it saves the model into output_dir
        trainer, training_args, results, histories, data_args, path, label_names
    )
    if trainer.is_world_process_zero():  # the runs are in all_results.json now
        shutil.rmtree(out / RUNS_FOLDER, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
