"""How good is it? Evaluate masked LMs side by side: models, a run's checkpoints, minimal pairs.

    python -m recipes.evaluate --model outputs/roberta-tiny
    python -m recipes.evaluate --model outputs/roberta-tiny --all_checkpoints true \\
        --minimal_pairs pairs.jsonl --output_file results.json
    python -m recipes.evaluate --model outputs/mine user/their-model@step1000 --files held_out.txt

Each model is a folder (a run's output_dir or one of its checkpoint-N folders) or a Hub id with
an optional @revision. Per model, one row: masked-token accuracy at a fixed, seeded 15% masking
with its most-frequent-token floor, perplexity, pseudo-log-likelihood per word and per character
on the text (`--files`; by default the held-out split of the run the model came from), and the
accuracy on minimal pairs (`--minimal_pairs`, BLiMP's JSON Lines format; README, "How good is
it?"). The table says which figures compare between which models.
"""

import argparse
import sys
from pathlib import Path

from transformers import AutoConfig

from recipes.data.minimal_pairs import load_minimal_pairs
from recipes.errors import UserError, exit_on_user_error
from recipes.models.pll import TOKEN_BUDGET, encode_for_scoring
from recipes.runs.metrics import score_minimal_pairs
from recipes.scoring import report, text
from recipes.scoring.targets import fetch, load_target, resolve_targets


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r}: use true or false")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m recipes.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--model",
        nargs="+",
        required=True,
        help="Models: folders (output_dir, checkpoint-N) or Hub ids, each with @revision if "
        "need be.",
    )
    add(
        "--all_checkpoints",
        type=_bool,
        default=False,
        help="A run folder: every checkpoint-N in step order, then the final model; a Hub id: "
        "every step<N> branch, then main (default: false).",
    )
    add(
        "--files",
        nargs="+",
        help="Text to evaluate on, in training data's shapes (.txt, .jsonl, ... globs, "
        "folders). Default: the held-out split of the run a model folder came from.",
    )
    add("--minimal_pairs", help="A .jsonl file of minimal pairs (sentence_good, sentence_bad).")
    add(
        "--output_file",
        type=Path,
        help="Write the rows as JSON here; a checkpoint series' learning curve goes beside it "
        "(.png).",
    )
    add(
        "--max_seq_length",
        type=int,
        help="Tokens per block for masked accuracy (default: the run's, else 128; at most what "
        "every model takes).",
    )
    add("--max_texts", type=int, default=2000, help="Passages of the text used (default: 2000).")
    add(
        "--pll_texts",
        type=int,
        default=200,
        help="Lines of the text scored by pseudo-log-likelihood, one forward pass per token "
        "(default: 200).",
    )
    add(
        "--token_budget",
        type=int,
        default=TOKEN_BUDGET,
        help=f"Tokens per forward pass when scoring PLL (default: {TOKEN_BUDGET}).",
    )
    add("--seed", type=int, default=0, help="Seed of the masking (default: 0).")  # fmt: skip
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    from transformers import logging

    logging.set_verbosity_error()
    if not sys.stdout.isatty():
        logging.disable_progress_bar()

    # ---- What to evaluate, checked before any slow work --------------------------------------
    pairs = load_minimal_pairs(args.minimal_pairs) if args.minimal_pairs else None
    targets = resolve_targets(args.model, args.all_checkpoints)
    folders = [fetch(t) for t in targets]  # downloads; a missing revision or weights fail here
    configs = [AutoConfig.from_pretrained(f) for f in folders]
    run = next((t.run for t in targets if t.run is not None), None)
    if args.files:
        texts, where = text.file_texts(args.files, args.max_texts)
    elif run is not None:
        texts, where = text.held_out_texts(run, args.max_texts)
    elif pairs is None:
        raise UserError(
            "nothing to evaluate on: give `--files` (text) or `--minimal_pairs` (a .jsonl "
            "file); a run's output_dir brings its own held-out text."
        )
    else:
        texts, where = [], None
    if where:
        print(f"text: {where}")

    # ---- One block size and one set of PLL pieces for every model --------------------------
    limit = min(text.max_tokens(c) for c in configs)
    recorded = text.run_settings(run)[0].get("max_seq_length") if run else None
    block = min(args.max_seq_length or recorded or 128, limit)
    pieces = []
    if texts:
        from transformers import AutoTokenizer

        tokenizers = {str(f): AutoTokenizer.from_pretrained(f) for f in folders}

        def fits(piece):
            return all(
                len(encode_for_scoring(t, [piece])[0][0]) <= limit for t in tokenizers.values()
            )

        pieces = text.pll_pieces(texts, fits, args.pll_texts)

    # ---- Each model in turn ------------------------------------------------------------------
    rows = []
    for target in targets:
        print(f"evaluating {target.name}", file=sys.stderr)
        model, tokenizer = load_target(target)
        row = {
            "model": target.name,
            "step": target.step,
            "tokens_seen": target.tokens_seen,
            "tokenizer": text.tokenizer_id(tokenizer),
            "series": str(target.run or target.source),
        }
        if texts:
            row |= text.masked_metrics(model, tokenizer, texts, block, args.seed)
            row |= text.pll_metrics(model, tokenizer, pieces, args.token_budget)
        if pairs is not None:
            scored = score_minimal_pairs(model, tokenizer, pairs, args.token_budget)
            row["minimal_pairs_accuracy"] = scored["accuracy"]
            row["minimal_pairs_ties"] = scored["ties"]
            row["minimal_pairs_by_group"] = scored.get("by_group", {})
            row["sentences_per_second"] = scored["sentences_per_second"]
        rows.append(row)
        del model

    # ---- Table, comparability, results.json, learning curve --------------------------------
    print(report.table(rows))
    for line in report.comparability(rows):
        print(line)
    if pairs is not None and pairs.groups:
        for row in rows:
            for field, groups in row["minimal_pairs_by_group"].items():
                shown = ", ".join(f"{g} {a:.3f}" for g, a in groups.items())
                print(f"{row['model']} pairs by {field}: {shown}")
    if args.output_file:
        about = {
            "text": where,
            "minimal_pairs": args.minimal_pairs,
            "masked_tokens_per_block": block if texts else None,
            "seed": args.seed,
            "comparable": report.comparability(rows),
        }
        report.write_results(args.output_file, rows, about)
        print(f"results: {args.output_file}")
        curve = report.plot_learning_curve(
            rows, args.output_file.with_suffix(".png"), title=args.output_file.stem
        )
        if curve:
            print(f"learning curve: {curve}")
    return rows


if __name__ == "__main__":
    main()
