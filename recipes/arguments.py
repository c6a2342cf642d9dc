"""Every recipe's settings, typed, with help strings: one place to look.

Each entry script parses a list of these dataclasses plus transformers' TrainingArguments
(recipes/config.py `parse_config`: YAML, then the command line). Defaults that differ from
TrainingArguments' own are in TRAINING_DEFAULTS / FINETUNE_DEFAULTS, and a family's own in its
record (recipes/models/families.py `training_defaults`). `--help` groups the fields by each
dataclass's `help_section`, moved by HELP_SECTIONS, which also picks the TrainingArguments
fields it shows (recipes/help.py).
"""

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from typing import ClassVar

from transformers import PretrainedConfig

from recipes.errors import UserError
from recipes.models.families import (
    DERIVED,
    FAMILIES,
    MLM_FAMILIES,
    NSP_FAMILIES,
    choices_help,
    display_names,
    families_with_config_field,
    recipe_hints,
)


@dataclass
class DataSourceArguments:
    """Where text comes from. Shared by tokenizer training and pretraining."""

    help_section: ClassVar[str] = "data"

    train_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "Local .txt/.jsonl/.json/.parquet/.csv files (also .gz/.bz2/.xz compressed), "
            "globs or folders (every file below) to train on."
        },
    )
    validation_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "Local held-out files or globs (optional). A file that train_files also "
            "matches is held out, not trained on."
        },
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A Hub dataset id, e.g. HuggingFaceFW/fineweb-2."}
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The Hub dataset's config, e.g. pes_Arab."}
    )
    text_column: str = field(default="text", metadata={"help": "Column that holds the text."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Stream the dataset instead of downloading and caching it all."},
    )
    text_sample_by: str = field(
        default="auto",
        metadata={
            "help": "How a .txt file becomes examples: 'line' (one passage per line), "
            "'paragraph' (blank-line separated), 'document' (the whole file). 'auto': per file, "
            "blank-line paragraphs if the file has a blank line between two lines of text, else "
            "one passage per line; the run prints which files it read which way. The BERT "
            "recipe's examples are documents, and 'auto' reads BERT's format there: a blank line "
            "or the end of a file ends a document.",
            "choices": ["auto", "line", "paragraph", "document"],
        },
    )
    on_decode_error: str = field(
        default="error",
        metadata={
            "help": "A .txt file that is not valid UTF-8: 'error' stops with the file's name; "
            "'skip' drops the undecodable lines and reports how many.",
            "choices": ["error", "skip"],
        },
    )

    def __post_init__(self):
        if not self.train_files and not self.dataset_name:
            raise UserError("no data: set `train_files` (local files or globs) or `dataset_name`.")
        if self.train_files and self.dataset_name:
            raise UserError("set either `train_files` or `dataset_name`, not both.")


@dataclass
class DataArguments(DataSourceArguments):
    """Data and tokenization for masked-LM pretraining (run_mlm.py's names)."""

    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Folder written by tokenizer_training (or a Hub id)."},
    )
    expected_vocab_size: int | None = field(
        default=None,
        metadata={
            "help": "The vocabulary size this config was written for (its model shape, batch "
            "and time arithmetic assume it). The run stops with an error if the tokenizer in "
            "tokenizer_name_or_path has another size: e.g. a base config pointed at the demo's "
            "30k Shakespeare tokenizer. Unset: any size."
        },
    )
    validation_split_percentage: float = field(
        default=5.0,
        metadata={
            "help": "Without a validation split, hold out this percentage of the training data."
        },
    )
    streaming_validation_examples: int = field(
        default=1000,
        metadata={"help": "With streaming, hold out the first N examples for validation."},
    )
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per training example."})
    mlm_probability: float = field(
        default=0.15,
        metadata={
            "help": "Share of tokens selected for masking (BERT: 0.15). pretrain_mlm's families "
            "default to 0.3 (recipes/models/families.py training_defaults)."
        },
    )
    whole_word_mask: bool = field(
        default=False,
        metadata={
            "help": "Mask every piece of a selected word together (recipes/data/masking.py): words "
            "are selected with probability mlm_probability, and each becomes all mask tokens, "
            "all random tokens or stays as it is (80/10/10 per word)."
        },
    )
    line_by_line: bool = field(
        default=False,
        metadata={
            "help": "One example per non-empty line, padded (the tutorial's way). Default: "
            "concatenate and chunk into full blocks, which wastes no compute on padding."
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenization; unset: all cores."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train even if output_dir already holds a finished model."},
    )
    # The card's description of the data: a YAML's values go with its own data, so they are
    # dropped when train_files or dataset_name comes from the command line (config.py).
    language: str | None = field(
        default=None,
        metadata={"help": "ISO code(s) of the text's language (e.g. en, fa), for the model card."},
    )
    license: str | None = field(
        default="apache-2.0",
        metadata={
            "help": "The model's license on its card, an identifier the Hub knows (apache-2.0, "
            "mit, cc-by-4.0, ...): the training data's terms may ask for another one."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.tokenizer_name_or_path:
            raise UserError(
                "`tokenizer_name_or_path` is not set: train one with "
                "`python -m tokenizer_training.train_tokenizer --config "
                "tokenizer_training/configs/bytelevel-bpe.yaml` and point to its output_dir."
            )
        if not 0.0 < self.mlm_probability < 1.0:
            raise UserError(f"`mlm_probability` must be in (0, 1), got {self.mlm_probability}.")
        if self.max_seq_length < 8:
            raise UserError(f"`max_seq_length` must be at least 8, got {self.max_seq_length}.")
        if not 0.0 < self.validation_split_percentage < 50.0:
            raise UserError("`validation_split_percentage` must be in (0, 50).")


# Recipe defaults that differ from TrainingArguments' own. YAML and the command line override.
TRAINING_DEFAULTS = {
    "output_dir": "outputs/run",
    "eval_strategy": "steps",
    "eval_steps": 500,
    "logging_steps": 50,
    "save_steps": 500,
    "save_total_limit": 2,
    "learning_rate": 5e-4,
    "weight_decay": 0.01,
    "adam_beta2": 0.98,  # RoBERTa's value: steadier with large batches than 0.999
    "warmup_steps": 0.06,  # a float < 1 is a ratio of the total steps (RoBERTa: 6%)
    "lr_scheduler_type": "linear",
    # Our datasets hold only the columns the collator needs (`special_tokens_mask` included,
    # which the model's forward does not take), so Trainer must not drop "unused" ones.
    "remove_unused_columns": False,
    "include_num_input_tokens_seen": "non_padding",
    # Progress bars in a terminal; in a log file (stdout not a terminal) their carriage returns
    # and cursor moves are noise, so Trainer prints its log lines alone there (config.py).
    "disable_tqdm": "auto",
    "report_to": "none",
    # push_to_hub: one push at the end, with our model card (recipes/runs/finish.py finish_run). Trainer's
    # default, every_save, would push a card-less model at every save; `hub_strategy:
    # checkpoint` (or every_save, all_checkpoints) still asks for pushes along the way.
    "hub_strategy": "end",
    # bf16 mixed precision where the hardware runs it fast (a GPU with bf16, a CPU with AMX or
    # AVX512-BF16), fp32 elsewhere: recipes/runs/precision.py resolve_bf16. true/false force it.
    "bf16": "auto",
}


@dataclass
class ContinueArguments:
    help_section: ClassVar[str] = "model"

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Continue pretraining this checkpoint instead of starting from random "
            "weights: a local folder or a Hub id of a model of the recipe's families "
            f"(masked-LM recipe: {display_names(MLM_FAMILIES)}; BERT recipe: "
            f"{display_names(NSP_FAMILIES)}). Weights (safetensors only), config and, unless "
            "tokenizer_name_or_path is set, the tokenizer come from it; model-shape keys must "
            "match it (dropout keys may differ)."
        },
    )
    add_tokens_from: str | None = field(
        default=None,
        metadata={
            "help": "Extend the checkpoint's vocabulary with domain words: a tokenizer folder "
            "(tokenizer_training on the domain text; its whole-word tokens, most frequent "
            "first) or a text file of words, one per line. Words the tokenizer already has as "
            "one token are skipped; each new embedding starts as the mean of the pieces the "
            "old tokenizer split the word into."
        },
    )
    max_added_tokens: int = field(
        default=1000,
        metadata={"help": "At most this many tokens are added by add_tokens_from."},
    )

    def __post_init__(self):
        if self.add_tokens_from and not self.model_name_or_path:
            raise UserError(
                "`add_tokens_from` extends a checkpoint's vocabulary: set `model_name_or_path` "
                "(a model from scratch takes its vocabulary from tokenizer_name_or_path)."
            )
        if self.max_added_tokens < 1:
            raise UserError(f"`max_added_tokens` must be at least 1, got {self.max_added_tokens}.")


