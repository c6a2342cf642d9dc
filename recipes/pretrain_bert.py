"""Pretrain BERT from scratch, masked LM + next-sentence prediction, with Trainer.

    python -m recipes.pretrain_bert --config recipes/configs/bert-tiny-nsp.yaml [--field value ...]
    accelerate launch -m recipes.pretrain_bert --config recipes/configs/bert-base-nsp.yaml

recipes/pretrain_mlm.py with BERT's data: documents are split into sentences and cut into
`[CLS] A [SEP] B [SEP]` pairs, B the true continuation of A or a passage from another document
(recipes/nsp_data.py, the original create_pretraining_data.py's rules). The collator masks each
batch afresh. `model_impl: scratch` trains recipes/scratch_bert.py's plain-PyTorch BERT in place
of transformers' BertForPreTraining; both leave the same stock transformers checkpoint.
Every field is documented in `--help`.
"""

from dataclasses import dataclass, field

from transformers import BertConfig, Trainer, TrainingArguments

from recipes import scratch_bert
from recipes.config import (
    TRAINING_DEFAULTS,
    DataArguments,
    model_config_arguments,
    model_overrides,
    parse_config,
    peek,
    setting_origin,
)
from recipes.continued import (
    ContinueArguments,
    local_checkpoint,
    start_from_checkpoint,
)
from recipes.errors import UserError, exit_on_user_error
from recipes.families import (
    DERIVED,
    build_config,
    build_model,
    checkpoint_family,
    prepare_for_fsdp,
)
from recipes.masking import ResumableMaskingCollator
from recipes.metrics import (
    compute_pretraining_metrics,
    pretraining_logits_for_metrics,
)
from recipes.modeling import count_parameters, load_tokenizer
from recipes.nsp_data import load_documents, nsp_pairs, padding_waste
from recipes.outputs import start_run
from recipes.training import train_evaluate_finish

PAD_TO_MULTIPLE_OF = 8  # tensor cores want sequence lengths in multiples of 8


