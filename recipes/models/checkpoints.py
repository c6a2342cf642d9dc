"""Loading an existing checkpoint, one way for continued pretraining and fine-tuning alike: the path
checked, a Hub id downloaded (safetensors only), the config read, its positions checked against
max_seq_length. Continued pretraining then gets the weights set up to train as a fresh model of
the family would (`load_pretrained`); fine-tuning the encoder under a new classifier head
(`load_pretrained_parts`, `pretrained_model`), never a task head it was fine-tuned with
(`check_task_head`).
"""

import copy
import hashlib
import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import logging as hf_logging
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from recipes.data.tokenizer import read_tokenizer
from recipes.errors import UserError
from recipes.models.families import FAMILIES, attention_kernel, build_model
from recipes.run_folder import not_found_anywhere, read_run_config, require_folder_or_hub_id

# What is fetched from a Hub repo: config, safetensors weights, tokenizer files. Never pickles.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


def local_checkpoint(name_or_path: str, hint: str = "") -> str:
    """A local folder holding the checkpoint: `name_or_path` itself, or a Hub id downloaded
    through huggingface_hub (HF_ENDPOINT and HF_TOKEN honoured), config, safetensors and
    tokenizer files only. `hint`: what to do when `name_or_path` is no folder."""
    require_folder_or_hub_id(name_or_path, "model_name_or_path", hint)
    if os.path.isdir(name_or_path):
        folder = name_or_path
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError

        try:
            folder = snapshot_download(name_or_path, allow_patterns=HUB_PATTERNS)
        except (HfHubHTTPError, OSError, ValueError) as err:
            reason = str(err).strip().splitlines()[0]
            raise not_found_anywhere(name_or_path, "model_name_or_path", reason, hint) from None
    if not (Path(folder) / "config.json").is_file():
        raise UserError(f"`model_name_or_path: {name_or_path}` has no config.json.")
    if not list(Path(folder).glob("*.safetensors")):
        raise UserError(
            f"`model_name_or_path: {name_or_path}` has no safetensors weights. Pickled "
            "pytorch_model.bin files can run code when loaded and are not read here; convert "
            "them (transformers: from_pretrained then save_pretrained writes safetensors)."
        )
    return folder


def read_config(folder: str, where: str, **settings) -> PretrainedConfig:
    """The checkpoint's config with `settings` applied. No remote code runs: AutoConfig refuses
    `auto_map` configs without trust_remote_code."""
    try:
        return AutoConfig.from_pretrained(folder, **settings)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0]
        raise UserError(
            f"could not read the config of the checkpoint in {where}: {reason}"
        ) from None


def check_positions(config: PretrainedConfig, max_seq_length: int, where: str) -> None:
    """`max_seq_length` must fit the checkpoint's position table, counted as its family counts
    positions (a model type of no family here: from 0)."""
    spec = FAMILIES.get(config.model_type)
    needed = spec.positions_needed(max_seq_length, config.pad_token_id) if spec else max_seq_length
    rows = getattr(config, "max_position_embeddings", needed)
    if rows < needed:
        rule = f" ({spec.positions_rule()})" if spec else ""
        raise UserError(
            f"`max_seq_length: {max_seq_length}` needs {needed} positions{rule}; the "
            f"checkpoint in {where} has max_position_embeddings={rows}, as it was pretrained. "
            "Lower max_seq_length."
        )


def checkpoint_family(config: PretrainedConfig, families: list[str], where: str) -> str:
    """The checkpoint's family: its config's model_type, one of the recipe's `families`."""
    family = config.model_type
    if family not in families:
        raise UserError(
            f"the checkpoint in {where} is a `{family}` model; this recipe continues "
            f"{' or '.join(families)} checkpoints."
        )
    return family


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


# ---- Continued pretraining ------------------------------------------------------------------


