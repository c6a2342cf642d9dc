"""Model families in one place: each family's record (config class, model class, how its config
follows from the tokenizer, its training defaults, its layer class), and building a fresh model.

Correct by construction: vocabulary size and special-token ids always come from the tokenizer
(a fresh tokenizer's ids differ from every config class's defaults: RobertaConfig assumes pad=1,
ModernBertConfig pad=50283), and position tables are sized for the sequence length.
"""

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import (
    BertConfig,
    BertForPreTraining,
    ModernBertConfig,
    ModernBertForMaskedLM,
    PretrainedConfig,
    PreTrainedModel,
    RobertaConfig,
    RobertaForMaskedLM,
)

from recipes.errors import UserError
from recipes.models.sparse_head import use_sparse_mlm_head

# Model fields derived from the tokenizer. Setting one by hand could only disagree with it.
_FROM_TOKENIZER = "it is copied from the tokenizer"


DERIVED = {
    "vocab_size": "the model's vocabulary is the tokenizer's, len(tokenizer); choose its size "
    "when training the tokenizer (tokenizer_training's `vocab_size`)",
    "pad_token_id": _FROM_TOKENIZER,
    "bos_token_id": _FROM_TOKENIZER,
    "eos_token_id": _FROM_TOKENIZER,
    "cls_token_id": _FROM_TOKENIZER,
    "sep_token_id": _FROM_TOKENIZER,
}


def _positions(overrides: dict, max_seq_length: int, needed: int, why: str) -> int:
    positions = overrides.pop("max_position_embeddings", needed)
    if positions < needed:
        raise UserError(
            f"`max_position_embeddings: {positions}` is too small for max_seq_length="
            f"{max_seq_length}: {why} = {needed}. Remove the key (it is derived) or lower "
            "max_seq_length."
        )
    return positions


def roberta_config(tokenizer, max_seq_length: int, overrides: dict) -> RobertaConfig:
    # RoBERTa numbers positions from pad_token_id + 1, so a 128-token input with pad=1 uses
    # position ids 2..129: the table needs 128 + 1 + 1 = 130 rows (514 for 512).
    pad = tokenizer.pad_token_id
    needed = max_seq_length + pad + 1
    positions = _positions(
        overrides, max_seq_length, needed, "RoBERTa needs max_seq_length + pad_token_id + 1"
    )
    return RobertaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=pad,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        max_position_embeddings=positions,
        type_vocab_size=1,  # RoBERTa has no segments
        **overrides,
    )


def bert_config(tokenizer, max_seq_length: int, overrides: dict) -> BertConfig:
    # BERT numbers positions from 0; 512 rows as the original unless longer inputs need more.
    overrides.setdefault("max_position_embeddings", max(512, max_seq_length))
    positions = _positions(
        overrides, max_seq_length, max_seq_length, "BERT needs at least max_seq_length"
    )
    return BertConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=positions,
        **overrides,
    )


def modernbert_config(tokenizer, max_seq_length: int, overrides: dict) -> ModernBertConfig:
    # ModernBERT's defaults are its own tokenizer's ids (pad 50283, cls 50281, sep 50282): with
    # a 30k vocabulary pad=50283 is outside the embedding table, and with a 50k one it would
    # silently name a real token. [CLS]/[SEP] are <s>/</s> for a byte-level BPE tokenizer.
    # Positions are rotary (no table), so max_position_embeddings only records the length.
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    positions = _positions(
        overrides, max_seq_length, max_seq_length, "it must cover at least max_seq_length"
    )
    return ModernBertConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else cls,
        eos_token_id=tokenizer.eos_token_id if tokenizer.eos_token_id is not None else sep,
        cls_token_id=cls,
        sep_token_id=sep,
        max_position_embeddings=positions,
        **overrides,
    )


@dataclass(frozen=True)
class Family:
    config_class: type[PretrainedConfig]
    model_class: type[PreTrainedModel]
    derive_config: Callable[..., PretrainedConfig]  # (tokenizer, max_seq_length, overrides)
    # How the LM head runs only at masked positions during training: "forward" swaps in
    # recipes/models/sparse_head.py; "native" uses the model's own `sparse_prediction`.
    sparse: str
    # Keyword arguments the config class takes that its to_dict() does not list: (name, type)
    extra_fields: tuple[tuple[str, type], ...] = ()
    # Training settings a model of this family trained from scratch needs where they differ
    # from config.TRAINING_DEFAULTS (continuing a checkpoint keeps those); a YAML or the
    # command line still overrides them.
    training_defaults: dict = field(default_factory=dict)
    # The encoder layer class: one FSDP unit each (fsdp_layer_class_to_wrap). Named here, not in
    # the accelerate config, so that one fsdp.yaml serves every family.
    layer_class: str = ""


