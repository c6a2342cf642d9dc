"""Pretrain a masked language model from scratch with Trainer: ModernBERT or RoBERTa.

    python -m recipes.pretrain_mlm --config recipes/configs/modernbert-tiny.yaml [--field value]
    python -m recipes.pretrain_mlm --config recipes/configs/roberta-tiny.yaml
    accelerate launch -m recipes.pretrain_mlm --config recipes/configs/modernbert-base.yaml
    torchrun --nproc_per_node 8 -m recipes.pretrain_mlm --config recipes/configs/roberta-base.yaml

`model_type` picks the family (recipes/models/families.py); everything else is the same pipeline.
`model_name_or_path` continues pretraining an existing checkpoint instead
(recipes/runs/starting_point.py).

Reads top to bottom: parse -> seed -> tokenizer -> data -> model -> collator -> Trainer ->
train -> evaluate -> save/push. Every field is documented in `--help`.
"""

from transformers import Trainer, TrainingArguments

from recipes.arguments import TRAINING_DEFAULTS, DataArguments, ModelArguments
from recipes.config import parse_config, peek
from recipes.data.masking import ResumableMaskingCollator
from recipes.data.packing import check_enough_data, tokenize_datasets
from recipes.data.stream_position import TrackedStream, track_stream_position
from recipes.data.text import load_raw_datasets
from recipes.errors import UserError, exit_on_user_error
from recipes.models.families import MLM_FAMILIES
from recipes.models.fsdp import prepare_for_fsdp
from recipes.runs.finish import evaluate_before, finish_pretraining
from recipes.runs.metrics import argmax_logits, compute_mlm_metrics
from recipes.runs.revisions import revision_callbacks
from recipes.runs.start import record_run, start_run
from recipes.runs.starting_point import starting_defaults, starting_point
from recipes.runs.throughput import ThroughputReport, report_model
from recipes.shape_arguments import checkpoint_shape_arguments, shape_arguments


def parse_args(argv=None):
    family = peek(argv, "model_type") or ModelArguments.model_type
    if peek(argv, "model_name_or_path"):  # its family is known once it is read, and checked then
        shapes = checkpoint_shape_arguments()
    else:  # an unknown family is reported by the full parse, against the field's choices
        shapes = shape_arguments(family if family in MLM_FAMILIES else ModelArguments.model_type)
    # Every parameter gets a gradient (no pooler in a *ForMaskedLM), so DDP need not walk
    # the autograd graph for unused ones at every step, as Trainer asks by default.
    defaults = TRAINING_DEFAULTS | {"ddp_find_unused_parameters": False}
    defaults |= starting_defaults(argv, family)
    return parse_config(
        [DataArguments, ModelArguments, shapes, TrainingArguments], argv, defaults=defaults
    )


@exit_on_user_error
def main(argv=None) -> dict:
    data_args, model_args, shape_args, training_args = parse_args(argv)

    # ---- Seed, output folder, Hub access (fail in seconds, not after hours) -------------
    resume_from = start_run(training_args, data_args.overwrite_output_dir)
    revisions = revision_callbacks(data_args, training_args)  # push_revisions, log-spaced saves
    if data_args.streaming and training_args.max_steps <= 0:
        raise UserError("`streaming: true` has no length to count epochs by: set `max_steps`.")

    # ---- Tokenizer and model config, or a checkpoint (checked before any tokenizing) ------
    start = starting_point(
        model_args,
        data_args,
        training_args,
        shape_args,
        MLM_FAMILIES,
        family=model_args.model_type,
        family_asked=peek(argv, "model_type") is not None,
        attention=model_args.attn_implementation,
    )
    tokenizer = start.tokenizer

    # ---- Data: load, hold out validation, tokenize + pack (cached; rank 0 first) --------
    # On several processes Trainer hands each rank its share: a Dataset through a distributed
    # sampler; a stream is read on rank 0, which sends every rank its batches (accelerate's
    # dispatch_batches). A stream split here with split_dataset_by_node would be split again
    # by accelerate: training would only ever see 1/world_size of it.
    with training_args.main_process_first(desc="tokenizing"):
        raw = load_raw_datasets(data_args)
        tokenized = tokenize_datasets(
            raw, tokenizer, data_args, num_proc=data_args.preprocessing_num_workers
        )
        check_enough_data(tokenized, raw, tokenizer, data_args)

    # ---- Model ------------------------------------------------------------------------------
    model = start.model()
    report_model(start.family, model, data_args.max_seq_length, training_args, start.attention)
    prepare_for_fsdp(start.family, model)  # under FSDP: one unit per encoder layer of the family

    # ---- Collator: 15% of tokens selected; of those 80% -> mask, 10% random, 10% kept ------
    # Masks are a function of (seed, batch), so a resumed run masks exactly as an unbroken one.
    # `whole_word_mask`: 15% of words, 80/10/10 per word (recipes/data/masking.py).
    pad_to = None  # packed blocks are all full
    if data_args.line_by_line:
        # A multiple of 8 suits tensor cores. A stream on several processes is read on rank 0,
        # which concatenates one batch per rank before sending each its part: equal shapes
        # needed, so pad to full length.
        streamed_ddp = data_args.streaming and training_args.world_size > 1
        pad_to = data_args.max_seq_length if streamed_ddp else 8
    collator = ResumableMaskingCollator(
        tokenizer,
        mlm_probability=data_args.mlm_probability,
        pad_to_multiple_of=pad_to,
        seed=training_args.seed,
        whole_words=data_args.whole_word_mask,
    )

    # ---- Trainer ------------------------------------------------------------------------
    train_dataset = tokenized["train"]
    if data_args.streaming:  # checkpoints record where in the stream training stood
        train_dataset = TrackedStream(train_dataset)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=tokenized["validation"],
        data_collator=collator,
        processing_class=tokenizer,  # saved and pushed with the model
        compute_metrics=compute_mlm_metrics,
        preprocess_logits_for_metrics=argmax_logits,
        # tokens/s after a few steps, and the time to go; checkpoints as Hub revisions
        callbacks=[ThroughputReport(), *revisions],
    )

    # ---- Every check passed: the settings, printed and recorded (output_dir's first write) ----
    record_run(training_args, data_args.overwrite_output_dir)

    # ---- Train (a killed run, started again, resumes from its last checkpoint) -------------
    if data_args.streaming:  # a resumed stream starts where it stood, instead of re-reading
        track_stream_position(trainer, resume_from)
    if start.checkpoint:  # continued pretraining: the base's held-out numbers, to compare
        evaluate_before(trainer, resume_from)
    train_result = trainer.train(resume_from_checkpoint=resume_from)

    # ---- Evaluate, save, card, push (recipes/runs/finish.py, shared with BERT) --------------
    held_out = [example["text"] for example in raw["validation"].take(50)]
    return finish_pretraining(
        trainer,
        train_result,
        base_model=start.checkpoint,
        family=start.family,
        data_args=data_args,
        held_out_texts=held_out,
    )


if __name__ == "__main__":
    main()
