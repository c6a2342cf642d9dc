"""`make bench-gpu`: base-size speed on the device at hand, in one call of about 6 minutes.

    make bench-gpu                         # = python -m benchmarks.gpu (a GPU: base shapes)
    python -m benchmarks.gpu --smoke       # any CPU, tiny shapes, seconds (tests/e2e/test_bench_gpu.py)

For ModernBERT and RoBERTa at their base shapes (recipes/configs/<family>-base.yaml), at 128, 512
and 1024 tokens a sequence, two ways train for `--seconds` of time budget each (the clock of
`--time_budget`, recipes/runs/budget.py, so every cell trains for the same time):

    recipe   recipes/pretrain_mlm.py's model and collator, built by its own functions
             (benchmarks/ways.py): the LM head at masked positions only, its masking rate
    run_mlm  run_mlm.py's: the family's stock *ForMaskedLM (dense head), the stock collator (15%)

Each cell reports tokens/s over the steps after the first `--skip` (kernel choices, allocations),
peak memory, and MFU: the model FLOPs those steps need (bench.py `training_flops`: the recipe's
head at its masked tokens, the dense head at every position) over the device's dense bf16 peak
(report.py GPU_BF16_PEAK_TFLOPS). Both ways train on the same full blocks of
tests/helpers/fixtures/corpus (speed does not depend on the text; nothing to download), with a
byte-level BPE tokenizer trained on it and filled up to `--vocab_size` entries, the base configs'
50k, so the LM head costs what it costs there. Results: `--out` (JSON) and a table on stdout.
"""

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import datasets
import torch
from transformers import DataCollatorForLanguageModeling, TrainerCallback, set_seed

from benchmarks.bench import BatchCounter, training_flops
from benchmarks.report import describe_machine
from benchmarks.ways import recipe_way, run_mlm_blocks, stock_training_args, sync, train_quietly
from recipes.data.tokenizer import load_tokenizer
from recipes.models.families import FAMILIES, MLM_FAMILIES
from recipes.precision import resolve_bf16
from recipes.runs.budget import TimeBudget
from tokenizer_training.train_tokenizer import main as train_tokenizer

REPO = Path(__file__).resolve().parent.parent
CORPUS = sorted(str(p) for p in (REPO / "tests/helpers/fixtures/corpus").glob("*.txt"))
# the masked-LM families that ship a base-size config (recipes/configs/<family>-base.yaml)
FAMILY_NAMES = [f for f in MLM_FAMILIES if (REPO / f"recipes/configs/{f}-base.yaml").is_file()]
WAYS = ("recipe", "run_mlm")
TOKENS_PER_STEP = 16_384  # 128 x 128, 32 x 512, 16 x 1024: one step's work the same at each length
# --smoke: the tiny configs at a tiny shape, two lengths, a second a cell
SMOKE_SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
SMOKE_SHAPE |= {"intermediate_size": 64}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="Tiny shapes on any device, seconds.")
    p.add_argument("--seconds", type=float, default=20.0, help="Time budget of each cell.")
    p.add_argument("--skip", type=int, default=3, help="Untimed steps at the start of a cell.")
    p.add_argument("--seq", default="128,512,1024", help="Sequence lengths.")
    p.add_argument("--families", default=",".join(FAMILY_NAMES))
    p.add_argument("--vocab_size", type=int, default=50_000, help="Tokenizer entries.")
    p.add_argument("--work_dir", default="outputs/bench-gpu")
    p.add_argument("--out", default="outputs/bench-gpu/results.json")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.smoke:
        args.seconds, args.skip, args.seq, args.vocab_size = 1.0, 1, "32,64", 0
    args.seq = [int(s) for s in args.seq.split(",")]
    args.families = args.families.split(",")
    return args


def build_tokenizer(args) -> tuple[Path, object]:
    """A byte-level BPE trained on the fixture corpus, filled up to `vocab_size` entries with
    tokens no text contains (0: as trained)."""
    tok_dir = Path(args.work_dir) / "tokenizer"
    config = REPO / "tokenizer_training/configs/bytelevel-bpe.yaml"
    train_tokenizer(
        ["--config", str(config), "--train_files", *CORPUS, "--output_dir", str(tok_dir)]
    )
    tokenizer = load_tokenizer(str(tok_dir), max(args.seq))
    if len(tokenizer) < args.vocab_size:
        tokenizer.add_tokens([f"<fill{i}>" for i in range(args.vocab_size - len(tokenizer))])
        tokenizer.save_pretrained(tok_dir)
    return tok_dir, tokenizer


class CellTimer(TrainerCallback):
    """Seconds from the end of step `skip` to the step where the budget stopped training
    (called after the TimeBudget, which decides it)."""

    def __init__(self, skip: int, counter: BatchCounter, device: str):
        self.skip, self.counter, self.device = skip, counter, device
        self.start = self.seconds = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.skip:
            sync(self.device)
            self.counter.reset()
            self.start = time.perf_counter()
        elif control.should_training_stop and self.start is not None:
            sync(self.device)
            self.seconds = time.perf_counter() - self.start


