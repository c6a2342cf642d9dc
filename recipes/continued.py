"""Continued (domain-adaptive) pretraining: start from an existing checkpoint instead of random
weights, optionally with the domain's own words added to its vocabulary.

    python -m recipes.pretrain_mlm --config recipes/configs/continue-roberta.yaml

Both recipes take these fields (their argument classes inherit them). Which model class and
sparse head a checkpoint gets: recipes/families.py `load_pretrained`.
"""

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import AddedToken
from transformers import TrainerCallback

from recipes.errors import UserError
from recipes.families import load_pretrained
from recipes.masking import word_scheme
from recipes.modeling import require_folder_or_hub_id
from recipes.outputs import weights_checksum

# What is fetched from a Hub repo: config, safetensors weights, tokenizer files. Never pickles.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


@dataclass
class ContinueArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Continue pretraining this checkpoint instead of starting from random "
            "weights: a local folder or a Hub id of a RoBERTa, ModernBERT (masked-LM recipe) or "
            "BERT (BERT recipe) model. Weights (safetensors only), config and, unless "
            "tokenizer_name_or_path is set, the tokenizer come from it; model-shape keys must "
            "match it (dropout keys may differ)."
        },
    )
    add_tokens_from: str | None = field(
        default=None,
        metadata={
            "help": "Extend the checkpoint's vocabulary with domain words: a tokenizer folder "
            "(tokenizer_training on the domain text; its whole-word tokens, most frequent "
            "first) or a text file of words, one per line. Words the tokenizer already has as "
            "one token are skipped; each new embedding starts as the mean of the pieces the "
            "old tokenizer split the word into."
        },
    )
    max_added_tokens: int = field(
        default=1000,
        metadata={"help": "At most this many tokens are added by add_tokens_from."},
    )
    whole_word_mask: bool = field(
        default=False,
        metadata={
            "help": "Mask every piece of a selected word together (recipes/masking.py): words "
            "are selected with probability mlm_probability, and each becomes all mask tokens, "
            "all random tokens or stays as it is (80/10/10 per word)."
        },
    )

    def __post_init__(self):
        if self.add_tokens_from and not self.model_name_or_path:
            raise UserError(
                "`add_tokens_from` extends a checkpoint's vocabulary: set `model_name_or_path` "
                "(a model from scratch takes its vocabulary from tokenizer_name_or_path)."
            )
        if self.max_added_tokens < 1:
            raise UserError(f"`max_added_tokens` must be at least 1, got {self.max_added_tokens}.")


def local_checkpoint(name_or_path: str) -> str:
    """A local folder holding the checkpoint: `name_or_path` itself, or a Hub id downloaded
    through huggingface_hub (HF_ENDPOINT and HF_TOKEN honoured), config, safetensors and
    tokenizer files only."""
    require_folder_or_hub_id(name_or_path, "model_name_or_path")
    if os.path.isdir(name_or_path):
        folder = name_or_path
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError

        try:
            folder = snapshot_download(name_or_path, allow_patterns=HUB_PATTERNS)
        except (HfHubHTTPError, OSError, ValueError) as err:
            reason = str(err).strip().splitlines()[0]
            raise UserError(
                f"could not download `model_name_or_path: {name_or_path}`: {reason}"
            ) from None
    if not (Path(folder) / "config.json").is_file():
        raise UserError(f"`model_name_or_path: {name_or_path}` has no config.json.")
    if not list(Path(folder).glob("*.safetensors")):
        raise UserError(
            f"`model_name_or_path: {name_or_path}` has no safetensors weights. Pickled "
            "pytorch_model.bin files can run code when loaded and are not read here; convert "
            "them (transformers: from_pretrained then save_pretrained writes safetensors)."
        )
    return folder


def check_tokenizer_fits(tokenizer, model, where: str) -> None:
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise UserError(
            f"the tokenizer has {len(tokenizer)} tokens but the checkpoint in {where} has "
            f"{rows} embeddings: use the checkpoint's own tokenizer (leave "
            "tokenizer_name_or_path unset), and `add_tokens_from` to add domain words."
        )
    if tokenizer.pad_token_id != model.config.pad_token_id:
        raise UserError(
            f"the tokenizer's pad token id {tokenizer.pad_token_id} differs from the "
            f"checkpoint's pad_token_id {model.config.pad_token_id} ({where}): this is not the "
            "tokenizer the model was trained with."
        )


def start_from_checkpoint(
    args: ContinueArguments,
    folder: str,
    tokenizer,
    families: list[str],
    overrides: dict,
    max_seq_length: int,
    sparse_mlm_head: bool,
):
    """(family, model): the checkpoint in `folder`, loaded by families.load_pretrained, checked
    against the tokenizer, its vocabulary extended if `add_tokens_from` asks."""
    family, model, missing = load_pretrained(
        folder, families, overrides, max_seq_length, sparse_mlm_head
    )
    where = args.model_name_or_path
    if missing:
        print(f"not in the checkpoint, so initialised at random: {', '.join(missing)}")
    check_tokenizer_fits(tokenizer, model, where)
    # the same checksum finish_run prints at the end: a test compares it with the checkpoint's
    print(f"starting from {where} ({family}): weights checksum {weights_checksum(model)}")
    if args.add_tokens_from:
        extend_vocabulary(tokenizer, model, args.add_tokens_from, args.max_added_tokens)
    return family, model


# ---- Vocabulary extension ------------------------------------------------------------------