def load_pretrained(
    path: str,
    families: list[str],
    overrides: dict,
    max_seq_length: int,
    sparse_mlm_head: bool,
    where: str | None = None,
) -> tuple[str, PreTrainedModel, list[str]]:
    """(family, model, keys the checkpoint lacked): the checkpoint in the local folder `path`
    (named `where` in messages), set up to train exactly as build_model sets up a fresh model
    of its family.

    The family is the checkpoint's `model_type`. The model is built by build_model (so the
    sparse head is the family's own) and given the checkpoint's weights, safetensors only, in
    fp32 whatever dtype they were saved in (bf16 training keeps fp32 master weights).
    `overrides` may change dropout (a training setting, not the shape); any other key must
    equal the checkpoint's value, or it is an error that names it."""
    where = where or path
    overrides = dict(overrides)
    attention = overrides.pop("attn_implementation", None)
    config = read_config(path, where, attn_implementation=attention)
    family = checkpoint_family(config, families, where)
    for key, value in overrides.items():
        if "dropout" in key:  # how it trains, not what it is
            setattr(config, key, value)
            continue
        current = getattr(config, key, None)
        if current != value:
            raise UserError(
                f"`{key}: {value}` contradicts the checkpoint in {where}, which has "
                f"{key}={current!r}: a pretrained model's shape is fixed. Remove `{key}` "
                "(only dropout keys may differ from the checkpoint)."
            )
    check_positions(config, max_seq_length, where)
    model = build_model(family, copy.deepcopy(config), sparse_mlm_head)
    # as build_model set it up (the family's fixed config values): the same weight names
    pretrained, info = FAMILIES[family].model_class.from_pretrained(
        path, config=copy.deepcopy(model.config), use_safetensors=True, output_loading_info=True
    )
    model.load_state_dict(pretrained.state_dict())
    return family, model, sorted(info["missing_keys"])


# ---- Fine-tuning ----------------------------------------------------------------------------

NO_CHECKPOINT_HINT = (
    "Pretrain a model first (e.g. `make demo`) and point to its output_dir, or give a Hub id."
)


def load_pretrained_parts(path: str, label_names: list[str], max_seq_length: int, attn: str):
    """Tokenizer and the checkpoint's config with this task's labels and the attention kernel
    `attn` ('auto': SDPA where the model has it), checked for fit."""
    folder = local_checkpoint(path, NO_CHECKPOINT_HINT)
    tokenizer = read_tokenizer(folder, f"model_name_or_path: {path}")
    config = read_config(
        folder,
        path,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
    )
    classifier = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING.get(type(config), None)
    if classifier is not None:  # else AutoModelForSequenceClassification says it has none
        config._attn_implementation = attention_kernel(attn, classifier, bf16=False)
    check_positions(config, max_seq_length, path)
    return tokenizer, config


# Architectures fine-tuning starts from: a pretraining head (dropped for the new classifier) or
# none (`RobertaModel`). Any other `*For*` class was trained for a task.
PRETRAINING_HEADS = ("ForMaskedLM", "ForPreTraining")
# Weight names only a task head has (sequence or token classification, question answering).
TASK_HEAD_WEIGHTS = ("classifier.", "qa_outputs.", "score.")


def weight_names(folder: str) -> list[str]:
    """The names of the weights in the checkpoint's safetensors files (headers only)."""
    names = []
    for file in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(file, framework="pt") as weights:
                names += list(weights.keys())
        except (SafetensorError, OSError) as err:
            raise UserError(
                f"could not read the weights in {file}: {err}. Save the model again (or "
                "download it again): the file is damaged or incomplete."
            ) from None
    return names


