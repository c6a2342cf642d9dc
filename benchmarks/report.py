"""The bench's outputs: the machine's description, results.md, results.json, throughput.png
and time_to_accuracy.png (the race's part: benchmarks/race.py).

python -m benchmarks.report benchmarks/results.json   # redraw .md and .png from the .json
"""

import json
import os
import platform
import sys
from datetime import datetime
from pathlib import Path

import matplotlib
import torch
import transformers

from benchmarks.race import plot_race, race_markdown

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

# Dense bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s (without 2:4 sparsity);
# the first name found in torch.cuda.get_device_name() wins, so the longer names come first.
GPU_BF16_PEAK_TFLOPS = [
    ("H100 PCIe", 756),
    ("H100 NVL", 835),
    ("H100", 989),  # SXM
    ("GH200", 989),
    ("H200", 989),
    ("B200", 2250),
    ("A100", 312),
    ("L40S", 362),
    ("L4", 121),
    ("A10", 125),
]

# The throughput targets the recipe's defaults were settled against, on a 2-core CPU with the
# default shape.
TARGETS = [
    ("c/b non-padding tokens/s", 2.3),
    ("c/a non-padding tokens/s", 25.0),
    ("c model FLOP/s / fp32 matmul peak", 0.45),
    ("c preprocessing / raw encode_batch rate", 0.80),
]


def describe_machine(device: str) -> dict:
    cpu, flags = platform.processor() or "unknown", set()
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        # native bf16 matmul on x86 needs AVX512-BF16 or AMX; without them torch emulates it
        "cpu_bf16_native": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "env": {
            k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ
        },
    }
    if device == "cuda":
        name = torch.cuda.get_device_name()
        machine["gpu"] = name
        peak = next((tf for key, tf in GPU_BF16_PEAK_TFLOPS if key in name), None)
        machine["gpu_bf16_spec_tflops"] = peak
    return machine


def _targets(r: dict) -> list[tuple[str, float, float | None]]:
    t, p = r["training"], r["preprocessing"]
    measured = {}
    if "c" in t and "b" in t:
        measured[TARGETS[0][0]] = t["c"]["tokens_per_s"] / t["b"]["tokens_per_s"]
    if "c" in t and "a" in t:
        measured[TARGETS[1][0]] = t["c"]["tokens_per_s"] / t["a"]["tokens_per_s"]
    if "c" in t:
        measured[TARGETS[2][0]] = t["c"]["needed_flops_per_s"] / r["peaks"]["fp32"]["flops"]
    measured[TARGETS[3][0]] = p["c"]["tokens_per_s"] / p["raw encode_batch"]["tokens_per_s"]
    return [(name, goal, measured.get(name)) for name, goal in TARGETS]


def write_report(r: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(r, indent=2, default=str) + "\n")
    (out_dir / "results.md").write_text(markdown(r))
    written = ["results.md", "results.json"]
    if "training" in r:
        plot(r, out_dir / "throughput.png")
        written.append("throughput.png")
    if "race" in r:
        plot_race(r, out_dir / "time_to_accuracy.png")
        written.append("time_to_accuracy.png")
    print(f"wrote {', '.join(written)} in {out_dir}")