def model_type_field(families: list[str]):
    """A recipe's `model_type`: its families (recipes/models/families.py), the first the
    default, each described by its record."""
    return field(
        default=families[0],
        metadata={
            "help": f"Model family: {choices_help(families)}. The first is the default. Its "
            "config fields (hidden_size, ...) can then be set too. With model_name_or_path, "
            "the checkpoint's own.",
            "choices": families,
        },
    )


@dataclass
class ModelArguments(ContinueArguments):
    # a family another recipe trains: point to that recipe (recipes/config.py)
    choice_hints: ClassVar[dict] = recipe_hints()

    model_type: str = model_type_field(MLM_FAMILIES)
    sparse_mlm_head: bool = field(
        default=True,
        metadata={
            "help": "Run the LM head only at masked positions during training (same loss and "
            "gradients, a fraction of the work); the saved model is the stock *ForMaskedLM."
        },
    )
    attn_implementation: str = field(
        default="auto",
        metadata={
            "help": "Attention kernel. auto: flash_attention_2 on a CUDA GPU in bf16 where "
            "flash-attn is installed, else sdpa; the family's eager one where it has neither.",
            "choices": ["auto", "sdpa", "eager", "flash_attention_2"],
        },
    )


# Model-shape fields that, unset, are worked out by the recipe rather than left to the config
# class (recipes/models/families.py build_config).
SHAPE_DERIVED_UNLESS_SET = {
    "max_position_embeddings": "enough positions for max_seq_length (the family's rule)",
}