@dataclass
class BertArguments(ContinueArguments):
    model_impl: str = field(
        default="transformers",
        metadata={
            "help": "'transformers': transformers.BertForPreTraining. 'scratch': the plain-PyTorch "
            "BERT in recipes/scratch_bert.py, same Trainer, checkpoints in transformers format.",
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


BertShapeArguments = model_config_arguments(BertConfig, DERIVED)


def parse_args(argv=None):
    defaults = dict(TRAINING_DEFAULTS)
    checkpoint = peek(argv, "model_name_or_path")
    if checkpoint:
        defaults["tokenizer_name_or_path"] = checkpoint  # the checkpoint's own, unless set
    return parse_config(
        [DataArguments, BertArguments, BertShapeArguments, TrainingArguments],
        argv,
        defaults=defaults,
    )


@exit_on_user_error
def main(argv=None) -> dict:
    data_args, bert_args, shape_args, training_args = parse_args(argv)

    # ---- Seed, output folder, Hub access (fail in seconds, not after hours) -------------
    if data_args.streaming:
        raise UserError("NSP draws random sentences from any document: `streaming` cannot work.")
    if data_args.line_by_line:
        raise UserError("NSP examples are sentence pairs: drop `line_by_line`.")
    resume_from = start_run(training_args, data_args.overwrite_output_dir)

    # ---- Tokenizer: WordPiece with [CLS] [SEP] [PAD] [UNK] [MASK] ------------------------
    # or a BERT checkpoint's (its vocabulary extended before any tokenizing)
    tokenizer_path, start = data_args.tokenizer_name_or_path, bert_args.model_name_or_path
    if start:
        folder = local_checkpoint(start)  # a Hub id is downloaded: safetensors only
        checkpoint_family(folder, ["bert"])
        tokenizer_path = folder if tokenizer_path == start else tokenizer_path
    tokenizer = load_tokenizer(
        tokenizer_path,
        data_args.max_seq_length,
        data_args.expected_vocab_size,
        setting_origin(training_args, "expected_vocab_size"),
    )
    overrides = model_overrides(shape_args)
    if bert_args.model_impl == "transformers":
        overrides["attn_implementation"] = bert_args.attn_implementation
    if start:
        _, model = start_from_checkpoint(
            bert_args,
            folder,
            tokenizer,
            ["bert"],
            overrides,
            data_args.max_seq_length,
            bert_args.sparse_mlm_head,
        )

    # ---- Data: documents -> sentences -> NSP pairs (cached; rank 0 first) ---------------
    # Validation documents are held out whole (load_raw_datasets splits rows, i.e. documents),
    # so no held-out pair shares a document with a training pair; or, with `validation_holdout:
    # document_ends`, the last sentences of every document are.
    with training_args.main_process_first(desc="building NSP pairs"):
        documents = load_documents(data_args, bert_args)
        pairs = nsp_pairs(documents, tokenizer, data_args, bert_args, training_args.seed)
    random_share = sum(pairs["train"]["next_sentence_label"]) / len(pairs["train"])
    print(
        f"NSP pairs: {len(pairs['train'])} train ({random_share:.1%} with a random B), "
        f"{len(pairs['validation'])} validation"
    )
    # Pairs vary in length (document ends, short_seq_prob), so batches carry some padding.
    padding = {
        f"{split}_padding_fraction": padding_waste(
            pairs[name], batch_size, seed=seed, pad_to_multiple_of=PAD_TO_MULTIPLE_OF
        )
        for split, name, batch_size, seed in [
            ("train", "train", training_args.per_device_train_batch_size, training_args.seed),
            ("eval", "validation", training_args.per_device_eval_batch_size, None),  # in order
        ]
    }
    print(f"padding: {padding['train_padding_fraction']:.1%} of train token slots per batch")

    # ---- Model: config derived from the tokenizer (or the checkpoint, loaded above) -------
    callbacks = []
    if start:
        pass  # loaded with the tokenizer, above
    elif bert_args.model_impl == "scratch":
        config = build_config("bert", tokenizer, data_args.max_seq_length, overrides)
        # It normalizes its loss by Trainer's num_items_in_batch, as the transformers path does.
        model = scratch_bert.BertForPreTraining(config, sparse_mlm_head=bert_args.sparse_mlm_head)
        callbacks.append(scratch_bert.SaveTransformersConfig())  # config.json in checkpoints
    else:
        config = build_config("bert", tokenizer, data_args.max_seq_length, overrides)
        model = build_model("bert", config, bert_args.sparse_mlm_head)
    print(f"BertForPreTraining ({bert_args.model_impl}): {count_parameters(model) / 1e6:.1f}M")
    if bert_args.model_impl != "scratch":  # under FSDP: one unit per BertLayer
        prepare_for_fsdp("bert", model)

    # ---- Collator: 15% of tokens selected; of those 80% -> [MASK], 10% random, 10% kept ----
    # A DataCollatorForLanguageModeling whose masks are a function of (seed, batch), so a
    # resumed run masks as an unbroken one. It pads each batch to its longest pair;
    # token_type_ids and next_sentence_label pass through.
    collator = ResumableMaskingCollator(
        tokenizer,
        mlm_probability=data_args.mlm_probability,
        pad_to_multiple_of=PAD_TO_MULTIPLE_OF,
        seed=training_args.seed,
        whole_words=bert_args.whole_word_mask,
    )

    # ---- Trainer ------------------------------------------------------------------------
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=pairs["train"],
        eval_dataset=pairs["validation"],
        data_collator=collator,
        processing_class=tokenizer,  # saved and pushed with the model
        compute_metrics=compute_pretraining_metrics,
        preprocess_logits_for_metrics=pretraining_logits_for_metrics,
        callbacks=callbacks,
    )

    # ---- Train, evaluate, save, card, push (recipes/training.py, shared with pretrain_mlm) ----
    # eval_loss is MLM + NSP; perplexity comes from the MLM part alone (mlm_loss).
    held_out = documents["validation"].take(50)
    held_out = [ex.get("document") or "\n".join(ex["sentences"]) for ex in held_out]
    return train_evaluate_finish(
        trainer,
        resume_from=resume_from,
        base_model=start,
        family="bert",
        data_args=data_args,
        held_out_texts=held_out,
        metrics=padding,
        mlm_loss_key="mlm_loss",
    )


if __name__ == "__main__":
    main()