FAMILIES = {
    # Post-LayerNorm: a short warm-up or a high peak lr leaves a small one on the unigram
    # plateau for good. On an unseen corpus (README "Defaults that leave the plateau"; bf16 on
    # a 2-core AMD EPYC Zen 4), 300 steps at lr 1e-3 with 6% warm-up ended exactly at the
    # most-frequent-token floor; lr 7e-4 with 30% warm-up and 30% masking reached 2.0x the
    # floor (tests/e2e/test_plateau.py).
    "roberta": Family(
        RobertaConfig,
        RobertaForMaskedLM,
        roberta_config,
        "forward",
        training_defaults={"learning_rate": 7e-4, "warmup_steps": 0.3, "mlm_probability": 0.3},
        layer_class="RobertaLayer",
    ),
    # global_attn_every_n_layers: every n-th layer attends globally, the rest in a window of
    # `local_attention` tokens (ModernBERT: 3 and 128); the config turns it into layer_types.
    "modernbert": Family(
        ModernBertConfig,
        ModernBertForMaskedLM,
        modernbert_config,
        "native",
        extra_fields=(("global_attn_every_n_layers", int),),
        # Pre-LayerNorm trains stably at a higher peak lr; 30% masking is ModernBERT's own rate
        # (held-out accuracy 0.320 vs 0.309 at 15% after 900 demo steps, bf16 on a 2-core AMD
        # EPYC Zen 4, the demo's earlier held-out set).
        training_defaults={"learning_rate": 1e-3, "mlm_probability": 0.3},
        layer_class="ModernBertEncoderLayer",
    ),
    # masked LM + next-sentence prediction: recipes/pretrain_bert.py
    "bert": Family(BertConfig, BertForPreTraining, bert_config, "forward", layer_class="BertLayer"),
}


MLM_FAMILIES = ["modernbert", "roberta"]  # recipes/pretrain_mlm.py's choices


def attn_implementation(requested: str, family: str, bf16: bool) -> str:
    """'auto': FlashAttention-2 on a CUDA GPU in bf16 where flash-attn is installed (padded
    batches are unpadded inside transformers' flash path, so no compute goes to padding),
    else PyTorch's SDPA, which runs everywhere."""
    if requested != "auto":
        return requested
    flash = (
        bf16
        and torch.cuda.is_available()
        and importlib.util.find_spec("flash_attn") is not None
        and FAMILIES[family].model_class._supports_flash_attn
    )
    return "flash_attention_2" if flash else "sdpa"


def build_config(family: str, tokenizer, max_seq_length: int, overrides: dict):
    return FAMILIES[family].derive_config(tokenizer, max_seq_length, dict(overrides))


def build_model(family: str, config: PretrainedConfig, sparse_mlm_head: bool):
    """A fresh model of the family, set up to train with the LM head at masked positions only
    (same loss and gradients as the dense head; tested) when `sparse_mlm_head`.

    Either way the class is the stock one, so the saved checkpoint loads anywhere with no
    custom code, and the loss is normalised by Trainer's `num_items_in_batch` (the step's
    masked-token count across micro-batches and ranks), so gradient accumulation weighs every
    masked token the same."""
    spec = FAMILIES[family]
    if spec.sparse == "native":
        config.sparse_prediction = sparse_mlm_head
        model = spec.model_class(config)
        # The instance keeps the setting it was built with; the saved config.json says False,
        # the stock default, so an evaluation of the published model gets the usual dense logits.
        model.config.sparse_prediction = False
        return model
    model = spec.model_class(config)
    if sparse_mlm_head:
        use_sparse_mlm_head(model)
    else:
        # The stock RoBERTa/BERT heads take **kwargs, so Trainer assumes they normalise the loss
        # over accumulated micro-batches themselves; they do not (transformers#47688), and with
        # gradient accumulation the loss and gradients would come out N times too large.
        model.accepts_loss_kwargs = False
    return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
