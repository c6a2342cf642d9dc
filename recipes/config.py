"""Configuration: one home for every knob, typed, with help strings.

A run is a YAML file plus command-line overrides:

    python -m recipes.pretrain_mlm --config recipes/configs/roberta-tiny.yaml --max_steps 50

Order of precedence, lowest first: dataclass defaults, the recipe's `TRAINING_DEFAULTS`, the
YAML file, the command line. Every key must name a field: an unknown or misspelt key is an error
with a suggestion, never silently dropped (run_mlm.py's `config_overrides` string and untyped
`cfg.get(key, default)` both swallow typos).

Model-shape keys (`hidden_size`, `num_hidden_layers`, ...) are generated from the model config
class itself, so every `RobertaConfig`/`BertConfig` field is accepted and nothing else is.
"""

import argparse
import dataclasses
import difflib
import os
import sys
from dataclasses import field
from pathlib import Path

import torch
import yaml
from transformers import HfArgumentParser, PretrainedConfig, TrainingArguments

from recipes.errors import UserError
from recipes.models.families import DERIVED
from recipes.runs.precision import resolve_bf16


def model_config_arguments(
    config_class: type[PretrainedConfig], derived, extra_fields: tuple = ()
) -> type:
    """A dataclass with one optional field per model-shape field of `config_class`.

    Fields come from the config class itself (minus the generic PretrainedConfig ones and the
    ones we derive from the tokenizer), so a misspelt model key is an unknown key.
    `extra_fields` adds (name, type) pairs the config takes as keyword arguments only.
    """
    generic = set(PretrainedConfig().to_dict())
    # decoder-only knobs mean nothing for an encoder; `use_cache` would also collide with
    # TrainingArguments' own field of that name
    generic |= {"use_cache", "is_decoder", "add_cross_attention"}
    defaults = config_class().to_dict()
    fields = []
    for name, default in defaults.items():
        if name in generic or name in derived or default is None or name.startswith("_"):
            continue
        if type(default) not in (int, float, bool, str):
            continue
        help_text = f"{config_class.__name__}.{name} (default {default!r})."
        fields.append(
            (name, type(default) | None, field(default=None, metadata={"help": help_text}))
        )
    for name, kind in extra_fields:
        help_text = f"{config_class.__name__}(..., {name}=...) keyword."
        fields.append((name, kind | None, field(default=None, metadata={"help": help_text})))
    return dataclasses.make_dataclass(f"{config_class.__name__}Arguments", fields)


def model_overrides(model_config_args) -> dict:
    """The model-shape fields the user set, ready for `config_class(**overrides)`."""
    return {k: v for k, v in dataclasses.asdict(model_config_args).items() if v is not None}


# Keys users carry over from older transformers or run_mlm.py, and what to use instead.
RENAMED_KEYS = {
    "evaluation_strategy": "eval_strategy",
    "warmup_ratio": "warmup_steps (a float below 1 is read as a ratio)",
    "no_cuda": "use_cpu",
    "logging_dir": "the TENSORBOARD_LOGGING_DIR environment variable",
    "tokenizer_name": "tokenizer_name_or_path",
    "max_position_embedding": "max_position_embeddings (it is derived from max_seq_length)",
    "per_gpu_train_batch_size": "per_device_train_batch_size",
    "per_gpu_eval_batch_size": "per_device_eval_batch_size",
}


def _unknown_key_error(key: str, known: list[str], where: str) -> UserError:
    if key in DERIVED:
        return UserError(f"`{key}` in {where} cannot be set: {DERIVED[key]}. Remove it.")
    hint = RENAMED_KEYS.get(key)
    if hint is None:
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
        hint = " or ".join(close) if close else None
    fix = f" Did you mean {hint}?" if hint else " Run with --help to list every field."
    return UserError(f"unknown config key `{key}` in {where}.{fix}")