def candidate_words(source: str) -> list[str]:
    """Words to add, most useful first: a tokenizer folder's word-initial tokens in id order (a
    trained BPE or WordPiece vocabulary numbers tokens in the order it learned them, the most
    frequent first), or the lines of a text file."""
    path = Path(source)
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip()]
    if not path.is_dir():
        raise UserError(f"`add_tokens_from: {source}` is neither a tokenizer folder nor a file.")
    from transformers import AutoTokenizer

    try:
        domain = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise UserError(
            f"could not load a tokenizer from `add_tokens_from: {source}`: {err}"
        ) from None
    kind, marker = word_scheme(domain)
    special = set(domain.all_special_tokens)
    words = []
    for token, _ in sorted(domain.get_vocab().items(), key=lambda item: item[1]):
        if token in special:
            continue
        if kind == "start" and token.startswith(marker):  # "Ġcardiology" -> "cardiology"
            words.append(domain.convert_tokens_to_string([token]).strip())
        elif kind == "continue" and not token.startswith(marker):  # not a "##" piece
            words.append(token)
    return words


def _surface(tokenizer, word: str) -> str:
    """The text an added token matches. Byte-level and SentencePiece vocabularies carry the
    space before a word in its token ("Ġcardiology"), so the added token is " cardiology": it
    matches after a space, decodes with its space, and begins a word for whole-word masking. (A
    word at the very start of a text or line keeps its old pieces.) WordPiece: the word."""
    return " " + word if word_scheme(tokenizer)[0] == "start" else word


def extend_vocabulary(tokenizer, model, source: str, limit: int) -> list[str]:
    """Add up to `limit` words from `source` that the tokenizer splits into several pieces,
    resize the model's embeddings, and start each new row (input embedding, and the output
    bias where there is one) at the mean of the rows of the pieces the old tokenizer made of
    the word: the model's own summary of the word, not noise. Returns the added tokens."""
    # WordPiece tokenizers may lowercase: match the text as the tokenizer normalizes it
    kind, _ = word_scheme(tokenizer)
    pieces = {}
    for word in candidate_words(source):
        if len(pieces) == limit:
            break
        if any(c.isspace() for c in word) or not any(c.isalnum() for c in word):
            continue
        text = _surface(tokenizer, word)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= 2 and text not in pieces:
            pieces[text] = ids
    if not pieces:
        print(f"add_tokens_from {source}: every word is already one token; nothing added")
        return []
    added = [
        AddedToken(text, single_word=kind == "continue", normalized=kind == "continue")
        for text in pieces
    ]
    tokenizer.add_tokens(added)
    new_ids = tokenizer.convert_tokens_to_ids(list(pieces))
    rows = max(len(tokenizer), model.get_input_embeddings().num_embeddings)
    # ModernBERT's table is padded past its tokenizer (50368 rows for 50280 tokens): new ids
    # may land in rows that exist already; they are initialised all the same
    model.resize_token_embeddings(rows, mean_resizing=False)
    inputs = model.get_input_embeddings().weight
    outputs = model.get_output_embeddings()
    bias = getattr(outputs, "bias", None) if outputs is not None else None
    with torch.no_grad():
        for new_id, old_ids in zip(new_ids, pieces.values()):
            inputs[new_id] = inputs[old_ids].mean(dim=0)
            if outputs is not None and outputs.weight is not inputs:  # untied decoder
                outputs.weight[new_id] = outputs.weight[old_ids].mean(dim=0)
            if bias is not None:
                bias[new_id] = bias[old_ids].mean()
    sample = ", ".join(repr(t.strip()) for t in list(pieces)[:8]) + (
        ", ..." if len(pieces) > 8 else ""
    )
    print(
        f"add_tokens_from {source}: {len(pieces)} tokens added ({sample}), vocabulary "
        f"{len(tokenizer)}; each starts at the mean embedding of its old pieces"
    )
    return list(pieces)


# ---- Before and after ----------------------------------------------------------------------


class _KeepBeforeMetrics(TrainerCallback):
    """Trainer starts a fresh log history when training begins: put the before-training
    evaluation back at its head (step 0), so every checkpoint carries it and a resumed run
    reports it too."""

    def __init__(self, metrics: dict):
        self.metrics = metrics

    def on_train_begin(self, args, state, control, **kwargs):
        if not any(key in entry for entry in state.log_history for key in self.metrics):
            state.log_history.insert(0, {**self.metrics, "step": 0})


def evaluate_before(trainer, resume_from: str | None) -> None:
    """Evaluate the starting model on the held-out split (`eval_before_*`), before training.
    Not on a resume: the weights are no longer the starting ones (the checkpoint has the
    numbers the first run measured)."""
    if resume_from is None:
        trainer.add_callback(_KeepBeforeMetrics(trainer.evaluate(metric_key_prefix="eval_before")))


def before_metrics(trainer, loss_key: str = "loss") -> dict:
    """The before-training numbers from the log history, with `perplexity_before` (exp of
    `eval_before_<loss_key>`, the masked-LM loss); empty if there are none."""
    for entry in trainer.state.log_history:
        if f"eval_before_{loss_key}" in entry:
            metrics = {
                k: v
                for k, v in entry.items()
                if k.startswith("eval_before_") and ("loss" in k or "accuracy" in k)
            }
            loss = metrics[f"eval_before_{loss_key}"]
            metrics["perplexity_before"] = math.exp(loss) if loss < 50 else float("inf")
            return metrics
    return {}