def task_head(folder: str) -> str | None:
    """The task head the checkpoint in `folder` carries, described (architecture, labels), or
    None: a masked-LM or pretraining head, or none. Its config's `architectures` say, and so do
    classifier weights in its safetensors, whatever the config names."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}  # read_config says what is wrong with it
    config = config if isinstance(config, dict) else {}
    heads = [
        arch
        for arch in config.get("architectures") or []
        if "For" in arch and not arch.endswith(PRETRAINING_HEADS)
    ]
    weights = [name for name in weight_names(folder) if name.startswith(TASK_HEAD_WEIGHTS)]
    if not heads and not weights:
        return None
    what = " / ".join(heads) or f"weights {', '.join(weights[:3])}"
    labels = [str(label) for label in (config.get("id2label") or {}).values()]
    if labels and heads and not heads[0].endswith("ForQuestionAnswering"):
        shown = ", ".join(labels[:6]) + (", ..." if len(labels) > 6 else "")
        what += f" with {len(labels)} labels ({shown})"
    return what


def recorded_base(folder: str) -> str | None:
    """The `model_name_or_path` a run of these recipes started from, as its run_config.yaml
    (written beside the model) records it; None: none recorded (from scratch, or not ours)."""
    base = read_run_config(folder).get("model_name_or_path")
    return str(base) if base else None


def check_task_head(folder: str, path: str, discard: bool) -> str | None:
    """Fine-tuning measures what pretraining gives a new classifier: a checkpoint that is a
    fine-tuned model already (`path`, in `folder`) would bring its trained head along (and a
    head of another label count fails to load). Refused, unless `discard` (the option
    discard_task_head): then its head is dropped and a new one starts from random weights, as
    pretrained_model does. Returns the head found, described (None: none)."""
    head = task_head(folder)
    if head is None:
        return None
    if not discard:
        came_from = recorded_base(folder)
        origin = f" (`{came_from}`, by its run_config.yaml)" if came_from else ""
        raise UserError(
            f"`model_name_or_path: {path}` is a fine-tuned model already: it has a task head, "
            f"{head}. Fine-tuning it would reuse that trained head (or fail on another label "
            "count) and tilt the comparison with random weights. Fine-tune from the masked-LM "
            f"checkpoint it came from{origin}, or set `discard_task_head: true` to drop this "
            "head and start a new one from random weights."
        )
    print(
        f"discard_task_head: {path} has a task head, {head}: it is discarded, and a new "
        "classifier head starts from random weights."
    )
    return head


def pretrained_model(path: str, config, quiet: bool = False):
    """The checkpoint's encoder under a new classifier head; says which weights start fresh
    (unless `quiet`: every later run loads the same). A checkpoint with a task head (refused by
    check_task_head unless discard_task_head is set) gives its encoder only: the head it was
    fine-tuned with is never loaded."""
    folder = local_checkpoint(path, NO_CHECKPOINT_HINT)  # a Hub id: the files downloaded above
    discarded = task_head(folder)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the masked-LM head we drop
    try:
        if discarded is None:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                folder, config=config, use_safetensors=True, output_loading_info=True
            )
        else:  # the class itself: the Auto class wants a path with a state_dict
            model, info = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)].from_pretrained(
                None, config=config, state_dict=encoder_weights(folder, config),
                output_loading_info=True,
            )  # fmt: skip
    finally:
        hf_logging.set_verbosity(verbosity)
    fresh = sorted(info["missing_keys"])
    if not quiet:
        note = f" (the checkpoint's task head, {discarded}, discarded)" if discarded else ""
        print(
            f"{type(model).__name__} from {path}: {model.num_parameters() / 1e6:.1f}M "
            f"parameters; new (random) weights: {', '.join(fresh) or 'none'}{note}"
        )
    return model


def encoder_weights(folder: str, config) -> dict:
    """The checkpoint's encoder weights alone: those under the classifier class's base model
    (`roberta.`, `bert.`, `model.`), without any head."""
    prefix = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)].base_model_prefix + "."
    weights = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        weights.update(load_file(file))
    return {name: tensor for name, tensor in weights.items() if name.startswith(prefix)}


def weights_checksum(model) -> str:
    """A short digest of the parameter values. Data-parallel ranks end training with the same
    one (else they diverged), and the saved model reloaded with from_pretrained has it too.
    Under FSDP2 a parameter is a DTensor, one shard per rank: its full value is gathered, a
    collective, so every rank must call this (finish_run does). Under ZeRO-3 each rank holds a
    shard, so there the ranks' digests differ."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        value = param.detach()
        if hasattr(value, "full_tensor"):  # torch.distributed.tensor.DTensor (FSDP2)
            value = value.full_tensor()
        digest.update(name.encode())
        # a copy: numpy() would pin the parameter's own storage, which FSDP2 frees on resharding
        digest.update(value.float().cpu().clone().numpy().tobytes())
    return digest.hexdigest()[:12]
