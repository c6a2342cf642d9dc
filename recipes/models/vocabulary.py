"""Continued pretraining's vocabulary: a tokenizer other than the checkpoint's own checked token by
token against it, and domain words added to a checkpoint's tokenizer, each new embedding started
at the mean of the pieces the old tokenizer made of the word.
"""

from pathlib import Path

import torch
from tokenizers import AddedToken

from recipes.data.masking import word_scheme
from recipes.errors import UserError

# Files a tokenizer is saved in; a checkpoint folder with none of them has no tokenizer of its own.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model",
    "sentencepiece.bpe.model", "tokenizer.model",
)  # fmt: skip


def own_tokenizer(folder: str):
    """The tokenizer saved with the checkpoint in `folder`; None if there is none (or it does
    not load)."""
    if not any((Path(folder) / name).is_file() for name in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError):
        return None


def check_same_vocabulary(tokenizer, folder: str, where: str, tokenizer_path: str) -> None:
    """`tokenizer` (from `tokenizer_path`) must give every token of the checkpoint's own
    tokenizer (saved in `folder`, the checkpoint `where`) the id it had in pretraining: an
    embedding row means the token it was trained on. Two tokenizers trained alike on different
    text share their size and special tokens but few ids, and the model then reads every moved
    token as another word. Tokens added after the checkpoint's vocabulary (ids past it, as
    `add_tokens_from` adds them) are the tokenizer's own business."""
    own = own_tokenizer(folder)
    if own is None:
        print(
            f"warning: the checkpoint {where} has no tokenizer of its own, so "
            f"`tokenizer_name_or_path: {tokenizer_path}` cannot be compared with the one it was "
            "pretrained with: only its size and pad id are checked."
        )
        return
    own_ids = own.get_vocab()
    own_tokens = {i: token for token, i in own_ids.items()}
    ids = tokenizer.get_vocab()
    tokens = {i: token for token, i in ids.items()}
    moved = [i for i in sorted(own_tokens) if tokens.get(i) != own_tokens[i]]
    if not moved:
        return

    def example(i: int) -> str:
        token = own_tokens[i]
        return f"{token!r} is {i} in the checkpoint's, {ids.get(token, 'absent')} in yours"

    raise UserError(
        f"`tokenizer_name_or_path: {tokenizer_path}` is not the tokenizer {where} was "
        f"pretrained with: {len(moved):,} of {len(own_tokens):,} tokens have another id than in "
        f"the checkpoint's tokenizer (e.g. {'; '.join(example(i) for i in moved[:3])}), so the "
        "model would read them as other words. Use the checkpoint's own tokenizer (leave "
        "tokenizer_name_or_path unset), or keep the checkpoint's and add your tokenizer's words "
        f"to it: `add_tokens_from: {tokenizer_path}` (with tokenizer_name_or_path unset)."
    )


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
    # transformers resizes what the model calls its output embeddings to the new vocabulary;
    # one that is no vocabulary projection (a model may name its head's hidden x hidden dense
    # layer so) would be resized into a broken head
    outputs = model.get_output_embeddings()
    vocabulary = model.get_input_embeddings().num_embeddings
    if outputs is not None and outputs.weight.shape[0] != vocabulary:
        raise UserError(
            f"`add_tokens_from` cannot extend a {type(model).__name__}: its output embeddings "
            f"({type(outputs).__name__} {tuple(outputs.weight.shape)}) are not a projection onto "
            f"the {vocabulary}-token vocabulary, so transformers' resize_token_embeddings would "
            "break its head. Continue without `add_tokens_from`."
        )
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
