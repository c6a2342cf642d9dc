"""Fine-tuning's settings: labelled data, the checkpoint and its head, the comparison's runs, and
the training defaults where they differ from pretraining's."""

from dataclasses import dataclass, field
from typing import ClassVar

from recipes.arguments import TRAINING_DEFAULTS, DataSourceArguments, OutputFolderArguments
from recipes.errors import UserError
from recipes.models.families import display_names, families_with_config_field


@dataclass
class ClassificationDataArguments(OutputFolderArguments, DataSourceArguments):
    """Data for fine-tuning; `text_column` (inherited) holds the (first) text."""

    text_pair_column: str | None = field(
        default=None,
        metadata={"help": "Second text of a pair (GLUE mrpc: sentence2); unset: single texts."},
    )
    label_column: str = field(default="label", metadata={"help": "Column that holds the label."})
    group_column: str | None = field(
        default=None,
        metadata={
            "help": "Column that names each example's source (a play, a document, a page). "
            "Validation and test shares held out of the training data then take whole sources: "
            "passages of one play share names, so a same-play validation split scores what was "
            "memorised and picks overfit checkpoints."
        },
    )
    test_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "Labelled files to report accuracy on, never used to choose anything. "
            "Unset: a seeded `test_split_percentage` of the training data."
        },
    )
    train_split: str = field(default="train", metadata={"help": "Hub dataset split to train on."})
    validation_split: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset split that picks the best checkpoint. Unset: a seeded "
            "`validation_split_percentage` of the training split."
        },
    )
    test_split: str = field(
        default="test",
        metadata={
            "help": "Hub dataset split to report on (GLUE hides its test labels: use "
            "`validation`, MNLI `validation_matched`); held out of train if the dataset has none."
        },
    )
    validation_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Without validation data, hold out this share of the training data."},
    )
    test_split_percentage: float = field(
        default=10.0,
        metadata={"help": "Without test data, hold out this share of the training data."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on a seeded random subset of this many examples."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Validate and test on the first N examples of each."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated."})


# the families whose classifier lets `classifier_pooling` choose its input
POOLING_FAMILIES = families_with_config_field("classifier_pooling")


@dataclass
class FinetuneModelArguments:
    help_section: ClassVar[str] = "model"

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pretraining recipe's output_dir (outputs/roberta-tiny) or a Hub id."},
    )
    discard_task_head: bool = field(
        default=False,
        metadata={
            "help": "model_name_or_path is a fine-tuned model already (it has a classification "
            "or other task head): drop that head and start a new one from random weights, "
            "keeping its encoder. Unset, such a checkpoint is refused: its trained head would "
            "tilt the comparison. Best: fine-tune from the masked-LM checkpoint it came from."
        },
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
            "help": "The classifier's input, where the family's classifier offers a choice "
            f"({display_names(POOLING_FAMILIES)}): 'mean' of every token's vector or the first "
            "token's ('cls'). auto: mean. Masked-LM pretraining never trains the first token's "
            "output, so mean pooling carries what pretraining learnt (README). The other "
            "families' heads read the first token; only auto fits them.",
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
            "never contain keeps its place next to the words they do (docs/measurements.md, "
            "Frozen token embeddings)."
        },
    )
    attn_implementation: str = field(
        default="auto",
        metadata={
            "help": "Attention kernel. auto: sdpa where the model has it, else its eager one.",
            "choices": ["auto", "sdpa", "eager", "flash_attention_2"],
        },
    )

    def __post_init__(self):
        if not self.model_name_or_path:
            raise UserError(
                "`model_name_or_path` is not set: point it to a pretrained model, e.g. "
                "`--model_name_or_path outputs/roberta-tiny` (a pretraining recipe's output_dir)."
            )


# Fields fine-tuning does not take: refused by the parse (recipes/config.py), left out of --help.
# Evaluation and saving follow `evaluations_per_run` (recipes/finetune/comparison.py), by steps.
FINETUNE_REFUSED = {
    "streaming": "streaming is for pretraining corpora; fine-tuning data is loaded whole",
    "eval_steps": "each run evaluates `evaluations_per_run` times, evenly spaced over its own "
    "length (runs differ in length): set evaluations_per_run instead",
    "save_steps": "each run saves where it evaluates (`evaluations_per_run` times) and keeps the "
    "best checkpoint: set evaluations_per_run instead",
    "resume_from_checkpoint": "fine-tuning runs are not resumed from checkpoints; rerunning the "
    "same command skips the runs a killed command finished (output_dir/_runs)",
}

# Fine-tuning defaults, where they differ from pretraining's (RoBERTa's GLUE settings: 6% warm-up,
# weight decay 0.1, beta2 0.98; a learning rate for small models, which take larger steps).
FINETUNE_DEFAULTS = {k: v for k, v in TRAINING_DEFAULTS.items() if k not in FINETUNE_REFUSED} | {
    "output_dir": "outputs/classifier",
    "learning_rate": 1e-4,
    "weight_decay": 0.1,
    "num_train_epochs": 3,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "logging_steps": 10,
    "save_total_limit": 1,
}


@dataclass
class ComparisonArguments:
    """How many runs, on how many labels, at which learning rates."""

    help_section: ClassVar[str] = "fine-tuning runs"

    seeds: int = field(
        default=1,
        metadata={
            "help": "Fine-tune each side this many times, seeds seed, seed+1, ...; results give "
            "the mean, the spread and the standard error of the difference (3 or more for a "
            "comparison; 1 to just fine-tune)."
        },
    )
    label_counts: list[int] | None = field(
        default=None,
        metadata={
            "help": "The learning curve: fine-tune on this many labelled examples each (a seeded "
            "random subset per seed, the same for both sides), e.g. 64 256 1000. A count at or "
            "above the training split's size uses all of it. Unset: all."
        },
    )
    control_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "The random-init control's own peak learning rate (random weights take "
            "larger steps than a pretrained encoder should). Unset: learning_rate."
        },
    )
    sweep_learning_rates: list[float] | None = field(
        default=None,
        metadata={
            "help": "Try each of these peak learning rates on each side and label count, and "
            "keep, per side and count, the one with the best mean validation accuracy over the "
            "seeds; test accuracy is reported for the kept one only. Unset: no sweep."
        },
    )
    evaluations_per_run: int = field(
        default=5,
        metadata={
            "help": "Evaluate each run on the validation split this many times, evenly spaced, "
            "and keep the best checkpoint (load_best_model_at_end); it is then tested once. It "
            "sets each run's eval_steps and save_steps (its steps / this), which are not set "
            "here."
        },
    )
    min_train_steps: int = field(
        default=0,
        metadata={
            "help": "Train each run at least this many optimizer steps: 64 labels x 10 epochs "
            "at batch 32 would be 20 steps, too few to learn from."
        },
    )

    def __post_init__(self):
        if self.seeds < 1:
            raise UserError(f"`seeds: {self.seeds}`: fine-tune at least once (seeds >= 1).")
        if self.label_counts and min(self.label_counts) < 1:
            raise UserError(f"`label_counts: {self.label_counts}`: counts must be >= 1.")
        if self.evaluations_per_run < 1:
            raise UserError("`evaluations_per_run` must be >= 1.")
