"""`make bench`: the throughput of four ways to pretrain the same-shaped model, then a
time-to-accuracy race (benchmarks/race.py).

    make bench                                  # = python -m benchmarks.bench, ~30 min on 2 quiet cores
    python -m benchmarks.bench --quick          # 5 timed steps per way, a 10 s race: a smoke run
    python -m benchmarks.bench --steps 40 --repeats 5 --ways a,b,c,c-workers,d --race_seconds 0

One process, one corpus (Shakespeare, `make data`), one model shape (hidden 256, 4 layers,
4 heads, FFN 1024, a 30k byte-level BPE vocabulary trained here, 128 tokens, batch 16):

    a  the tutorial's way: one line = one example, padded to 128, stock RobertaForMaskedLM
    b  run_mlm.py's way: concatenate and chunk into full blocks, stock RobertaForMaskedLM
    c  recipes/pretrain_mlm.py with its defaults: packed blocks, LM head at masked positions only
    d  c with `model_type: modernbert` (GeGLU FFN, every layer global as modernbert-tiny.yaml)
    c-workers  (optional) c with dataloader_num_workers=1

Every model is built by recipes/models/families.py (benchmarks/ways.py), as the recipes build them.

Each run builds a fresh model and Trainer, trains `warmup + steps` steps and times the last
`steps` (from the end of the warm-up steps to the end of the last, data loading included); the
ways take turns (a b c a b c ...) so drift on the machine hits all alike; medians are reported.
All ways train in one precision: bf16 where the recipes' `bf16: auto` picks it (a GPU with
bf16, a CPU with AMX or AVX512-BF16), else fp32. On a GPU model FLOP/s are also compared with
its data-sheet peak. Writes results.md, results.json, throughput.png and time_to_accuracy.png to --out_dir; benchmarks/README.md
says what each column means. Timings taken on a shared machine are noise.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import datasets
import torch
from transformers import (
    DataCollatorForLanguageModeling,
    TrainerCallback,
    set_seed,
)

from benchmarks.race import run_race
from benchmarks.report import describe_machine, write_report
from benchmarks.ways import (
    recipe_argv,
    recipe_way,
    run_mlm_group_texts,
    run_mlm_tokenize,
    stock_model,
    stock_training_args,
    sync,
    train_quietly,
    tutorial_lines,
)
from recipes.arguments import DataArguments
from recipes.data.packing import tokenize_datasets
from recipes.data.text import load_raw_datasets
from recipes.data.tokenizer import load_tokenizer
from recipes.models.families import FAMILIES
from recipes.precision import resolve_bf16
from recipes.pretrain_mlm import parse_args as recipe_args
from tokenizer_training.train_tokenizer import main as train_tokenizer

REPO = Path(__file__).resolve().parent.parent
WAYS = {
    "a": "tutorial: a line per example, padded to max length, dense LM head",
    "b": "run_mlm.py: concatenate and chunk, dense LM head",
    "c": "this recipe's defaults: packed, LM head at masked tokens only",
    "d": "c with model_type modernbert (GeGLU FFN, rotary positions)",
    "c-workers": "c with dataloader_num_workers=1",
}
# The recipe's ways: recipes/pretrain_mlm.py's defaults, plus these settings
RECIPE_WAYS = {
    "c": [],
    # ModernBERT's default puts a 128-token sliding window in 2 of every 3 layers: on 128-token
    # blocks that saves SDPA nothing, so every layer is global, as in modernbert-tiny.yaml.
    "d": ["--model_type", "modernbert", "--global_attn_every_n_layers", "1"],
    "c-workers": ["--dataloader_num_workers", "1"],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train_files", nargs="+", default=["data/shakespeare/*.txt"])
    p.add_argument("--work_dir", default="outputs/bench", help="Tokenizer and Trainer scratch.")
    p.add_argument(
        "--out_dir",
        default="benchmarks",
        help="Where the results go. A run of one part (--ways none, or --race_seconds 0) keeps "
        "the other part of the results.json already there.",
    )
    p.add_argument("--steps", type=int, default=20, help="Timed optimizer steps per run.")
    p.add_argument("--warmup", type=int, default=3, help="Untimed steps before them.")
    p.add_argument("--repeats", type=int, default=3, help="Runs per way; medians reported.")
    p.add_argument(
        "--quick",
        action="store_true",
        help="--steps 5 --warmup 2 --repeats 1 --race_seconds 10 --probe_steps 2.",
    )
    p.add_argument(
        "--ways",
        default="a,b,c,d",
        help=f"Throughput ways, comma-separated, of {', '.join(WAYS)}; 'none' skips the table.",
    )
    p.add_argument(
        "--race_seconds",
        type=float,
        default=300,
        help="Training seconds per way in the time-to-accuracy race (0 skips the race).",
    )
    p.add_argument(
        "--race_eval_every",
        type=float,
        default=30,
        help="Seconds between the race's held-out evaluations after its first minute.",
    )
    p.add_argument(
        "--race_eval_every_early",
        type=float,
        default=10,
        help="Seconds between them in the first minute, where the curves leave the plateau.",
    )
    p.add_argument(
        "--race_eval_blocks",
        type=int,
        default=256,
        help="Held-out blocks the race evaluates on, the first of the recipe's hold-out (0: all).",
    )
    p.add_argument(
        "--probe_steps",
        type=int,
        default=8,
        help="Timed steps of the probe that sizes each race way's schedule to the budget.",
    )
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="auto: the recipes' `bf16: auto`: bf16 on a GPU that supports it or a CPU with "
        "AMX or AVX512-BF16, else fp32 (a CPU without them runs bf16 matmuls ~100x slower).",
    )
    p.add_argument("--vocab_size", type=int, default=30_000, help="Tokenizer vocabulary.")
    p.add_argument("--hidden_size", type=int, default=256)
    p.add_argument("--num_hidden_layers", type=int, default=4)
    p.add_argument("--num_attention_heads", type=int, default=4)
    p.add_argument("--intermediate_size", type=int, default=1024)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--peak_seconds", type=float, default=0.5, help="Time per matrix size for the peak."
    )
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.repeats = 5, 2, 1
        args.race_seconds, args.probe_steps = 10, 2
    args.ways = [] if args.ways == "none" else args.ways.split(",")
    if unknown := set(args.ways) - set(WAYS):
        p.error(f"unknown ways {sorted(unknown)}; choose from {', '.join(WAYS)}")
    if min(args.steps, args.warmup, args.repeats, args.probe_steps) < 1:
        p.error("--steps, --warmup, --repeats and --probe_steps must be >= 1")
    if args.race_seconds < 0:
        p.error("--race_seconds must be >= 0")
    if min(args.race_eval_every, args.race_eval_every_early) <= 0:
        p.error("--race_eval_every and --race_eval_every_early must be > 0")
    return args


# ---- Model FLOPs ----------------------------------------------------------------------------


def training_flops(shape: dict, tokens, attention_pairs, predictions) -> float:
    """Matmul FLOPs of forward + backward over `tokens` positions, of which `predictions` go
    through the LM head; `attention_pairs` is the number of (query, key) pairs per layer.
    `shape["glu"]`: ModernBERT's GeGLU FFN (Wi projects to 2f, Wo back: 3hf MACs, not 2hf).

    Forward multiply-accumulates (MACs), at the bench's shape (h=256, f=1024, V=30,000):
      per token and layer: Q, K, V and output projections 4h^2, FFN 2hf     786,432
      per (query, key) pair and layer: scores q.k and probs x v, 2h              512
        (a full 128-token sequence: 128 x 512 = 65,536 more per token)
      per predicted token: LM head dense h^2 + decoder hV                  7,745,536
    FLOPs are 2 per MAC and x3 for training: the backward pass computes the gradients of both
    the inputs and the weights of every matmul, twice the forward's work.
    One step of c (16 x 128 packed tokens, ~290 of them masked: 15% of the non-special ones):
      4 x (786,432 + 65,536) x 2,048 = 6.98 G MACs of encoder, 290 x 7.75 M = 2.25 G of head,
      x 2 x 3 = 55.4 GFLOP. The stock dense head predicts all 2,048 positions: 15.9 G MACs of
      head, 137 GFLOP per step.
    ModernBERT (d): GeGLU FFN 3hf = 786,432 per token and layer (RoBERTa's 2hf: 524,288), so
      4 x (1,048,576 + 65,536) x 2,048 = 9.13 G MACs of encoder; its head is RoBERTa's (dense
      h^2, GELU, LayerNorm, decoder hV): 2.25 G; x 6 = 68.3 GFLOP per step.
    Not counted: embeddings, layer norms, softmax, GELU, dropout, biases, rotary embeddings,
    the loss and the optimizer (elementwise work, a few % of the FLOPs).
    """
    h, f, v, layers = shape["hidden"], shape["ffn"], shape["vocab"], shape["layers"]
    ffn = (3 if shape.get("glu") else 2) * h * f
    encoder = layers * (tokens * (4 * h * h + ffn) + attention_pairs * 2 * h)
    head = predictions * (h * h + h * v)
    return 6.0 * (encoder + head)


class BatchCounter:
    """Forward pre-hook: what the training batches hold, summed on the device (no per-step
    sync). Real tokens are attention_mask == 1 (or not padding); predictions are labels."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id
        self.reset()

    def reset(self):
        self.sums, self.shapes = [], []

    def __call__(self, module, args, kwargs):
        ids, labels, mask = kwargs["input_ids"], kwargs["labels"], kwargs.get("attention_mask")
        real = mask.bool() if mask is not None else ids != self.pad_id
        lengths = real.sum(dim=1, dtype=torch.float64)
        masked = (labels != -100).sum(dtype=torch.float64)
        self.sums.append(torch.stack([lengths.sum(), masked, (lengths**2).sum()]))
        self.shapes.append(tuple(ids.shape))

    def totals(self) -> dict:
        real, masked, pairs = torch.stack(self.sums).sum(0).tolist()
        return {
            "batches": len(self.shapes),
            "real_tokens": real,
            "masked_tokens": masked,
            "real_attention_pairs": pairs,  # sum over sequences of real_length^2
            "positions": sum(b * s for b, s in self.shapes),
            "attention_pairs": sum(b * s * s for b, s in self.shapes),
        }