def parse_config(dataclass_types: list[type], argv: list[str] | None = None, defaults=None):
    """Parse `--config FILE.yaml` plus `--field value` overrides into the given dataclasses.

    YAML values keep their YAML types and go straight into the dataclasses (argparse would
    push string defaults through its type converters); command-line values are converted by
    the argparse types HfArgumentParser derives from the field annotations.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(dataclass_types, allow_abbrev=False)
    parser.add_argument("--config", type=str, default=None, help="A YAML file of fields.")
    if "-h" in argv or "--help" in argv:
        parser.parse_args(["--help"])  # prints every field with its help and default; exits
    known = sorted(a.dest for a in parser._actions if a.dest not in ("help", "config"))
    # `--bf16 auto` is no boolean for argparse: take it out and resolve it below
    auto = [
        i
        for i, t in enumerate(argv)
        if t == "--bf16=auto" or argv[i - 1 : i + 1] == ["--bf16", "auto"]
    ]
    for i in reversed(auto):
        del argv[i - (argv[i] == "auto") : i + 1]

    # Only what the command line names explicitly: no argparse defaults.
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    for token in argv:
        name = token[2:].split("=")[0] if token.startswith("--") else None
        if name and name != "config" and name not in known:
            if not (name.startswith("no_") and name[3:] in known):
                raise _unknown_key_error(name, known, "the command line")

    # argparse would print the usage of every field (hundreds of lines) above its one-line error
    def fail(message):
        raise UserError(f"{message} (on the command line). Run with --help to list every field.")

    parser.error = fail
    cli = vars(parser.parse_args(argv))
    if auto:
        cli["bf16"] = "auto"
    config_path = cli.pop("config", None)

    # Each layer overrides the one before; `origins` says which layer a value came from.
    values = dict(defaults or {})
    origins = dict.fromkeys(values, "recipe default")
    if config_path is not None:
        actions = {a.dest: a for a in parser._actions}
        for key, value in _load_yaml(Path(config_path), known).items():
            values[key] = _yaml_value(actions[key], value, config_path)
            origins[key] = config_path
    values.update(cli)
    origins.update(dict.fromkeys(cli, "command line"))
    _drop_stale_validation_files(values, origins)
    precision_reason = None
    if values.get("bf16") == "auto":
        values["bf16"], precision_reason = resolve_bf16(
            bool(values.get("use_cpu")), bool(values.get("fp16"))
        )
        origins["bf16"] = f"derived: bf16 auto, {precision_reason}"
    if values.get("bf16") is True and not values.get("use_cpu") and not torch.cuda.is_available():
        # TrainingArguments refuses bf16 without a GPU unless told the CPU is meant
        values["use_cpu"], origins["use_cpu"] = True, "derived: bf16 on a machine without a GPU"
    try:
        parsed = parser.parse_dict(values)
    except ValueError as err:  # TrainingArguments validates in __post_init__
        raise UserError(f"invalid training argument: {err}") from None
    except TypeError as err:
        raise UserError(f"invalid config value: {err}") from None
    for args in parsed:
        if isinstance(args, TrainingArguments):
            _check_launch(args)
            # read by outputs.py: run_config.yaml, the card
            args.precision_reason = (
                precision_reason or f"bf16: {args.bf16} ({origins.get('bf16', 'default')})"
            )
            args.run_settings = {"values": recorded_values(values, origins), "origins": origins}
    if os.environ.get("RANK", "0") == "0":
        print(_describe_settings(parsed, values, origins))
        for args in parsed:
            if isinstance(args, TrainingArguments):
                print(f"precision: {'bf16' if args.bf16 else 'fp32'} ({args.precision_reason})")
    return list(parsed)


def recorded_values(values: dict, origins: dict) -> dict:
    """What run_config.yaml records: every value, but none detected on this machine. `bf16:
    auto` stays `auto` and a `use_cpu` derived from the missing GPU is left out, so a rerun on
    another machine (a GPU one, a CPU without native bf16) detects them again instead of
    inheriting this machine's answer. Secrets are never recorded."""
    recorded = {}
    for key, value in values.items():
        origin = str(origins.get(key, ""))
        if is_secret(key) or (origin.startswith("derived") and key == "use_cpu"):
            continue
        recorded[key] = "auto" if origin.startswith("derived: bf16 auto") else value
    return recorded


