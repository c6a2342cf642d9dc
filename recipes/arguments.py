"""Every recipe's settings, typed, with help strings: one place to look.

Each entry script parses a list of these dataclasses plus transformers' TrainingArguments
(recipes/config.py `parse_config`: YAML, then the command line). Defaults that differ from
TrainingArguments' own are in TRAINING_DEFAULTS (fine-tuning's: FINETUNE_DEFAULTS in
recipes/finetune_arguments.py), and a family's own in its record (recipes/models/families.py
`training_defaults`). Model-shape fields: recipes/shape_arguments.py. `--help` groups the fields
by each dataclass's `help_section` (recipes/help.py HELP_SECTIONS moves some and picks the
TrainingArguments fields it shows).
"""

from dataclasses import dataclass, field
from typing import ClassVar

from recipes.data.minimal_pairs import load_minimal_pairs
from recipes.errors import UserError
from recipes.models.families import MLM_FAMILIES


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
class OutputFolderArguments:
    """What a training recipe may do to its output_dir (TrainingArguments' own
    overwrite_output_dir is gone in transformers 5)."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train even if output_dir already holds a finished model. Fine-tuning also "
            "forgets the runs a killed command finished (output_dir/_runs), which a rerun would "
            "otherwise skip."
        },
    )


@dataclass
class DataArguments(OutputFolderArguments, DataSourceArguments):
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
    minimal_pairs: str | None = field(
        default=None,
        metadata={
            "help": "A .jsonl file of minimal pairs (BLiMP's format: sentence_good, "
            "sentence_bad, optional UID/field groups): at the end of the run the model scores "
            "both sentences of each by pseudo-log-likelihood, and the share it prefers the good "
            "one (`minimal_pairs_accuracy`) goes in all_results.json and on the card."
        },
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

    push_revisions: bool = field(
        default=False,
        metadata={
            "help": "With push_to_hub: push the initial weights to the Hub branch `step0` and "
            "every saved checkpoint to `step<N>`, each loadable with "
            "from_pretrained(hub_model_id, revision='step<N>'); uploads run in the background."
        },
    )
    save_steps_log_spaced: bool = field(
        default=False,
        metadata={
            "help": "Also save at steps 1, 2, 4, 8, ... below save_steps (Pythia's early "
            "checkpoints: training changes fastest at the start), then every save_steps."
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
        if self.minimal_pairs:  # a bad line stops the run now, not after training
            load_minimal_pairs(self.minimal_pairs, "minimal_pairs")


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
    # AVX512-BF16), fp32 elsewhere: recipes/precision.py resolve_bf16. true/false force it.
    "bf16": "auto",
}


@dataclass
class PretrainingModelArguments:
    """What both pretraining recipes ask of the model: where it starts (from scratch, or a
    checkpoint to continue, its vocabulary extended), the sparse head and the attention kernel."""

    help_section: ClassVar[str] = "model"

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Continue pretraining this checkpoint instead of starting from random "
            "weights: a local folder or a Hub id of a RoBERTa, ModernBERT (masked-LM recipe) or "
            "BERT (BERT recipe) model. Weights (safetensors only), config and, unless "
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
    sparse_mlm_head: bool = field(
        default=True,
        metadata={
            "help": "Run the LM head only at masked positions during training (same loss and "
            "gradients, a fraction of the work); the saved model is the stock *ForMaskedLM "
            "(BERT: *ForPreTraining)."
        },
    )
    attn_implementation: str = field(
        default="auto",
        metadata={
            "help": "Attention kernel. auto: flash_attention_2 on a CUDA GPU in bf16 where "
            "flash-attn is installed, else sdpa (BERT's `model_impl: scratch` always uses sdpa).",
            "choices": ["auto", "sdpa", "eager", "flash_attention_2"],
        },
    )

    def __post_init__(self):
        if self.add_tokens_from and not self.model_name_or_path:
            raise UserError(
                "`add_tokens_from` extends a checkpoint's vocabulary: set `model_name_or_path` "
                "(a model from scratch takes its vocabulary from tokenizer_name_or_path)."
            )
        if self.max_added_tokens < 1:
            raise UserError(f"`max_added_tokens` must be at least 1, got {self.max_added_tokens}.")


@dataclass
class ModelArguments(PretrainingModelArguments):
    model_type: str = field(
        default="modernbert",
        metadata={
            "help": "Model family: 'modernbert', the default (pre-LayerNorm, GeGLU, rotary "
            "positions; docs/measurements.md compares it with the others) or 'roberta' "
            "(the tutorial's). "
            "Its config fields (hidden_size, ...) can then be set too. With "
            "model_name_or_path, the checkpoint's own.",
            "choices": MLM_FAMILIES,
        },
    )


@dataclass
class BertArguments(PretrainingModelArguments):
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

    def __post_init__(self):
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise UserError(f"`short_seq_prob` must be in [0, 1], got {self.short_seq_prob}.")
        if self.dupe_factor < 1:
            raise UserError(f"`dupe_factor` must be at least 1, got {self.dupe_factor}.")
        if self.model_impl == "scratch" and self.attn_implementation not in ("auto", "sdpa"):
            raise UserError("`model_impl: scratch` always uses SDPA: drop `attn_implementation`.")
        if self.model_impl == "scratch" and self.model_name_or_path:
            raise UserError("continue a checkpoint with `model_impl: transformers`.")
        super().__post_init__()
