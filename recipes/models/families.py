"""Model families, one record each: everything that differs between them (names, how the config
follows from the tokenizer, positions, objective and recipe, the sparse masked-LM head and how it
is called, the FSDP layer, training defaults), and building a fresh model from it. Adding a
family is adding a record here (and its tiny YAML); nothing elsewhere names a family: help
texts, choices and hints are written from these records.

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
    DebertaV2Config,
    DebertaV2ForMaskedLM,
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


DERIVED_FROM_TOKENIZER = {
    "vocab_size": "the model's vocabulary is the tokenizer's, len(tokenizer); choose its size "
    "when training the tokenizer (tokenizer_training's `vocab_size`)",
    "pad_token_id": _FROM_TOKENIZER,
    "bos_token_id": _FROM_TOKENIZER,
    "eos_token_id": _FROM_TOKENIZER,
    "cls_token_id": _FROM_TOKENIZER,
    "sep_token_id": _FROM_TOKENIZER,
}


@dataclass(frozen=True)
class Objective:
    """What a family is pretrained on, and so which entry script trains it."""

    name: str
    recipe: str  # the module `python -m` runs


MLM = Objective("masked language modeling", "recipes.pretrain_mlm")
MLM_NSP = Objective(
    "masked language modeling and next-sentence prediction", "recipes.pretrain_bert"
)


def roberta_config(tokenizer, overrides: dict) -> RobertaConfig:
    return RobertaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        type_vocab_size=1,  # RoBERTa has no segments
        **overrides,
    )


def bert_config(tokenizer, overrides: dict) -> BertConfig:
    return BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **overrides)


def modernbert_config(tokenizer, overrides: dict) -> ModernBertConfig:
    # ModernBERT's defaults are its own tokenizer's ids (pad 50283, cls 50281, sep 50282): with
    # a 30k vocabulary pad=50283 is outside the embedding table, and with a 50k one it would
    # silently name a real token. [CLS]/[SEP] are <s>/</s> for a byte-level BPE tokenizer.
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ModernBertConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else cls,
        eos_token_id=tokenizer.eos_token_id if tokenizer.eos_token_id is not None else sep,
        cls_token_id=cls,
        sep_token_id=sep,
        **overrides,
    )


def deberta_v2_config(tokenizer, overrides: dict) -> DebertaV2Config:
    # DebertaV2Config has no cls/sep ids; bos/eos are the tokenizer's where it has them
    return DebertaV2Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **overrides,
    )


# DeBERTa-v3's encoder (microsoft/deberta-v3-base's and mdeberta-v3-base's config.json), where
# DebertaV2Config's own defaults are deberta-v2-xlarge's (1536 hidden, 24 layers) and, worse,
# no relative attention at all (relative_attention False: a BERT with absolute positions).
# Disentangled attention: content-to-position and position-to-content terms (pos_att_type)
# over relative positions, log-bucketed into 256 buckets (position_buckets: exact within +-128,
# then logarithmic up to max_relative_positions, which -1 sets to max_position_embeddings), one
# key projection shared by content and positions (share_att_key), a LayerNorm on the relative
# embeddings (norm_rel_ebd); no absolute position table (position_biased_input False), no
# segment embeddings (type_vocab_size 0).
DEBERTA_V3 = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "relative_attention": True,
    "position_buckets": 256,
    "max_relative_positions": -1,
    "pos_att_type": "p2c|c2p",
    "share_att_key": True,
    "norm_rel_ebd": "layer_norm",
    "position_biased_input": False,
    "type_vocab_size": 0,
    "layer_norm_eps": 1e-7,
}


@dataclass(frozen=True)
class Family:
    display_name: str  # as the family's authors write it: cards and messages
    # What sets it apart, a few words for `--help`'s model_type choices
    summary: str
    objective: Objective
    config_class: type[PretrainedConfig]
    model_class: type[PreTrainedModel]
    # (tokenizer, overrides) -> config; overrides hold max_position_embeddings already
    config_from_tokenizer: Callable[..., PretrainedConfig]
    # The encoder layer class: one FSDP unit each (fsdp_layer_class_to_wrap). Named here, not in
    # the accelerate config, so that one fsdp.yaml serves every family.
    layer_class: str
    # A small config of the family that trains on a CPU in minutes: where a newcomer should start
    tiny_config: str
    # Why FSDP2 cannot train the family ("" where it can): such a run stops before training
    # (recipes/models/fsdp.py prepare_for_fsdp); FSDP1, DDP and one process are unaffected
    fsdp2_refusal: str = ""
    # The LM head run only at masked positions in training (`sparse_mlm_head`): by the config's
    # own `sparse_prediction` where the model has one, else by recipes/models/sparse_head.py's
    # forward, which runs transformers' `base_model` (the encoder) and then these submodules.
    config_sparse_prediction: bool = False
    mlm_head: str = ""  # the masked-LM head (transform + decoder), e.g. "lm_head"
    # Submodules the head takes after the hidden states, as the model's own forward passes them
    # (DeBERTa's head decodes with the input embedding matrix it is handed)
    mlm_head_args: tuple[str, ...] = ()
    nsp_head: str = ""  # the next-sentence classifier, for MLM + NSP
    # RoBERTa numbers positions from pad_token_id + 1: a 128-token input with pad=1 uses
    # position ids 2..129, so the table needs 128 + 1 + 1 = 130 rows (514 for 512)
    positions_after_pad: bool = False
    # Position-table rows a fresh model gets at least (BERT: 512, as the original)
    min_positions: int = 0
    gated_mlp: bool = False  # GeGLU: the MLP's input projection is 2 x intermediate_size wide
    # Keyword arguments the config class takes that its to_dict() does not list: (name, type)
    extra_fields: tuple[tuple[str, type], ...] = ()
    # The family's own config values where they differ from its config class's defaults: what
    # a fresh model gets unless a model key is set, and what `--help` shows as the default
    config_defaults: dict = field(default_factory=dict)
    # Config fields that are not settable here, name -> (value, why): every model of the family
    # gets the value, fresh or continued (None: the config class derives it)
    fixed_config: dict = field(default_factory=dict)
    # Training settings a model of this family trained from scratch needs where they differ
    # from arguments.TRAINING_DEFAULTS (continuing a checkpoint keeps those); a YAML or the
    # command line still overrides them.
    training_defaults: dict = field(default_factory=dict)

    def positions_needed(self, max_seq_length: int, pad_token_id: int | None) -> int:
        """Position-table rows a `max_seq_length`-token input needs."""
        return max_seq_length + (pad_token_id + 1 if self.positions_after_pad else 0)

    def positions_rule(self) -> str:
        extra = " + pad_token_id + 1" if self.positions_after_pad else ""
        return f"{self.display_name} needs at least max_seq_length{extra}"


FAMILIES = {
    # global_attn_every_n_layers: every n-th layer attends globally, the rest in a window of
    # `local_attention` tokens (ModernBERT: 3 and 128); the config turns it into layer_types.
    # Positions are rotary (no table), so max_position_embeddings only records the length.
    "modernbert": Family(
        "ModernBERT",
        "pre-LayerNorm, GeGLU, rotary positions; the demo's",
        MLM,
        ModernBertConfig,
        ModernBertForMaskedLM,
        modernbert_config,
        layer_class="ModernBertEncoderLayer",
        tiny_config="recipes/configs/modernbert-tiny.yaml",
        config_sparse_prediction=True,
        gated_mlp=True,
        extra_fields=(("global_attn_every_n_layers", int),),
        # Pre-LayerNorm trains stably at a higher peak lr; 30% masking is ModernBERT's own rate
        # (measured: docs/measurements.md, "Masking rate").
        training_defaults={"learning_rate": 1e-3, "mlm_probability": 0.3},
    ),
    "roberta": Family(
        "RoBERTa",
        "post-LayerNorm, learned absolute positions; the tutorial's",
        MLM,
        RobertaConfig,
        RobertaForMaskedLM,
        roberta_config,
        layer_class="RobertaLayer",
        tiny_config="recipes/configs/roberta-tiny.yaml",
        mlm_head="lm_head",
        positions_after_pad=True,
        # Post-LayerNorm: a short warm-up or a high peak lr leaves a small one on the unigram
        # plateau for good (measured: docs/measurements.md, "Defaults that leave the plateau";
        # tests/e2e/test_plateau.py keeps it so).
        training_defaults={"learning_rate": 7e-4, "warmup_steps": 0.3, "mlm_probability": 0.3},
    ),
    "bert": Family(
        "BERT",
        "post-LayerNorm, learned absolute positions and segments",
        MLM_NSP,
        BertConfig,
        BertForPreTraining,
        bert_config,
        layer_class="BertLayer",
        tiny_config="recipes/configs/bert-tiny-nsp.yaml",
        mlm_head="cls.predictions",
        nsp_head="cls.seq_relationship",
        min_positions=512,
    ),
    "deberta-v2": Family(
        "DeBERTa-v2",
        "disentangled attention over relative positions; DeBERTa-v3's and mDeBERTa-v3's "
        "encoder, trained here with masked LM",
        MLM,
        DebertaV2Config,
        DebertaV2ForMaskedLM,
        deberta_v2_config,
        layer_class="DebertaV2Layer",
        tiny_config="recipes/configs/deberta-v2-tiny.yaml",
        # DeBERTa's own head (legacy: False below): dense, LayerNorm, then the input
        # embedding matrix as decoder, called as lm_predictions(hidden, word_embeddings)
        mlm_head="lm_predictions",
        mlm_head_args=("deberta.embeddings.word_embeddings",),
        # the head reads word_embeddings.weight outside the embedding's own forward, where FSDP2
        # has sharded it again; accelerate keeps it gathered only for output embeddings tied to
        # it, and DebertaV2ForMaskedLM names its head's dense layer as those instead
        fsdp2_refusal="DeBERTa's masked-LM head decodes with the word embeddings outside their "
        "own forward, which FSDP2 (as accelerate groups it) has sharded again by then",
        # Relative positions need no table; max_position_embeddings (DeBERTa-v3: 512) sets how
        # far the log buckets reach (max_relative_positions -1)
        min_positions=512,
        # read by the model with getattr; pos_att_type is a field whose class default is None
        extra_fields=(("position_buckets", int), ("share_att_key", bool), ("norm_rel_ebd", str)),
        config_defaults=DEBERTA_V3,
        # transformers' default head (`legacy: True`, a BERT-style `cls.predictions`) is not the
        # one Microsoft's checkpoints hold (`lm_predictions.lm_head`): DeBERTa's own head is
        # what they load into, and so what a model here trains and saves
        fixed_config={
            "legacy": (False, "DeBERTa's own masked-LM head (lm_predictions)"),
            "pooler_hidden_size": (None, "it follows hidden_size"),
        },
        # Post-LayerNorm like RoBERTa: the warm-up and peak lr that keep a small one off the
        # unigram plateau (RoBERTa's, docs/measurements.md, "Defaults that leave the plateau")
        training_defaults={"learning_rate": 7e-4, "warmup_steps": 0.3, "mlm_probability": 0.3},
    ),
}


def families_for(objective: Objective) -> list[str]:
    """The families a recipe trains (its `model_type` choices, the default first)."""
    return [name for name, spec in FAMILIES.items() if spec.objective is objective]


MLM_FAMILIES = families_for(MLM)  # recipes/pretrain_mlm.py's choices
NSP_FAMILIES = families_for(MLM_NSP)  # recipes/pretrain_bert.py's


def choices_help(families: list[str]) -> str:
    """The families, each with what sets it apart, for a `model_type` field's help."""
    return "; ".join(f"'{name}' ({FAMILIES[name].summary})" for name in families)