def model_config_arguments(
    config_class: type[PretrainedConfig], derived, extra_fields: tuple = (), own: dict | None = None
) -> type:
    """A dataclass with one optional field per model-shape field of `config_class`.

    Fields come from the config class itself (minus the generic PretrainedConfig ones and the
    ones we derive from the tokenizer), so a misspelt model key is an unknown key.
    `extra_fields` adds (name, type) pairs the config takes as keyword arguments only; `own`,
    the family's values where they differ from the class's. The class keeps `config_class`
    and `config_defaults` (the values a model gets unless set) for `--help`.
    """
    generic = set(PretrainedConfig().to_dict())
    # decoder-only knobs mean nothing for an encoder; `use_cache` would also collide with
    # TrainingArguments' own field of that name
    generic |= {"use_cache", "is_decoder", "add_cross_attention"}
    own = own or {}
    defaults = {name: own.get(name, value) for name, value in config_class().to_dict().items()}
    fields, config_defaults = [], {}
    for name, default in defaults.items():
        if name in generic or name in derived or default is None or name.startswith("_"):
            continue
        if type(default) not in (int, float, bool, str):
            continue
        unset = SHAPE_DERIVED_UNLESS_SET.get(name)
        if unset is None:
            config_defaults[name] = default
            whose = "the family's" if name in own else "the class's own"
            unset = f"{whose}, {default!r}"
        help_text = f"{config_class.__name__}.{name}; unset: {unset}."
        fields.append(
            (name, type(default) | None, field(default=None, metadata={"help": help_text}))
        )
    for name, kind in extra_fields:
        help_text = f"{config_class.__name__}(..., {name}=...) keyword"
        if name in own:
            config_defaults[name] = own[name]
            help_text += f"; unset: the family's, {own[name]!r}"
        help_text += "."
        fields.append((name, kind | None, field(default=None, metadata={"help": help_text})))
    namespace = {"config_class": config_class, "config_defaults": config_defaults}
    namespace["family_defaults"] = list(own)
    return dataclasses.make_dataclass(
        f"{config_class.__name__}Arguments", fields, namespace=namespace
    )


@cache
def shape_arguments(family: str) -> type:
    """The dataclass of `family`'s model-config fields (every field of its config class)."""
    spec = FAMILIES[family]
    fixed = {name: why for name, (_, why) in spec.fixed_config.items()}
    return model_config_arguments(
        spec.config_class, DERIVED | fixed, spec.extra_fields, spec.config_defaults
    )


@cache
def any_shape_arguments() -> type:
    """Every family's model-config fields: a checkpoint's family is known only once it is
    read, and whatever is set is checked against it then (checkpoints.load_pretrained)."""
    fields = {}
    for family in MLM_FAMILIES:
        for f in dataclasses.fields(shape_arguments(family)):
            fields.setdefault(f.name, (f.name, f.type, field(default=None, metadata=f.metadata)))
    namespace = {"config_class": None, "config_defaults": {}}  # the checkpoint's own
    return dataclasses.make_dataclass(
        "CheckpointShapeArguments", list(fields.values()), namespace=namespace
    )


