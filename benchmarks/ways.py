"""How each benchmarked way builds what it trains: data, model, TrainingArguments, collator.

Shared by the throughput table (bench.py) and the time-to-accuracy race (race.py), so both
measure the same things. The recipe's ways go through the recipe's own code:
`recipes.pretrain_mlm.parse_args` for the settings, its `start_from` for the model (the
starting point main() builds, its sparse head and attention kernel included) and its
`masking_collator` for masking (padding multiple and whole-word masking as the recipe sets them).
The stock ways build a stock `RobertaForMaskedLM` (dense head) and stock `TrainingArguments`, as
the tutorial and run_mlm.py do; their config also comes from `build_config`, since the special
-token ids must come from the tokenizer whoever writes the config.
"""

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PrinterCallback, Trainer, TrainingArguments

from recipes.data.masking import ResumableMaskingCollator
from recipes.models.families import FAMILIES, build_config
from recipes.pretrain_mlm import masking_collator, start_from
from recipes.pretrain_mlm import parse_args as recipe_args

STOCK_FAMILY = "roberta"  # what the tutorial and run_mlm.py train


def sync(device: str):
    if device == "cuda":
        torch.cuda.synchronize()


# ---- Data: the tutorial's and run_mlm.py's preprocessing --------------------------------------


def tutorial_lines(batch, tokenizer, max_length: int):
    """The tutorial's LineByLineTextDataset: a non-empty line per example, padded to length."""
    lines = [t for t in batch["text"] if t and not t.isspace()]
    return tokenizer(
        lines,
        truncation=True,
        max_length=max_length,
        padding="max_length",
        return_special_tokens_mask=True,
    )


def run_mlm_tokenize(batch, tokenizer):
    return tokenizer(batch["text"], return_special_tokens_mask=True)


def run_mlm_group_texts(examples, block_size: int):
    """run_mlm.py's group_texts: concatenate every column, cut into blocks, drop the tail."""
    concatenated = {k: list(itertools.chain(*examples[k])) for k in examples}
    total = len(concatenated["input_ids"]) // block_size * block_size
    return {
        k: [t[i : i + block_size] for i in range(0, total, block_size)]
        for k, t in concatenated.items()
    }


def run_mlm_blocks(texts, tokenizer, block_size: int):
    """run_mlm.py's preprocessing (line_by_line off): tokenize, then group_texts."""
    return texts.map(
        run_mlm_tokenize, batched=True, remove_columns=["text"], fn_kwargs={"tokenizer": tokenizer}
    ).map(run_mlm_group_texts, batched=True, fn_kwargs={"block_size": block_size})


# ---- Models and settings ----------------------------------------------------------------------


def shape_overrides(args) -> dict:
    """The bench's model shape (the same for every way)."""
    return {
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.num_hidden_layers,
        "num_attention_heads": args.num_attention_heads,
        "intermediate_size": args.intermediate_size,
    }


def stock_model(tokenizer, args, **config_overrides) -> PreTrainedModel:
    """What the tutorial and run_mlm.py train: a stock RobertaForMaskedLM, dense LM head."""
    overrides = shape_overrides(args) | {"attn_implementation": "sdpa"} | config_overrides
    config = build_config(STOCK_FAMILY, tokenizer, args.max_seq_length, overrides)
    return FAMILIES[STOCK_FAMILY].model_class(config)


def stock_training_args(args, output_dir, max_steps: int, bf16: bool, **overrides):
    """TrainingArguments' own defaults for everything run_mlm.py's user does not set (learning
    rate 5e-5, no warm-up, linear decay, AdamW betas (0.9, 0.999), weight decay 0)."""
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=args.batch_size,
        max_steps=max_steps,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        report_to="none",
        seed=args.seed,
        bf16=bf16,
        use_cpu=bf16 and not torch.cuda.is_available(),  # Trainer's condition for CPU bf16
        **overrides,
    )


def recipe_argv(args, tok_dir: Path, bf16: bool) -> list[str]:
    """Command-line overrides the bench gives the recipe: its tokenizer, corpus, shape, batch,
    precision; nothing but training steps (no evaluation, checkpoints, logs, progress bar)."""
    argv = ["--train_files", *args.train_files, "--tokenizer_name_or_path", str(tok_dir)]
    argv += ["--max_seq_length", str(args.max_seq_length), "--seed", str(args.seed)]
    argv += ["--per_device_train_batch_size", str(args.batch_size)]
    for key, value in shape_overrides(args).items():
        argv += [f"--{key}", str(value)]
    argv += ["--eval_strategy", "no", "--save_strategy", "no", "--logging_strategy", "no"]
    argv += ["--disable_tqdm", "true", "--bf16", str(bf16).lower()]
    return argv


@dataclass
class RecipeWay:
    data_args: object
    model_args: object
    training_args: TrainingArguments
    model: torch.nn.Module
    collator: ResumableMaskingCollator


def recipe_way(argv: list[str], tokenizer) -> RecipeWay:
    """recipes/pretrain_mlm.py's settings, model and collator, built by its own functions
    (start_from, masking_collator), so the bench measures what the recipe trains."""
    data_args, model_args, shape_args, training_args = recipe_args(argv)
    start = start_from(argv, data_args, model_args, shape_args, training_args)
    collator = masking_collator(tokenizer, data_args, training_args)
    return RecipeWay(data_args, model_args, training_args, start.model(), collator)


def train_quietly(model, training_args, collator, dataset, tokenizer, *callbacks) -> Trainer:
    """Train with `callbacks` (a timer, a clock), without Trainer's final metrics printout."""
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer
