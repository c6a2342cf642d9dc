"""The text figures of `python -m recipes.evaluate`: which text (`--files`, or the held-out
split of the run the model came from), masked-token accuracy and loss at a fixed, seeded
masking, and pseudo-log-likelihood per word and per character.

Masked accuracy, loss and perplexity are per token, so they compare models that share a
tokenizer only: the text is packed into the same blocks and masked by the same collator as in
training (recipes/data/masking.py: the masks are a function of the seed and the batch's token
ids), so models with one tokenizer are scored on the very same positions. PLL per word (or per
character) divides a sentence's summed log-probability by a count that does not depend on the
tokenizer, so it compares any two models scored on the same text.
"""

import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from recipes.arguments import BertArguments, DataArguments
from recipes.data.masking import ResumableMaskingCollator
from recipes.data.nsp import load_documents
from recipes.data.packing import pack_texts
from recipes.data.text import load_raw_datasets
from recipes.errors import UserError
from recipes.models.families import FAMILIES
from recipes.models.pll import encode_for_scoring, pseudo_log_likelihoods, timed
from recipes.run_folder import RUN_CONFIG, read_run_config
from recipes.runs.metrics import masked_accuracy, perplexity
from recipes.settings_record import dataclass_defaults

# The share of tokens masked for masked accuracy: BERT's 15%, whatever rate a run trained at,
# so that runs trained at other rates are measured alike.
EVAL_MLM_PROBABILITY = 0.15


def run_settings(run: Path) -> tuple[dict, str]:
    """(the settings run_config.yaml records, the recipe that ran: its first lines name it)."""
    recipe = re.search(r"python -m (\S+)", (run / RUN_CONFIG).read_text(encoding="utf-8"))
    return read_run_config(run), recipe.group(1) if recipe else ""


def held_out_texts(run: Path, limit: int) -> tuple[list[str], str]:
    """The first `limit` passages of the run's own held-out split, by the same rule as the
    run held it out (recipes/data/text.py `hold_out`, or the BERT recipe's documents), read
    from the data its run_config.yaml names."""
    settings, recipe = run_settings(run)
    bert = recipe.endswith("pretrain_bert")
    args = SimpleNamespace(**(dataclass_defaults(DataArguments, BertArguments) | settings))
    try:
        if bert:
            split = load_documents(args, args)["validation"]
        else:
            split = load_raw_datasets(args)["validation"]
    except UserError as err:
        raise UserError(
            f"the held-out text of {run} (as its {RUN_CONFIG} names it): {err} Give the text "
            "to evaluate on with `--files`."
        ) from None
    texts = []
    for example in split:
        text = (
            example.get("text")
            or example.get("document")
            or "\n".join(example.get("sentences") or [])
        )
        if text.strip():
            texts.append(text)
        if len(texts) >= limit:
            break
    return texts, f"the held-out split of {run} ({len(texts)} passages)"


def file_texts(files: list[str], limit: int) -> tuple[list[str], str]:
    """The first `limit` passages of `--files`, read as training data is (text_sample_by auto:
    blank-line paragraphs, else lines; .jsonl/.parquet/.csv: the `text` column)."""
    args = SimpleNamespace(**(dataclass_defaults(DataArguments) | {"train_files": files}))
    split = load_raw_datasets(args, split_validation=False)["train"]
    texts = [t for t in split.select(range(min(limit, len(split))))["text"] if t.strip()]
    return texts, f"{', '.join(files)} ({len(texts)} passages)"


# ------------------------------------------------------------------------ who compares with whom
def tokenizer_id(tokenizer) -> str:
    """A short hash of the vocabulary (token -> id): models with the same one see the same
    tokens, so their per-token figures compare."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return hashlib.sha256(vocab.encode()).hexdigest()[:8]


def max_tokens(config) -> int:
    """Tokens (special ones included) an input of the model may have: its position table as its
    family counts positions (RoBERTa's start after pad_token_id)."""
    rows = getattr(config, "max_position_embeddings", 512)
    spec = FAMILIES.get(config.model_type)
    if spec and spec.positions_after_pad:
        return rows - (config.pad_token_id + 1)
    return rows if spec else rows - 2  # a family of no record here: keep a margin


# ---------------------------------------------------------------------------- masked accuracy
@torch.inference_mode()
def masked_metrics(model, tokenizer, texts, block_size: int, seed: int, batch_size: int = 16):
    """Masked-token accuracy, its most-frequent-token floor, loss and perplexity over the texts
    packed into `block_size` blocks, 15% masked (80/10/10) by the training collator with `seed`."""
    special = sorted(set(tokenizer.all_special_ids))
    packed = pack_texts({"text": texts}, tokenizer, block_size, special)
    blocks, specials = packed["input_ids"], packed["special_tokens_mask"]
    if len(blocks) == 0:
        raise UserError(
            f"the text is shorter than one block of {block_size} tokens: give more text "
            "(`--files`) or lower `--max_seq_length`."
        )
    collator = ResumableMaskingCollator(tokenizer, mlm_probability=EVAL_MLM_PROBABILITY, seed=seed)
    preds, labels, loss_sum = [], [], 0.0
    for start in range(0, len(blocks), batch_size):
        batch = collator(
            [
                {"input_ids": ids.astype(np.int64), "special_tokens_mask": s}
                for ids, s in zip(
                    blocks[start : start + batch_size], specials[start : start + batch_size]
                )
            ]
        )
        logits = model(input_ids=batch["input_ids"]).logits.float()
        masked = batch["labels"] != -100
        loss_sum += float(
            torch.nn.functional.cross_entropy(
                logits[masked], batch["labels"][masked], reduction="sum"
            )
        )
        preds.append(logits.argmax(-1)[masked].numpy())
        labels.append(batch["labels"][masked].numpy())
    preds, labels = np.concatenate(preds), np.concatenate(labels)
    scores = masked_accuracy(preds, labels)
    loss = loss_sum / max(len(labels), 1)
    return {
        "masked_accuracy": scores["accuracy"],
        "most_frequent_token_accuracy": scores["majority_baseline_accuracy"],
        "masked_tokens": int(len(labels)),
        "loss": loss,
        "perplexity": perplexity(loss),
    }


# ---------------------------------------------------------------------------- PLL per word
def pll_pieces(texts: list[str], fits, limit: int) -> list[str]:
    """The first `limit` pieces of text scored by PLL: each non-empty line, halved by words
    until `fits(piece)` (every model of the evaluation takes it whole, so all score the same
    pieces; a piece is never cut mid-word)."""
    pieces = []

    def add(words: list[str]):
        piece = " ".join(words)
        if len(words) > 1 and not fits(piece):
            middle = len(words) // 2
            add(words[:middle])
            add(words[middle:])
        elif piece:
            pieces.append(piece)

    for text in texts:
        for line in text.splitlines():
            if line.strip():
                add(line.split())
            if len(pieces) >= limit:
                return pieces[:limit]
    return pieces


def pll_metrics(model, tokenizer, pieces: list[str], token_budget: int) -> dict:
    """PLL per word (whitespace-separated) and per character, summed over the pieces."""
    encoded = encode_for_scoring(tokenizer, pieces)
    scores, seconds = timed(
        pseudo_log_likelihoods, model, tokenizer, pieces, token_budget, encoded=encoded
    )
    total = sum(scores)
    return {
        "pll_per_word": total / sum(len(p.split()) for p in pieces),
        "pll_per_char": total / sum(len(p) for p in pieces),
        "pll_texts": len(pieces),
        "pll_texts_per_second": len(pieces) / seconds if seconds else None,
    }