def _drop_stale_validation_files(values: dict, origins: dict) -> None:
    """A YAML's `validation_files` hold out part of *its* `train_files` (the demo configs: six
    plays). Given other `train_files` on the command line, evaluating on the YAML's held-out
    files would measure the wrong corpus (or fail where it is absent): they are dropped, and a
    share of the new train_files is held out instead, unless validation_files is given too."""
    if origins.get("train_files") != "command line":
        return
    source = origins.get("validation_files")
    if values.get("validation_files") and source not in (None, "command line"):
        print(
            f"validation_files from {source} not used: train_files was given on the command "
            "line, so a share of it is held out instead (or set --validation_files)"
        )
        del values["validation_files"], origins["validation_files"]


def setting_origin(training_args, key: str) -> str:
    """Where a setting came from (a YAML file, the command line, a default), for messages."""
    return getattr(training_args, "run_settings", {}).get("origins", {}).get(key, "a default")


def is_secret(key: str) -> bool:
    """hub_token and the like, never printed or written down; not tokenizer_name_or_path."""
    return "token" in key.lower().split("_")


def peek(argv: list[str] | None, key: str) -> str | None:
    """A field's value from the command line or the `--config` YAML, before the full parse (a
    recipe needs `model_type` to know which model fields exist)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    found, config_path = None, None
    for i, token in enumerate(argv):
        for name in (key, "config"):
            value = None
            if token.startswith(f"--{name}="):
                value = token.split("=", 1)[1]
            elif token == f"--{name}" and i + 1 < len(argv):
                value = argv[i + 1]
            if value is not None and name == key:
                found = value
            elif value is not None:
                config_path = value
    if found is None and config_path and Path(config_path).is_file():
        try:
            loaded = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
        except yaml.YAMLError:
            return None  # the full parse reports it
        if isinstance(loaded, dict) and loaded.get(key) is not None:
            found = str(loaded[key])
    return found


def _describe_settings(parsed, values: dict, origins: dict) -> str:
    """Every setting that differs from its dataclass default, and where it came from."""
    defaults = {}
    for args in parsed:
        for f in dataclasses.fields(args):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
    rows = [
        f"  {key}: {values[key]!r}  ({origins[key]})"
        for key in sorted(values)
        if not is_secret(key) and values[key] != defaults.get(key, dataclasses.MISSING)
    ]
    return "settings that differ from the defaults (where each came from):\n" + "\n".join(rows)


def _check_launch(training_args) -> None:
    # accelerate launch and torchrun export WORLD_SIZE. Without GPUs, Trainer takes those
    # processes for separate one-process runs unless use_cpu is set (then gloo): each would
    # train alone and all would write to output_dir at once.
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        raise UserError(
            f"{launched} processes were launched but Trainer sees {training_args.world_size}: "
            "on a machine without GPUs set `use_cpu: true` (DDP over the gloo backend)."
        )


def _load_yaml(path: Path, known: list[str]) -> dict:
    if not path.is_file():
        raise UserError(f"config file {path} does not exist.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{path} must be a mapping of `field: value` lines.")
    for key in loaded:
        if key not in known:
            raise _unknown_key_error(key, known, str(path))
    return loaded


def _yaml_value(action: argparse.Action, value, where: str):
    """Check a YAML value as the command line would. YAML 1.1 reads `5e-4` (no dot) as a
    string, which would fail hours later in the optimizer: numeric fields convert strings."""
    if isinstance(value, str) and action.type in (int, float):
        try:
            return action.type(value)
        except ValueError:
            kind = "an integer" if action.type is int else "a number"
            raise UserError(f"`{action.dest}: {value}` in {where}: expected {kind}.") from None
    if action.choices is not None and isinstance(value, str) and value not in action.choices:
        choices = ", ".join(str(c) for c in action.choices)
        raise UserError(f"`{action.dest}: {value}` in {where}: choose one of {choices}.")
    return value
