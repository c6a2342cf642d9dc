"""The tokenizer a pretraining run uses: loaded (no remote code) and checked for what masked-LM
training needs (a mask token, a pad token, a long enough model_max_length, the expected size).
"""

import os

from transformers import AutoTokenizer

from recipes.errors import UserError
from recipes.run_folder import not_found_anywhere, require_folder_or_hub_id


def load_tokenizer(
    path: str, max_seq_length: int, expected_vocab_size: int | None = None, where: str = "?"
):
    """AutoTokenizer.from_pretrained (no remote code), checked by check_tokenizer; its size
    against `expected_vocab_size` (set in `where`, a config file or the command line)."""
    hint = (
        "Train a tokenizer with `python -m tokenizer_training.train_tokenizer` and point to its "
        "output_dir."
    )
    require_folder_or_hub_id(path, "tokenizer_name_or_path", hint)
    tokenizer = read_tokenizer(path, f"tokenizer_name_or_path: {path}", hint)
    check_tokenizer(tokenizer, path, max_seq_length)
    if expected_vocab_size is not None and len(tokenizer) != expected_vocab_size:
        # A base config pointed at the wrong tokenizer would train a model of the wrong shape
        # on a vocabulary fitted to other text, silently, for hours.
        raise UserError(
            f"`expected_vocab_size: {expected_vocab_size}` (from {where}), but the tokenizer in "
            f"`tokenizer_name_or_path: {path}` has {len(tokenizer)} tokens. Train the "
            "tokenizer this config names on your corpus (its header has the command), point "
            "`tokenizer_name_or_path` at one of that size, or set `expected_vocab_size` to "
            f"{len(tokenizer)} if this vocabulary is the one you mean."
        )
    return tokenizer


def read_tokenizer(path: str, where: str, hint: str = ""):
    """AutoTokenizer.from_pretrained (no remote code) of a folder or Hub id, with a pad token
    (every recipe pads: evaluation batches, fine-tuning); `where` names the setting."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0]
        if not os.path.isdir(path):
            field, _, value = where.partition(": ")
            raise not_found_anywhere(value or path, field, reason, hint) from None
        raise UserError(f"could not load a tokenizer from `{where}`: {reason}") from None
    if tokenizer.pad_token is None:
        # A bare tokenizer.json lacks both; naming both saves the user a second failed run.
        missing = "no pad token" if tokenizer.mask_token else "no mask token and no pad token"
        raise UserError(
            f"the tokenizer of `{where}` has {missing}; save it with tokenizer_training (it records "
            "its special tokens in tokenizer_config.json) or set them when saving."
        )
    return tokenizer


def check_tokenizer(tokenizer, path: str, max_seq_length: int) -> None:
    if tokenizer.mask_token is None:
        raise UserError(
            f"the tokenizer in {path} has no mask token, so masked-LM training cannot mask "
            "anything. Save it with tokenizer_training (it records <mask>/[MASK] in "
            "tokenizer_config.json) or set `mask_token` when saving."
        )
    if tokenizer.model_max_length < max_seq_length:
        raise UserError(
            f"`max_seq_length: {max_seq_length}` exceeds the tokenizer's model_max_length "
            f"({tokenizer.model_max_length}) in {path}; lower max_seq_length."
        )
