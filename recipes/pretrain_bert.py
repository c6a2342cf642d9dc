"""Pretrain BERT from scratch, masked LM + next-sentence prediction, with Trainer.

    python -m recipes.pretrain_bert --config recipes/configs/bert-tiny-nsp.yaml [--field value ...]
    accelerate launch -m recipes.pretrain_bert --config recipes/configs/bert-base-nsp.yaml

recipes/pretrain_mlm.py with BERT's data: documents are split into sentences and cut into
`[CLS] A [SEP] B [SEP]` pairs, B the true continuation of A or a passage from another document
(recipes/data/nsp.py, the original create_pretraining_data.py's rules). The collator masks each
batch afresh. `model_impl: scratch` trains recipes/models/scratch_bert.py's plain-PyTorch BERT in place
of transformers' BertForPreTraining; both leave the same stock transformers checkpoint.
Every field is documented in `--help`.
"""

from transformers import Trainer, TrainingArguments

from recipes.arguments import TRAINING_DEFAULTS, BertArguments, DataArguments
from recipes.config import parse_config
from recipes.data.masking import ResumableMaskingCollator
from recipes.data.nsp import load_documents, nsp_pairs, padding_waste
from recipes.errors import exit_on_user_error
from recipes.models import scratch_bert
from recipes.models.families import NSP_FAMILIES
from recipes.models.fsdp import prepare_for_fsdp
from recipes.runs.finish import evaluate_before, finish_pretraining
from recipes.runs.metrics import compute_pretraining_metrics, pretraining_logits_for_metrics
from recipes.runs.revisions import revision_callbacks
from recipes.runs.start import record_run, start_run
from recipes.runs.starting_point import starting_defaults, starting_point
from recipes.runs.throughput import ThroughputReport, report_model
from recipes.shape_arguments import BertShapeArguments

PAD_TO_MULTIPLE_OF = 8  # tensor cores want sequence lengths in multiples of 8


# DataArguments' fields that NSP cannot take: refused by the parse, left out of --help.
REFUSED = {
    "streaming": "NSP draws random sentences from any document, so it needs the whole corpus at "
    "hand: drop `streaming` (pretrain_mlm streams)",
    "line_by_line": "NSP examples are sentence pairs: drop `line_by_line`",
    "streaming_validation_examples": "it holds out part of a stream, and NSP does not stream: "
    "`validation_split_percentage` or `validation_files` hold out here",
}


def parse_args(argv=None):
    return parse_config(
        [DataArguments, BertArguments, BertShapeArguments, TrainingArguments],
        argv,
        defaults=TRAINING_DEFAULTS | starting_defaults(argv, NSP_FAMILIES[0]),
        refused=REFUSED,
    )


def describe_pairs(pairs, training_args) -> dict:
    """Print how many pairs there are and what share of a batch is padding (pairs vary in
    length: document ends, short_seq_prob); return the padding shares, metrics of the run."""
    random_share = sum(pairs["train"]["next_sentence_label"]) / len(pairs["train"])
    print(
        f"NSP pairs: {len(pairs['train'])} train ({random_share:.1%} with a random B), "
        f"{len(pairs['validation'])} validation"
    )
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
    return padding


@exit_on_user_error
def main(argv=None) -> dict:
    data_args, bert_args, shape_args, training_args = parse_args(argv)

    # ---- Seed, output folder, Hub access (fail in seconds, not after hours) -------------
    resume_from = start_run(training_args, data_args.overwrite_output_dir)
    revisions = revision_callbacks(data_args, training_args)  # push_revisions, log-spaced saves

    # ---- Tokenizer (WordPiece: [CLS] [SEP] [PAD] [UNK] [MASK]) and model config, or a BERT
    # checkpoint (its vocabulary extended before any tokenizing). `model_impl: scratch`:
    # recipes/models/scratch_bert.py, which always uses SDPA; it normalizes its loss by
    # Trainer's num_items_in_batch, as the transformers path does.
    scratch = bert_args.model_impl == "scratch"
    start = starting_point(
        bert_args,
        data_args,
        training_args,
        shape_args,
        NSP_FAMILIES,
        attention=None if scratch else bert_args.attn_implementation,
        fresh_model=scratch_bert.BertForPreTraining if scratch else None,
    )
    tokenizer = start.tokenizer

    # ---- Data: documents -> sentences -> NSP pairs (cached; rank 0 first) ---------------
    # Validation documents are held out whole (load_raw_datasets splits rows, i.e. documents),
    # so no held-out pair shares a document with a training pair; or, with `validation_holdout:
    # document_ends`, the last sentences of every document are.
    with training_args.main_process_first(desc="building NSP pairs"):
        documents = load_documents(data_args, bert_args)
        pairs = nsp_pairs(documents, tokenizer, data_args, bert_args, training_args.seed)
    padding = describe_pairs(pairs, training_args)

    # ---- Model ------------------------------------------------------------------------------
    model = start.model()
    report_model(start.family, model, data_args.max_seq_length, training_args, start.attention)
    # tokens/s after a few steps, and the time to go; checkpoints as Hub revisions
    callbacks = [ThroughputReport(), *revisions]
    if scratch:
        callbacks.append(scratch_bert.SaveTransformersConfig())  # config.json in checkpoints
    else:  # under FSDP: one unit per BertLayer
        prepare_for_fsdp(start.family, model)

    # ---- Collator: 15% of tokens selected; of those 80% -> [MASK], 10% random, 10% kept ----
    # A DataCollatorForLanguageModeling whose masks are a function of (seed, batch), so a
    # resumed run masks as an unbroken one. It pads each batch to its longest pair;
    # token_type_ids and next_sentence_label pass through.
    collator = ResumableMaskingCollator(
        tokenizer,
        mlm_probability=data_args.mlm_probability,
        pad_to_multiple_of=PAD_TO_MULTIPLE_OF,
        seed=training_args.seed,
        whole_words=data_args.whole_word_mask,
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

    # ---- Every check passed: the settings, printed and recorded (output_dir's first write) ----
    record_run(training_args, data_args.overwrite_output_dir)

    # ---- Train (a killed run, started again, resumes from its last checkpoint) -------------
    if start.checkpoint:  # continued pretraining: the base's held-out numbers, to compare
        evaluate_before(trainer, resume_from)
    train_result = trainer.train(resume_from_checkpoint=resume_from)

    # ---- Evaluate, save, card, push (recipes/runs/finish.py, shared with pretrain_mlm) ------
    # eval_loss is MLM + NSP; perplexity comes from the MLM part alone (mlm_loss).
    held_out = documents["validation"].take(50)
    held_out = [ex.get("document") or "\n".join(ex["sentences"]) for ex in held_out]
    return finish_pretraining(
        trainer,
        train_result,
        base_model=start.checkpoint,
        family=start.family,
        data_args=data_args,
        held_out_texts=held_out,
        metrics=padding,
        mlm_loss_key="mlm_loss",
    )


if __name__ == "__main__":
    main()