def display_names(families) -> str:
    """ "ModernBERT, RoBERTa or BERT": the families as their authors write them."""
    names = [FAMILIES[name].display_name for name in families]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def families_with_config_field(name: str) -> list[str]:
    """The families whose config class has the field `name` (e.g. classifier_pooling)."""
    return [family for family, spec in FAMILIES.items() if hasattr(spec.config_class(), name)]


def recipe_hints() -> dict:
    """A `model_type` of a family another recipe trains: which recipe, and its tiny config."""
    return {
        ("model_type", name): f"{spec.display_name} ({spec.objective.name}) has its own "
        f"recipe: python -m {spec.objective.recipe} (e.g. --config {spec.tiny_config})"
        for name, spec in FAMILIES.items()
    }


def display_name(model_type: str) -> str:
    """ "ModernBERT" for `modernbert`; a model type of no family here as it is."""
    spec = FAMILIES.get(model_type)
    return spec.display_name if spec else model_type


def attn_implementation(requested: str, family: str, bf16: bool) -> str:
    """'auto': FlashAttention-2 on a CUDA GPU in bf16 where flash-attn is installed (padded
    batches are unpadded inside transformers' flash path, so no compute goes to padding),
    else PyTorch's SDPA, which runs everywhere."""
    return attention_kernel(requested, FAMILIES[family].model_class, bf16)