def markdown(r: dict) -> str:
    m, s, peaks = r["machine"], r["settings"], r["peaks"]
    fp32, bf16 = peaks["fp32"]["flops"], peaks["bf16"]["flops"]
    spec = m.get("gpu_bf16_spec_tflops")
    load = ", ".join(f"{x:.1f}" for x in m["load_average_start"] or [])
    load_end = ", ".join(f"{x:.1f}" for x in r["machine"]["load_average_end"] or [])
    race_apart = "race" in r and r["race"].get("measured", r)["machine"]["date"] != m["date"]
    lines = [
        "# `make bench`: throughput, and time to accuracy, of ways to pretrain the same model",
        "",
        f"Measured {m['date']} with `{r['command'].strip()}`"
        + (" (the race in its own run: see its section)" if race_apart else "")
        + ". What each column means, and how",
        "the FLOPs are counted: [README.md](README.md).",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
        f"{m['cpu_capability']}, native bf16: {'yes' if m['cpu_bf16_native'] else 'no'} |",
        f"| GPU | {m.get('gpu', 'none')}"
        + (f" (data-sheet dense bf16 peak {spec} TFLOP/s)" if spec else "")
        + " |",
        f"| software | torch {m['torch']}, transformers {m['transformers']} |",
        f"| precision | {s['precision']} ({s.get('precision_reason', '')}), every way |",
        f"| load average (1, 5, 15 min) | {load} at the start; {load_end} at the end |",
        f"| environment | {m['env'] or 'no OMP_* variables set'} |",
        f"| fp32 matmul peak | {fp32 / 1e9:,.1f} GFLOP/s (torch.matmul, n={peaks['fp32']['n']}) |",
        f"| bf16 matmul peak | {bf16 / 1e9:,.1f} GFLOP/s (torch.matmul, n={peaks['bf16']['n']}) |",
        "",
    ]
    # The bench keeps every core busy itself, so a load of about `cores` is its own; more than
    # 1.5x the cores means other jobs were competing for them.
    busy = max((m["load_average_start"] or [0])[0], (m["load_average_end"] or [0])[0])
    if busy > 1.5 * m["cores"]:
        lines += [
            f"**The machine was busy (load average up to {busy:.1f} on {m['cores']} cores): "
            "other jobs shared it, so these timings are noisy. Re-run on a quiet machine.**",
            "",
        ]
    if s["device"] == "cpu" and not m["cpu_bf16_native"]:
        lines += [
            "This CPU has no native bf16 (no AVX512-BF16 or AMX): torch runs bf16 matmuls in a",
            "reference loop, so the bf16 peak is tiny and % bf16 peak only says how far fp32 is ahead.",
            "",
        ]
    if "training" in r:
        lines += throughput_markdown(r)
    if "race" in r:
        lines += [""] * ("training" in r) + race_markdown(r)
    return "\n".join(lines) + "\n"