def build(way, family, seq, args, tok_dir, tokenizer, bf16):
    """(model, TrainingArguments, collator, sparse head?) of one cell."""
    set_seed(args.seed)
    out = Path(args.work_dir) / f"{family}-{seq}-{way}"
    batch = max(1, TOKENS_PER_STEP // seq) if not args.smoke else 4
    config = FAMILIES[family].tiny_config if args.smoke else f"recipes/configs/{family}-base.yaml"
    shape = [f"--{k}={v}" for k, v in SMOKE_SHAPE.items()] if args.smoke else []
    argv = ["--config", str(REPO / config), "--train_files", *CORPUS]
    argv += ["--tokenizer_name_or_path", str(tok_dir), "--max_seq_length", str(seq)]
    argv += ["--expected_vocab_size", str(len(tokenizer)), "--output_dir", str(out)]
    argv += ["--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps", "1"]
    argv += ["--time_budget", str(args.seconds), "--warmup_steps", "0.06"]
    argv += ["--lr_scheduler_type", "linear", "--bf16", str(bf16).lower(), "--seed", str(args.seed)]
    argv += ["--eval_strategy", "no", "--save_strategy", "no", "--logging_strategy", "no"]
    argv += ["--disable_tqdm", "true", "--dataloader_num_workers", "0", *shape]
    recipe = recipe_way(argv, tokenizer)
    if way == "recipe":
        budget = TimeBudget.from_args(recipe.training_args)
        sparse = recipe.model_args.sparse_mlm_head
        return recipe.model, recipe.training_args, recipe.collator, sparse, budget
    # run_mlm.py: AutoModelForMaskedLM.from_config of the same config (its saved form: the
    # dense head), transformers' default kernel, stock everything else
    config = copy.deepcopy(recipe.model.config)
    model = FAMILIES[family].model_class._from_config(config, attn_implementation="sdpa")
    settings = argparse.Namespace(batch_size=batch, seed=args.seed)
    training_args = stock_training_args(settings, out, 1, bf16)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    return (
        model,
        training_args,
        collator,
        False,
        TimeBudget.taking_over(training_args, args.seconds),
    )


def run_cell(way, family, seq, args, tok_dir, tokenizer, blocks, bf16, device, peak) -> dict:
    model, training_args, collator, sparse, budget = build(
        way, family, seq, args, tok_dir, tokenizer, bf16
    )
    counter = BatchCounter(tokenizer.pad_token_id)
    model.register_forward_pre_hook(counter, with_kwargs=True)
    timer = CellTimer(args.skip, counter, device)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    train_quietly(model, training_args, collator, blocks, tokenizer, budget, timer)
    cell = {"family": family, "seq": seq, "way": way, "lr_at_end": budget.lr_at_stop}
    cell["batch"] = training_args.per_device_train_batch_size
    cell["budget_spent_s"] = budget.spent
    if timer.seconds is None:  # the budget ended before the timed steps began
        return cell | {"tokens_per_s": None, "mfu": None, "peak_memory_gb": None}
    n, c = counter.totals(), model.config
    shape = {"hidden": c.hidden_size, "ffn": c.intermediate_size, "vocab": c.vocab_size}
    shape |= {"layers": c.num_hidden_layers, "glu": FAMILIES[family].gated_mlp}
    predictions = n["masked_tokens"] if sparse else n["positions"]
    flops = training_flops(shape, n["positions"], n["attention_pairs"], predictions)
    return cell | {
        "steps_timed": n["batches"],
        "tokens_per_s": n["positions"] / timer.seconds,
        "model_tflops_per_s": flops / timer.seconds / 1e12,
        "mfu": flops / timer.seconds / (peak * 1e12) if peak else None,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16, reason = resolve_bf16(use_cpu=False, fp16=False)
    machine = describe_machine(device)
    peak = machine.get("gpu_bf16_spec_tflops")
    print(f"{machine.get('gpu') or machine['cpu']}, {'bf16' if bf16 else 'fp32'} ({reason})")
    datasets.disable_progress_bars()
    tok_dir, tokenizer = build_tokenizer(args)
    texts = datasets.load_dataset("text", data_files=CORPUS, split="train")
    cells = []
    for seq in args.seq:
        blocks = run_mlm_blocks(texts, tokenizer, seq)
        for family in args.families:
            for way in WAYS:
                cell = run_cell(
                    way, family, seq, args, tok_dir, tokenizer, blocks, bf16, device, peak
                )
                cells.append(cell)
                print(row(cell), flush=True)
    command = " ".join(["python -m benchmarks.gpu", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, "machine": machine, "bf16": bf16, "cells": cells}
    report["settings"] = vars(args) | {"tokens_per_step": TOKENS_PER_STEP, "vocab": len(tokenizer)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print("\n".join([f"{command} ({machine.get('gpu') or machine['cpu']}):", *map(row, cells)]))
    print(f"written: {args.out}")
    return report


def row(cell: dict) -> str:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    return (
        f"{cell['family']:>10} {cell['seq']:>5} {cell['way']:>8}: "
        f"{fmt(cell['tokens_per_s'], ',.0f')} tokens/s, MFU {fmt(cell['mfu'], '.1%')}, "
        f"peak memory {fmt(cell['peak_memory_gb'], '.1f')} GB, batch {cell['batch']}, "
        f"lr at the end {fmt(cell['lr_at_end'], '.2g')}"
    )


if __name__ == "__main__":
    main()