def attention_kernel(requested: str, model_class: type[PreTrainedModel], bf16: bool) -> str:
    """attn_implementation for any model class; a class without SDPA (DeBERTa's disentangled
    attention is its own code) gets its eager attention for 'auto', and an error when a
    kernel it lacks is asked for by name."""
    supported = {
        "sdpa": model_class._supports_sdpa,
        "flash_attention_2": model_class._supports_flash_attn,
        "eager": True,
    }
    if requested != "auto":
        if not supported.get(requested, True):
            raise UserError(
                f"`attn_implementation: {requested}`: {model_class.__name__} has no such "
                "kernel in transformers. Set `attn_implementation: auto` (or eager)."
            )
        return requested
    flash = (
        bf16
        and torch.cuda.is_available()
        and importlib.util.find_spec("flash_attn") is not None
        and supported["flash_attention_2"]
    )
    return "flash_attention_2" if flash else "sdpa" if supported["sdpa"] else "eager"


def build_config(family: str, tokenizer, max_seq_length: int, overrides: dict):
    """The family's config for `tokenizer`: its vocabulary and special-token ids, positions
    for `max_seq_length`, and the model keys in `overrides`."""
    spec = FAMILIES[family]
    overrides = dict(overrides)
    needed = spec.positions_needed(max_seq_length, tokenizer.pad_token_id)
    positions = overrides.pop("max_position_embeddings", max(needed, spec.min_positions))
    if positions < needed:
        raise UserError(
            f"`max_position_embeddings: {positions}` is too small for max_seq_length="
            f"{max_seq_length}: {spec.positions_rule()} = {needed}. Remove the key (it is "
            "derived) or lower max_seq_length."
        )
    settings = spec.config_defaults | {"max_position_embeddings": positions} | overrides
    return spec.config_from_tokenizer(tokenizer, settings | fixed_values(spec))