class StepTimer(TrainerCallback):
    """Wall time from the end of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int, counter: BatchCounter, device: str):
        self.warmup, self.counter, self.device = warmup, counter, device
        self.start = self.seconds = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in (self.warmup, state.max_steps):
            sync(self.device)
            if state.global_step == self.warmup:
                self.counter.reset()
                self.start = time.perf_counter()
            else:
                self.seconds = time.perf_counter() - self.start


# ---- Peak -----------------------------------------------------------------------------------


def matmul_peak(device: str, dtype: torch.dtype, seconds: float = 0.5) -> dict:
    """Best FLOP/s of torch.matmul on n x n matrices, n doubling while one product is quick
    (a CPU without native bf16 multiplies bf16 at well under 1 GFLOP/s: stop early there)."""
    best = {"flops": 0.0, "n": 0}
    n, n_max = 256, 8192 if device == "cuda" else 4096
    reps = 10 if device == "cuda" else 1
    while n <= n_max:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b  # warm-up: thread pools, cuBLAS handles
        sync(device)
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds:
            for _ in range(reps):
                a @ b
            sync(device)
            calls += reps
        elapsed = time.perf_counter() - start
        rate = 2 * n**3 * calls / elapsed
        if rate > best["flops"]:
            best = {"flops": rate, "n": n}
        if elapsed / calls > seconds:
            break
        n *= 2
    return best


# ---- Data: each way's preprocessing ---------------------------------------------------------


@contextlib.contextmanager
def datasets_quiet_and_uncached():
    """Every map really runs (it is what we time), without progress bars; the caller's
    settings come back after."""
    caching, bars = datasets.is_caching_enabled(), datasets.is_progress_bar_enabled()
    datasets.disable_caching()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if caching:
            datasets.enable_caching()
        if bars:
            datasets.enable_progress_bars()


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def preprocess(args, tokenizer, data_args) -> tuple[dict, dict]:
    """Each way's training set, timed with the cache off, and the raw `tokenizers` rate on the
    recipe's own texts (Shakespeare's paragraphs). Returns (timings, datasets)."""
    lines = load_raw_datasets(
        DataArguments(
            train_files=args.train_files, tokenizer_name_or_path="-", text_sample_by="line"
        )
    )["train"]
    paragraphs = load_raw_datasets(data_args)["train"]  # the recipe's loading
    backend = tokenizer.backend_tokenizer
    texts = paragraphs["text"]

    def n_tokens(batch):
        return sum(len(e.ids) for e in backend.encode_batch_fast(batch))

    tokens = {
        "raw": n_tokens(texts),
        "a": n_tokens([t for t in lines["text"] if t and not t.isspace()]),
        "b": n_tokens(lines["text"]),
    }
    tokens["c"] = tokens["raw"]
    map_kwargs = dict(batched=True, remove_columns=["text"])
    steps = {
        "raw encode_batch": lambda: backend.encode_batch(texts, add_special_tokens=True),
        "raw encode_batch_fast": lambda: backend.encode_batch_fast(texts),
        "c": lambda: tokenize_datasets(
            {"train": paragraphs}, tokenizer, data_args, data_args.preprocessing_num_workers
        )["train"],
        "a": lambda: lines.map(
            tutorial_lines,
            fn_kwargs={"tokenizer": tokenizer, "max_length": args.max_seq_length},
            **map_kwargs,
        ),
        "b": lambda: lines.map(
            run_mlm_tokenize, fn_kwargs={"tokenizer": tokenizer}, **map_kwargs
        ).map(run_mlm_group_texts, batched=True, fn_kwargs={"block_size": args.max_seq_length}),
    }
    times, built = {k: [] for k in steps}, {}
    with datasets_quiet_and_uncached():
        for _ in range(args.repeats):
            for name, step in steps.items():
                backend.no_truncation()  # a's padding call leaves both set on the backend
                backend.no_padding()
                seconds, built[name] = _timed(step)
                times[name].append(seconds)
    timings = {}
    for name, ts in times.items():
        count = tokens["raw" if name.startswith("raw") else name]
        median = statistics.median(ts)
        timings[name] = {"seconds": median, "tokens": count, "tokens_per_s": count / median}
    return timings, {k: built[k] for k in ("a", "b", "c")}


# ---- Training -------------------------------------------------------------------------------


def build_way(way: str, args, tokenizer, tok_dir: Path, bf16: bool):
    """(model, TrainingArguments, collator, sparse head?) as each way builds them."""
    max_steps = args.warmup + args.steps
    set_seed(args.seed)
    out = Path(args.work_dir) / way
    if way in RECIPE_WAYS:
        # recipes/pretrain_mlm.py's defaults (TRAINING_DEFAULTS, its argument dataclasses),
        # and its model and collator built as it builds them (benchmarks/ways.py)
        argv = recipe_argv(args, tok_dir, bf16) + RECIPE_WAYS[way]
        recipe = recipe_way(
            argv + ["--output_dir", str(out), "--max_steps", str(max_steps)], tokenizer
        )
        sparse = recipe.model_args.sparse_mlm_head
        return recipe.model, recipe.training_args, recipe.collator, sparse
    # a, b: stock model, stock TrainingArguments, stock collator (as the tutorial, run_mlm.py)
    training_args = stock_training_args(args, out, max_steps, bf16)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    return stock_model(tokenizer, args), training_args, collator, False


def run_way(way, args, tokenizer, dataset, tok_dir, bf16, device) -> dict:
    model, training_args, collator, sparse = build_way(way, args, tokenizer, tok_dir, bf16)
    counter = BatchCounter(tokenizer.pad_token_id)
    model.register_forward_pre_hook(counter, with_kwargs=True)
    timer = StepTimer(args.warmup, counter, device)
    trainer = train_quietly(model, training_args, collator, dataset, tokenizer, timer)
    seconds, n = timer.seconds, counter.totals()
    shape = {
        "hidden": args.hidden_size,
        "ffn": args.intermediate_size,
        "vocab": model.config.vocab_size,
        "layers": args.num_hidden_layers,
        "glu": FAMILIES[model.config.model_type].gated_mlp,
    }
    needed = training_flops(shape, n["real_tokens"], n["real_attention_pairs"], n["masked_tokens"])
    executed = training_flops(
        shape,
        n["positions"],
        n["attention_pairs"],
        n["masked_tokens"] if sparse else n["positions"],
    )
    return {
        "step_s": seconds / n["batches"],
        "tokens_per_s": n["real_tokens"] / seconds,
        "real_tokens_per_batch": n["real_tokens"] / n["batches"],
        "masked_per_batch": n["masked_tokens"] / n["batches"],
        "needed_flops_per_s": needed / seconds,
        "executed_flops_per_s": executed / seconds,
        "needed_gflop_per_step": needed / n["batches"] / 1e9,
        "loss": trainer.state.log_history[-1].get("train_loss"),
    }


def race(args, tokenizer, data, tok_dir, bf16, device) -> dict:
    runs = {way: [] for way in args.ways}
    for repeat in range(args.repeats):
        for way in args.ways:
            data_way = "c" if way in RECIPE_WAYS else way  # the recipe's packed blocks
            result = run_way(way, args, tokenizer, data[data_way], tok_dir, bf16, device)
            runs[way].append(result)
            print(
                f"[{way}] run {repeat + 1}/{args.repeats}: {result['step_s']:.3f} s/step, "
                f"{result['tokens_per_s']:,.0f} non-padding tokens/s",
                flush=True,
            )
    return {
        way: {key: statistics.median(r[key] for r in rs) for key in rs[0] if key != "loss"}
        | {"runs": rs}
        for way, rs in runs.items()
    }


# ---- Main -----------------------------------------------------------------------------------


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # auto: what the recipes' `bf16: auto` picks on this machine, for every way alike
    bf16, reason = resolve_bf16(use_cpu=False, fp16=False)
    if args.precision != "auto":
        bf16, reason = args.precision == "bf16", f"--precision {args.precision}"
    machine = describe_machine(device)
    print(f"{machine['cpu']} ({machine['cores']} cores), {machine.get('gpu', 'no GPU')}")
    print(f"precision: {'bf16' if bf16 else 'fp32'} ({reason})")

    # ---- Peak: torch.matmul on large square matrices, fp32 and bf16 -------------------------
    peaks = {
        name: matmul_peak(device, dt, args.peak_seconds)
        for name, dt in [("fp32", torch.float32), ("bf16", torch.bfloat16)]
    }
    for name, peak in peaks.items():
        print(f"{name} matmul peak: {peak['flops'] / 1e9:,.1f} GFLOP/s (n={peak['n']})")

    # ---- Tokenizer: byte-level BPE as tokenizer_training/configs/bytelevel-bpe.yaml ----------
    tok_dir = Path(args.work_dir) / "tokenizer"
    config = REPO / "tokenizer_training/configs/bytelevel-bpe.yaml"
    tok_seconds, _ = _timed(
        lambda: train_tokenizer(
            ["--config", str(config), "--train_files", *args.train_files]
            + ["--vocab_size", str(args.vocab_size), "--output_dir", str(tok_dir)]
        )
    )
    tokenizer = load_tokenizer(str(tok_dir), args.max_seq_length)
    print(f"tokenizer training: {tok_seconds:.1f} s")

    report = {
        "command": " ".join(
            ["python -m benchmarks.bench", *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": machine,
        "settings": vars(args)
        | {"precision": "bf16" if bf16 else "fp32", "precision_reason": reason, "device": device},
        "peaks": peaks,
        "tokenizer_training_s": tok_seconds,
    }
    if args.ways:
        # ---- Data: each way's preprocessing, timed, against the raw encode rate -------------
        data_args = recipe_args(recipe_argv(args, tok_dir, bf16))[0]
        prep, data = preprocess(args, tokenizer, data_args)
        for name, t in prep.items():
            print(f"preprocessing {name}: {t['seconds']:.2f} s, {t['tokens_per_s']:,.0f} tokens/s")

        # ---- Training throughput: the ways take turns ----------------------------------------
        report["preprocessing"] = prep
        report["training"] = race(args, tokenizer, data, tok_dir, bf16, device)
        report["descriptions"] = {w: WAYS[w] for w in args.ways}

    # ---- Time to accuracy: each way trains for the same seconds (benchmarks/race.py) -------
    if args.race_seconds > 0:
        report["race"] = run_race(args, tokenizer, tok_dir, bf16, device)
        # the race's own record, kept with it when a later run measures only the throughput
        report["race"]["measured"] = {
            key: report[key] for key in ("command", "machine", "settings")
        }

    report["machine"]["load_average_end"] = os.getloadavg()
    write_report(with_other_part(report, Path(args.out_dir)), Path(args.out_dir))
    return report


def with_other_part(report: dict, out_dir: Path) -> dict:
    """The report, plus the part (throughput or race) it did not measure from out_dir's
    results.json: a race-only rerun leaves the throughput tables in place, and back."""
    path = out_dir / "results.json"
    if not path.exists():
        return report
    old = json.loads(path.read_text())
    if "training" not in report and "training" in old and "race" in report:
        return old | {"race": report["race"]}
    if "race" not in report and "measured" in old.get("race", {}):
        return report | {"race": old["race"]}
    return report


if __name__ == "__main__":
    # One GPU: with several visible, Trainer would split every batch over all (DataParallel).
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
    main()
