"""The model-shape settings (`hidden_size`, `num_hidden_layers`, ...): one optional field per field
of the family's config class, generated from the class itself, so every field it has is accepted
and a misspelt one is an unknown key. Unset fields keep the family's value (its record's
`config_defaults`), else the class's own default, or are derived: SHAPE_DERIVED_UNLESS_SET, and
DERIVED_FROM_TOKENIZER and the family record's `fixed_config` (not settable).
"""

import dataclasses
from dataclasses import field
from functools import cache

from transformers import PretrainedConfig

from recipes.models.families import DERIVED_FROM_TOKENIZER, FAMILIES, MLM_FAMILIES

# Model-shape fields that, unset, are worked out by the recipe rather than left to the config
# class (recipes/models/families.py build_config).
SHAPE_DERIVED_UNLESS_SET = {
    "max_position_embeddings": "enough positions for max_seq_length (the family's rule)",
}


def model_config_arguments(
    config_class: type[PretrainedConfig],
    derived: dict,
    extra_fields: tuple = (),
    own: dict | None = None,
) -> type:
    """A dataclass with one optional field per model-shape field of `config_class`.

    Fields come from the config class itself (minus the generic PretrainedConfig ones and
    `derived`, {name: why it cannot be set}), so a misspelt model key is an unknown key.
    `extra_fields` adds (name, type) pairs the config takes as keyword arguments only; `own`,
    the family's values where they differ from the class's. The class keeps `config_class`,
    `config_defaults` (the values a model gets unless set) and `family_defaults` (which of them
    are the family's) for `--help`, and `not_settable` (`derived`) for recipes/config.py's
    message on such a key.
    """
    generic = set(PretrainedConfig().to_dict())
    # decoder-only knobs mean nothing for an encoder; `use_cache` would also collide with
    # TrainingArguments' own field of that name
    generic |= {"use_cache", "is_decoder", "add_cross_attention"}
    own = own or {}
    defaults = {name: own.get(name, value) for name, value in config_class().to_dict().items()}
    fields, config_defaults = [], {}
    for name, default in defaults.items():
        if name in generic or name in derived or default is None or name.startswith("_"):
            continue
        if type(default) not in (int, float, bool, str):
            continue
        unset = SHAPE_DERIVED_UNLESS_SET.get(name)
        if unset is None:
            config_defaults[name] = default
            whose = "the family's" if name in own else "the class's own"
            unset = f"{whose}, {default!r}"
        help_text = f"{config_class.__name__}.{name}; unset: {unset}."
        fields.append(
            (name, type(default) | None, field(default=None, metadata={"help": help_text}))
        )
    for name, kind in extra_fields:
        help_text = f"{config_class.__name__}(..., {name}=...) keyword"
        if name in own:
            config_defaults[name] = own[name]
            help_text += f"; unset: the family's, {own[name]!r}"
        fields.append((name, kind | None, field(default=None, metadata={"help": help_text + "."})))
    namespace = {
        "config_class": config_class,
        "config_defaults": config_defaults,
        "family_defaults": list(own),
        "not_settable": dict(derived),
    }
    return dataclasses.make_dataclass(
        f"{config_class.__name__}Arguments", fields, namespace=namespace
    )


@cache
def shape_arguments(family: str) -> type:
    """The dataclass of `family`'s model-config fields (every field of its config class)."""
    spec = FAMILIES[family]
    fixed = {name: why for name, (_, why) in spec.fixed_config.items()}
    return model_config_arguments(
        spec.config_class, DERIVED_FROM_TOKENIZER | fixed, spec.extra_fields, spec.config_defaults
    )


@cache
def checkpoint_shape_arguments() -> type:
    """Every family's model-config fields: a checkpoint's family is known only once it is
    read, and whatever is set is checked against it then (checkpoints.load_pretrained)."""
    fields = {}
    for family in MLM_FAMILIES:
        for f in dataclasses.fields(shape_arguments(family)):
            fields.setdefault(f.name, (f.name, f.type, field(default=None, metadata=f.metadata)))
    # the checkpoint's own values; what no checkpoint lets one set, refused with its reason
    not_settable = {}
    for family in MLM_FAMILIES:
        not_settable |= shape_arguments(family).not_settable
    namespace = {"config_class": None, "config_defaults": {}, "not_settable": not_settable}
    return dataclasses.make_dataclass(
        "CheckpointShapeArguments", list(fields.values()), namespace=namespace
    )
