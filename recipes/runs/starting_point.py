"""Where a pretraining run starts, decided here once for both recipes: from scratch (the family
asked for, the tokenizer in tokenizer_name_or_path, a config derived from it) or from a
checkpoint, `model_name_or_path` (its family, its own tokenizer unless another is set, which
must then give every token the checkpoint's id, its weights, its vocabulary extended by
`add_tokens_from`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn
from transformers import PretrainedConfig

from recipes.config import model_overrides, peek
from recipes.data.tokenizer import load_tokenizer
from recipes.errors import UserError
from recipes.models.checkpoints import (
    check_tokenizer_fits,
    checkpoint_family,
    load_pretrained,
    local_checkpoint,
    read_config,
    weights_checksum,
)
from recipes.models.families import FAMILIES, attn_implementation, build_config, build_model
from recipes.models.vocabulary import check_same_vocabulary, extend_vocabulary
from recipes.settings_record import setting_origin


def starting_defaults(argv: list[str] | None, family: str) -> dict:
    """Setting defaults that follow from where a run starts: a checkpoint's own tokenizer
    (unless tokenizer_name_or_path is set), or from scratch the family's training_defaults
    (continuing a checkpoint keeps the recipe's)."""
    checkpoint = peek(argv, "model_name_or_path")
    if checkpoint:
        return {"tokenizer_name_or_path": checkpoint}
    spec = FAMILIES.get(family)  # an unknown family is reported by the full parse
    return dict(spec.training_defaults) if spec else {}


@dataclass
class StartingPoint:
    family: str
    tokenizer: object
    attention: str | None  # the attention kernel the model was asked for (None: its default)
    checkpoint: str | None  # model_name_or_path; None: from scratch
    config: PretrainedConfig | None  # from scratch: the new model's config
    loaded: nn.Module | None  # from a checkpoint: the model, loaded
    sparse_mlm_head: bool
    fresh_model: Callable[..., nn.Module]  # (config, sparse_mlm_head=...) -> a new model

    def model(self) -> nn.Module:
        """The model to train: the checkpoint's (loaded before any tokenizing, since its
        vocabulary may grow), or a new one built now from `config`. The recipes ask for it
        after the data is ready: a new model's weights are drawn then, from the seeded RNG."""
        if self.loaded is not None:
            return self.loaded
        return self.fresh_model(self.config, sparse_mlm_head=self.sparse_mlm_head)


def starting_point(
    model_args,
    data_args,
    training_args,
    shape_args,
    families: list[str],
    *,
    family: str | None = None,
    family_asked: bool = False,
    attention: str | None,
    fresh_model: Callable[..., nn.Module] | None = None,
) -> StartingPoint:
    """The family, the tokenizer and the model-to-be of a pretraining run, checked before any
    data is read.

    model_args: the recipe's PretrainingModelArguments (model_name_or_path, add_tokens_from, ...) with
        `sparse_mlm_head`.
    family: the family to build from scratch, one of the recipe's `families` (None: the
        first); `family_asked`: the user set it, so a checkpoint of another is an error.
    attention: the kernel to ask for ("auto": the family's best here; None: the config's).
    fresh_model: builds a new model from its config and `sparse_mlm_head` (default: the
        family's, build_model)."""
    family = family or families[0]
    checkpoint = model_args.model_name_or_path
    tokenizer_path = data_args.tokenizer_name_or_path
    if checkpoint:
        folder = local_checkpoint(checkpoint)  # a Hub id is downloaded: safetensors only
        family_found = checkpoint_family(read_config(folder, checkpoint), families, checkpoint)
        if family_asked and family != family_found:
            raise UserError(
                f"`model_type: {family}`, but {checkpoint} is a `{family_found}` checkpoint."
            )
        family = family_found
        tokenizer_path = folder if tokenizer_path == checkpoint else tokenizer_path
    tokenizer = load_tokenizer(
        tokenizer_path,
        data_args.max_seq_length,
        data_args.expected_vocab_size,
        setting_origin(training_args, "expected_vocab_size"),
    )
    if checkpoint and tokenizer_path != folder:  # not the checkpoint's own: same ids?
        check_same_vocabulary(tokenizer, folder, checkpoint, tokenizer_path)
    overrides = model_overrides(shape_args)
    if attention is not None:
        attention = attn_implementation(attention, family, training_args.bf16)
        overrides["attn_implementation"] = attention
    sparse = model_args.sparse_mlm_head
    fresh_model = fresh_model or partial(build_model, family)
    if not checkpoint:
        config = build_config(family, tokenizer, data_args.max_seq_length, overrides)
        return StartingPoint(family, tokenizer, attention, None, config, None, sparse, fresh_model)
    _, model, missing = load_pretrained(
        folder, [family], overrides, data_args.max_seq_length, sparse, where=checkpoint
    )
    if missing:
        print(f"not in the checkpoint, so initialised at random: {', '.join(missing)}")
    check_tokenizer_fits(tokenizer, model, checkpoint)
    # the same checksum finish_run prints at the end: a test compares it with the checkpoint's
    print(f"starting from {checkpoint} ({family}): weights checksum {weights_checksum(model)}")
    if model_args.add_tokens_from:
        extend_vocabulary(tokenizer, model, model_args.add_tokens_from, model_args.max_added_tokens)
    return StartingPoint(family, tokenizer, attention, checkpoint, None, model, sparse, fresh_model)
