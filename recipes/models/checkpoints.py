"""Loading an existing checkpoint: a local folder or a Hub id (safetensors only), its family, its
weights set up to train as a fresh model of the family would, checked against the tokenizer;
and for fine-tuning, the checkpoint's encoder under a new classifier head.
"""

import copy
import os
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import logging as hf_logging

from recipes.arguments import ContinueArguments
from recipes.errors import UserError
from recipes.models.families import FAMILIES, build_model
from recipes.models.vocabulary import extend_vocabulary
from recipes.runs.finish import weights_checksum


def require_folder_or_hub_id(path: str, field: str, hint: str = "") -> None:
    """A `path` that is no folder and not shaped like a Hub id (`owner/name`) is a typo or a
    missing output: say so, instead of a Hub lookup's cryptic error."""
    if not os.path.isdir(path) and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise UserError(f"`{field}: {path}` is not a folder.{' ' + hint if hint else ''}")


# What is fetched from a Hub repo: config, safetensors weights, tokenizer files. Never pickles.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


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


def checkpoint_positions_needed(family: str, config: PretrainedConfig, max_seq_length: int) -> int:
    """Position-table rows `max_seq_length` needs in a checkpoint of the family (as derived above
    for fresh ones: RoBERTa counts from pad_token_id + 1)."""
    return max_seq_length + config.pad_token_id + 1 if family == "roberta" else max_seq_length


def checkpoint_family(path: str, families: list[str]) -> str:
    """The family of the checkpoint in the local folder `path`: its config's model_type."""
    family = AutoConfig.from_pretrained(path).model_type
    if family not in families:
        raise UserError(
            f"the checkpoint in {path} is a `{family}` model; this recipe continues "
            f"{' or '.join(families)} checkpoints."
        )
    return family


def load_pretrained(
    path: str, families: list[str], overrides: dict, max_seq_length: int, sparse_mlm_head: bool
) -> tuple[str, PreTrainedModel, list[str]]:
    """(family, model, keys the checkpoint lacked): the checkpoint in the local folder `path`,
    set up to train exactly as build_model sets up a fresh model of its family.

    The family is the checkpoint's `model_type`. Weights come from safetensors only and no
    remote code runs (AutoConfig refuses `auto_map` configs without trust_remote_code). The
    model is built by build_model (so the sparse head is the family's own) and given the
    checkpoint's weights, in fp32 whatever dtype they were saved in (bf16 training keeps fp32
    master weights). `overrides` may change dropout (a training setting, not the shape); any
    other key must equal the checkpoint's value, or it is an error that names it."""
    family = checkpoint_family(path, families)
    overrides = dict(overrides)
    attention = overrides.pop("attn_implementation", None)
    config = AutoConfig.from_pretrained(path, attn_implementation=attention)
    for key, value in overrides.items():
        if "dropout" in key:  # how it trains, not what it is
            setattr(config, key, value)
            continue
        current = getattr(config, key, None)
        if current != value:
            raise UserError(
                f"`{key}: {value}` contradicts the checkpoint in {path}, which has "
                f"{key}={current!r}: a pretrained model's shape is fixed. Remove `{key}` "
                "(only dropout keys may differ from the checkpoint)."
            )
    needed = checkpoint_positions_needed(family, config, max_seq_length)
    if getattr(config, "max_position_embeddings", needed) < needed:
        raise UserError(
            f"`max_seq_length: {max_seq_length}` needs {needed} positions; the checkpoint in "
            f"{path} has max_position_embeddings={config.max_position_embeddings}. Lower "
            "max_seq_length."
        )
    model = build_model(family, copy.deepcopy(config), sparse_mlm_head)
    spec = FAMILIES[family]
    pretrained, info = spec.model_class.from_pretrained(
        path, config=config, use_safetensors=True, output_loading_info=True
    )
    model.load_state_dict(pretrained.state_dict())
    return family, model, sorted(info["missing_keys"])


def load_pretrained_parts(path: str, label_names: list[str], max_seq_length: int, attn: str):
    """Tokenizer and the checkpoint's config with this task's labels, checked for fit."""
    require_folder_or_hub_id(
        path,
        "model_name_or_path",
        "Pretrain a model first (e.g. `make demo`) and point to its output_dir, or give a Hub id.",
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(
            path,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            attn_implementation=attn,
        )
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0]
        raise UserError(
            f"could not load a model from `model_name_or_path: {path}` (a pretraining recipe's "
            f"output_dir or a Hub id): {reason}"
        ) from None
    if tokenizer.pad_token is None:
        raise UserError(f"the tokenizer in {path} has no pad token; set `pad_token` and save it.")
    # RoBERTa numbers positions from pad_token_id + 1 (recipes/models/families.py roberta_config)
    offset = config.pad_token_id + 1 if config.model_type == "roberta" else 0
    positions = getattr(config, "max_position_embeddings", max_seq_length) - offset
    if max_seq_length > positions:
        raise UserError(
            f"`max_seq_length: {max_seq_length}` is longer than {path} takes ({positions} "
            "positions, as it was pretrained): lower max_seq_length."
        )
    return tokenizer, config


def pretrained_model(path: str, config, quiet: bool = False):
    """The checkpoint's encoder under a new classifier head; says which weights start fresh
    (unless `quiet`: every later run loads the same)."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the masked-LM head we drop
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, config=config, use_safetensors=True, output_loading_info=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    fresh = sorted(info["missing_keys"])
    if not quiet:
        print(
            f"{type(model).__name__} from {path}: {model.num_parameters() / 1e6:.1f}M "
            f"parameters; new (random) weights: {', '.join(fresh) or 'none'}"
        )
    return model