def throughput_markdown(r: dict) -> list[str]:
    m, s, peaks, t = r["machine"], r["settings"], r["peaks"], r["training"]
    fp32, bf16 = peaks["fp32"]["flops"], peaks["bf16"]["flops"]
    spec = m.get("gpu_bf16_spec_tflops")
    lines = [
        f"Model: hidden {s['hidden_size']}, {s['num_hidden_layers']} layers, "
        f"{s['num_attention_heads']} heads, FFN {s['intermediate_size']}, vocabulary "
        f"{s['vocab_size']:,}; batch {s['batch_size']} x {s['max_seq_length']} tokens; "
        f"{s['precision']} on {s['device']}. Per run {s['warmup']} warm-up + {s['steps']} timed "
        f"steps; {s['repeats']} runs per way, taking turns; medians.",
        "",
        "## Training",
        "",
        "| way | how | s/step | non-padding tokens/s | x a | x b | real tokens/batch "
        "| model GFLOP/s | % fp32 peak | % bf16 peak | executed GFLOP/s |"
        + (" % GPU spec |" if spec else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if spec else ""),
    ]
    for way, x in t.items():
        ratio = {
            base: f"{x['tokens_per_s'] / t[base]['tokens_per_s']:.2f}" if base in t else "-"
            for base in ("a", "b")
        }
        row = (
            f"| {way} | {r['descriptions'][way]} | {x['step_s']:.3f} | {x['tokens_per_s']:,.0f} "
            f"| {ratio['a']} | {ratio['b']} | {x['real_tokens_per_batch']:,.0f} "
            f"| {x['needed_flops_per_s'] / 1e9:,.1f} | {100 * x['needed_flops_per_s'] / fp32:.1f} "
            f"| {100 * x['needed_flops_per_s'] / bf16:.1f} "
            f"| {x['executed_flops_per_s'] / 1e9:,.1f} |"
        )
        if spec:
            row += f" {100 * x['needed_flops_per_s'] / (spec * 1e12):.1f} |"
        lines.append(row)
    lines += [
        "",
        "## Preprocessing (one process unless stated; datasets cache off)",
        "",
        f"Tokenizer training (byte-level BPE, {s['vocab_size']:,} tokens): "
        f"{r['tokenizer_training_s']:.1f} s.",
        "",
        "| step | seconds | tokens | tokens/s | vs raw encode_batch |",
        "|---|---:|---:|---:|---:|",
    ]
    raw_rate = r["preprocessing"]["raw encode_batch"]["tokens_per_s"]
    names = {
        "raw encode_batch": "raw `tokenizers` encode_batch, recipe's texts",
        "raw encode_batch_fast": "raw `tokenizers` encode_batch_fast (no offsets)",
        "a": "a: tutorial lines, padded",
        "b": "b: run_mlm.py tokenize + group_texts",
        "c": "c: recipe tokenize_datasets (pack_texts)",
    }
    for name, p in r["preprocessing"].items():
        lines.append(
            f"| {names[name]} | {p['seconds']:.2f} | {p['tokens']:,} | "
            f"{p['tokens_per_s']:,.0f} | {p['tokens_per_s'] / raw_rate:.2f} |"
        )
    lines += ["", "## Targets (2-core CPU, default shape)", ""]
    lines += ["| target | goal | measured | |", "|---|---:|---:|---|"]
    for name, goal, got in _targets(r):
        verdict = "-" if got is None else ("met" if got >= goal else "not met")
        shown = "-" if got is None else f"{got:.2f}"
        lines.append(f"| {name} | >= {goal} | {shown} | {verdict} |")
    return lines


def plot(r: dict, path: Path) -> None:
    t, fp32 = r["training"], r["peaks"]["fp32"]["flops"]
    ways = list(t)
    short = {
        "a": "tutorial",
        "b": "run_mlm.py",
        "c": "recipe",
        "d": "recipe,\nModernBERT",
        "c-workers": "+1 worker",
    }
    ticks = [f"{w}\n{short.get(w, '')}" for w in ways]
    palette = {"a": "tab:gray", "b": "tab:blue", "d": "tab:purple"}
    colors = [palette.get(w, "tab:green") for w in ways]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4), dpi=110)
    tps = [t[w]["tokens_per_s"] for w in ways]
    bars = left.bar(ticks, tps, color=colors)
    left.bar_label(bars, labels=[f"{v:,.0f}" for v in tps])
    left.set_ylim(0, 1.15 * max(tps))
    left.set_ylabel("non-padding tokens / s (median)")
    left.set_title("Training throughput")
    needed = [100 * t[w]["needed_flops_per_s"] / fp32 for w in ways]
    executed = [100 * t[w]["executed_flops_per_s"] / fp32 for w in ways]
    right.bar(ticks, executed, color="none", edgecolor="black", hatch="//", label="executed")
    bars = right.bar(ticks, needed, color=colors, label="needed by the model")
    right.bar_label(bars, labels=[f"{v:.0f}%" for v in needed])
    right.set_ylim(0, 1.3 * max(executed + needed))
    right.set_ylabel("matmul FLOP/s, % of measured fp32 peak")
    right.set_title("Model FLOP/s")
    right.legend(loc="upper left", ncol=2, fontsize=8)
    m, s = r["machine"], r["settings"]
    fig.suptitle(
        f"{m.get('gpu') or m['cpu']} ({m['cores']} cores), {s['precision']}, batch "
        f"{s['batch_size']} x {s['max_seq_length']}, {m['date']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results.json")
    write_report(json.loads(results.read_text()), results.parent)