@dataclass
class BertArguments(ContinueArguments):
    choice_hints: ClassVar[dict] = recipe_hints()

    model_type: str = model_type_field(NSP_FAMILIES)
    model_impl: str = field(
        default="transformers",
        metadata={
            "help": "'transformers': transformers.BertForPreTraining. 'scratch': the plain-PyTorch "
            "BERT in recipes/models/scratch_bert.py, same Trainer, checkpoints in transformers format.",
            "choices": ["transformers", "scratch"],
        },
    )
    short_seq_prob: float = field(
        default=0.1,
        metadata={
            "help": "Share of pairs that aim at a random shorter length, so the model also sees "
            "the short inputs fine-tuning gives it (BERT: 0.1, drawn per document there)."
        },
    )
    dupe_factor: int = field(
        default=1,
        metadata={
            "help": "Build the training pairs this many times, each with other random splits "
            "and random Bs (BERT: 10). Pairs are fixed once built: on a small corpus trained "
            "for many epochs, this keeps the model from seeing the very same pairs again."
        },
    )
    documents: str = field(
        default="auto",
        metadata={
            "help": "How rows become documents. 'rows': each row is one (text files: see "
            "text_sample_by; by default BERT's format, where a blank line or the end of a file "
            "ends a document). 'wikitext': rows are "
            "wikitext lines, grouped into articles at ` = Title = ` lines. 'auto': wikitext when "
            "dataset_name names wikitext, else rows.",
            "choices": ["auto", "rows", "wikitext"],
        },
    )
    validation_holdout: str = field(
        default="documents",
        metadata={
            "help": "Without validation data, what `validation_split_percentage` holds out. "
            "'documents': that share of the documents, whole (many documents, e.g. Wikipedia). "
            "'document_ends': the last sentences of every document, for a few long ones "
            "(books, plays): 5 percent of the demo's 42 plays, held out whole, is two plays, and every "
            "held-out random B comes from the one other play.",
            "choices": ["documents", "document_ends"],
        },
    )
    sparse_mlm_head: bool = field(
        default=True,
        metadata={
            "help": "Run the MLM head only at masked positions during training (same loss and "
            "gradients, a fraction of the work); the saved model is a stock BertForPreTraining."
        },
    )
    attn_implementation: str = field(
        default="sdpa",
        metadata={
            "help": "Attention kernel (model_impl: transformers; scratch always uses SDPA).",
            "choices": ["sdpa", "eager", "flash_attention_2"],
        },
    )

    def __post_init__(self):
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise UserError(f"`short_seq_prob` must be in [0, 1], got {self.short_seq_prob}.")
        if self.dupe_factor < 1:
            raise UserError(f"`dupe_factor` must be at least 1, got {self.dupe_factor}.")
        if self.model_impl == "scratch" and self.attn_implementation != "sdpa":
            raise UserError("`model_impl: scratch` always uses SDPA: drop `attn_implementation`.")
        if self.model_impl == "scratch" and self.model_name_or_path:
            raise UserError("continue a checkpoint with `model_impl: transformers`.")
        super().__post_init__()


@dataclass
class ClassificationDataArguments(DataSourceArguments):
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
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train even if output_dir holds a finished model; also forgets the runs a "
            "killed command finished (output_dir/_runs), which a rerun would otherwise skip."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.streaming:
            raise UserError("`streaming` is for pretraining corpora; fine-tuning data is loaded.")


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
            "help": f"The classifier's input, where the family's classifier offers a choice "
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
            "never contain keeps its place next to the words they do. Measured on an unseen "
            "task, 256 labels: +0.04 test accuracy on a CPU-pretrained checkpoint (README)."
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


# Fine-tuning defaults, where they differ from pretraining's (RoBERTa's GLUE settings: 6% warm-up,
# weight decay 0.1, beta2 0.98; a learning rate for small models, which take larger steps).
# Evaluation and saving follow `evaluations_per_run` (recipes/comparison.py), by steps.
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
            "and keep the best checkpoint (load_best_model_at_end); it is then tested once."
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


# `--help` (recipes/help.py): sections in the order shown, and the fields each takes from
# elsewhere: a recipe field named here leaves its dataclass's `help_section`; a TrainingArguments
# field is shown only if named here (`--help-all` shows all of them).
HELP_SECTIONS = {
    "data": ["short_seq_prob", "dupe_factor", "documents", "validation_holdout"],
    "model": [],
    "model shape": [],
    "masking": ["mlm_probability", "whole_word_mask"],
    "fine-tuning runs": [],
    "training": [
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_steps",
        "weight_decay",
        "adam_beta1",
        "adam_beta2",
        "max_grad_norm",
        "optim",
        "seed",
        "bf16",
        "use_cpu",
        "activation_checkpointing",
        "torch_compile",
        "dataloader_num_workers",
    ],
    "evaluation and logging": [
        "eval_strategy",
        "eval_steps",
        "per_device_eval_batch_size",
        "logging_steps",
        "report_to",
        "disable_tqdm",
    ],
    "outputs and the Hub": [
        "output_dir",
        "overwrite_output_dir",
        "save_steps",
        "save_total_limit",
        "resume_from_checkpoint",
        "language",
        "license",
        "push_to_hub",
        "hub_model_id",
        "hub_private_repo",
        "hub_strategy",
    ],
}
