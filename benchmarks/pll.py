"""`make bench-pll`: pseudo-log-likelihood scoring, batched across sentences
(recipes/models/pll.py `pseudo_log_likelihoods`) against the plain way (one sentence's masked
copies per forward pass, the dense head: `pseudo_log_likelihoods_plain`), on the same model and
sentences; checks that both give the same scores.

    make bench-pll                      # = python -m benchmarks.pll
    python -m benchmarks.pll --sentences 100 --repeats 1    # a smoke run

The model is the bench's shape (benchmarks/bench.py: hidden 256, 4 layers, 4 heads, FFN 1024)
with random weights (speed does not depend on their values), fp32, with a byte-level BPE
vocabulary of `--vocab_size` trained here on the test corpus; the sentences are that corpus's
lines of 4 to 30 words, the length of minimal pairs. The two ways take turns, `--repeats`
times; medians are reported. Timings on a shared machine are noise: run it on quiet cores.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM

from benchmarks.report import describe_machine
from recipes.models.pll import TOKEN_BUDGET, pseudo_log_likelihoods, pseudo_log_likelihoods_plain

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "helpers" / "fixtures" / "corpus"


def sentences(n: int) -> list[str]:
    lines = []
    for path in sorted(CORPUS.glob("*.txt")):
        lines += [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if 4 <= len(line.split()) <= 30
        ]
    return lines[:n]


def tokenizer(vocab_size: int, folder: str):
    from tokenizer_training.train_tokenizer import main as train_tokenizer

    train_tokenizer(
        ["--config", "tokenizer_training/configs/bytelevel-bpe.yaml", "--output_dir", folder]
        + ["--train_files", *map(str, sorted(CORPUS.glob("*.txt")))]
        + ["--vocab_size", str(vocab_size)]
    )
    return AutoTokenizer.from_pretrained(folder)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocab_size", type=int, default=4000)
    parser.add_argument("--token_budget", type=int, default=TOKEN_BUDGET)
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        tok = tokenizer(args.vocab_size, folder)
    texts = sentences(args.sentences)
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tok), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=1024, max_position_embeddings=130, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, type_vocab_size=1,
    )  # fmt: skip
    model = RobertaForMaskedLM(config).eval()
    ways = {
        "plain": lambda: pseudo_log_likelihoods_plain(model, tok, texts),
        "batched": lambda: pseudo_log_likelihoods(
            model, tok, texts, token_budget=args.token_budget, progress=False
        ),
    }
    seconds, scores = {name: [] for name in ways}, {}
    for _ in range(args.repeats):
        for name, way in ways.items():  # in turns: drift on the machine hits both alike
            start = time.perf_counter()
            scores[name] = way()
            seconds[name].append(time.perf_counter() - start)
    gap = max(abs(a - b) for a, b in zip(scores["plain"], scores["batched"]))
    tokens = sum(len(ids) - 2 for ids in tok(texts)["input_ids"])
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    result = {
        "machine": describe_machine("cpu"),
        "sentences": len(texts),
        "scored_tokens": tokens,
        "vocab_size": len(tok),
        "token_budget": args.token_budget,
        "repeats": args.repeats,
        "seconds": seconds,
        "median_seconds": medians,
        "sentences_per_second": {n: len(texts) / s for n, s in medians.items()},
        "speedup": medians["plain"] / medians["batched"],
        "max_abs_score_difference": gap,
    }
    print(
        f"{len(texts)} sentences, {tokens} scored tokens, vocab {len(tok)}, fp32, "
        f"{result['machine']['cpu']}, {result['machine']['torch_threads']} threads"
    )
    for name in ways:
        print(f"  {name:8s} median {medians[name]:.2f} s  "
              f"{result['sentences_per_second'][name]:.1f} sentences/s")  # fmt: skip
    print(
        f"  batched is {result['speedup']:.2f}x the plain way; largest score difference {gap:.1e}"
    )
    if gap > 1e-4:
        raise SystemExit(f"the two ways disagree by {gap}: a bug, not a timing")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
