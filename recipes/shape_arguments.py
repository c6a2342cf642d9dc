"""The model-shape settings (`hidden_size`, `num_hidden_layers`, ...): one optional field per field
of the family's config class, generated from the class itself, so every field it has is accepted
and a misspelt one is an unknown key. Unset fields keep the class's own default (or are derived:
SHAPE_DERIVED_UNLESS_SET, and the family record's DERIVED_FROM_TOKENIZER).
"""

import dataclasses
from dataclasses import field
from functools import cache

from transformers import BertConfig, PretrainedConfig

from recipes.models.families import DERIVED, FAMILIES, MLM_FAMILIES

# Model-shape fields that, unset, are worked out by the recipe rather than left to the config
# class (recipes/models/families.py build_config).
SHAPE_DERIVED_UNLESS_SET = {
    "max_position_embeddings": "enough positions for max_seq_length (the family's rule)",
}


def model_config_arguments(
    config_class: type[PretrainedConfig], derived, extra_fields: tuple = ()
) -> type:
    """A dataclass with one optional field per model-shape field of `config_class`.

    Fields come from the config class itself (minus the generic PretrainedConfig ones and the
    ones we derive from the tokenizer), so a misspelt model key is an unknown key.
    `extra_fields` adds (name, type) pairs the config takes as keyword arguments only. The
    class keeps `config_class` and `config_defaults` (the class's own values) for `--help`.
    """
    generic = set(PretrainedConfig().to_dict())
    # decoder-only knobs mean nothing for an encoder; `use_cache` would also collide with
    # TrainingArguments' own field of that name
    generic |= {"use_cache", "is_decoder", "add_cross_attention"}
    defaults = config_class().to_dict()
    fields, config_defaults = [], {}
    for name, default in defaults.items():
        if name in generic or name in derived or default is None or name.startswith("_"):
            continue
        if type(default) not in (int, float, bool, str):
            continue
        unset = SHAPE_DERIVED_UNLESS_SET.get(name)
        if unset is None:
            config_defaults[name] = default
            unset = f"the class's own, {default!r}"
        help_text = f"{config_class.__name__}.{name}; unset: {unset}."
        fields.append(
            (name, type(default) | None, field(default=None, metadata={"help": help_text}))
        )
    for name, kind in extra_fields:
        help_text = f"{config_class.__name__}(..., {name}=...) keyword."
        fields.append((name, kind | None, field(default=None, metadata={"help": help_text})))
    namespace = {"config_class": config_class, "config_defaults": config_defaults}
    return dataclasses.make_dataclass(
        f"{config_class.__name__}Arguments", fields, namespace=namespace
    )


@cache
def shape_arguments(family: str) -> type:
    """The dataclass of `family`'s model-config fields (every field of its config class)."""
    spec = FAMILIES[family]
    return model_config_arguments(spec.config_class, DERIVED, spec.extra_fields)


@cache
def checkpoint_shape_arguments() -> type:
    """Every family's model-config fields: a checkpoint's family is known only once it is
    read, and whatever is set is checked against it then (checkpoints.load_pretrained)."""
    fields = {}
    for family in MLM_FAMILIES:
        for f in dataclasses.fields(shape_arguments(family)):
            fields.setdefault(f.name, (f.name, f.type, field(default=None, metadata=f.metadata)))
    namespace = {"config_class": None, "config_defaults": {}}  # the checkpoint's own
    return dataclasses.make_dataclass(
        "CheckpointShapeArguments", list(fields.values()), namespace=namespace
    )


BertShapeArguments = model_config_arguments(BertConfig, DERIVED)