def fixed_values(spec: Family) -> dict:
    return {name: value for name, (value, _) in spec.fixed_config.items() if value is not None}


def build_model(family: str, config: PretrainedConfig, sparse_mlm_head: bool):
    """A fresh model of the family, set up to train with the LM head at masked positions only
    (same loss and gradients as the dense head; tested) when `sparse_mlm_head`.

    Either way the class is the stock one, so the saved checkpoint loads anywhere with no
    custom code, and the loss is normalised by Trainer's `num_items_in_batch` (the step's
    masked-token count across micro-batches and ranks), so gradient accumulation weighs every
    masked token the same."""
    spec = FAMILIES[family]
    for name, value in fixed_values(spec).items():  # a checkpoint's config too
        setattr(config, name, value)
    if spec.config_sparse_prediction:
        config.sparse_prediction = sparse_mlm_head
        model = spec.model_class(config)
        # The instance keeps the setting it was built with; the saved config.json says False,
        # the stock default, so an evaluation of the published model gets the usual dense logits.
        model.config.sparse_prediction = False
        return model
    model = spec.model_class(config)
    if sparse_mlm_head:
        use_sparse_mlm_head(model, spec)
    else:
        # The stock RoBERTa/BERT heads take **kwargs, so Trainer assumes they normalise the loss
        # over accumulated micro-batches themselves; they do not (transformers#47688), and with
        # gradient accumulation the loss and gradients would come out N times too large.
        model.accepts_loss_kwargs = False
    return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
