"""Configuration: typed fields from a YAML file plus command-line overrides.

A run is a YAML file plus command-line overrides:

    python -m recipes.pretrain_mlm --config recipes/configs/roberta-tiny.yaml --max_steps 50

Order of precedence, lowest first: dataclass defaults, the recipe's `TRAINING_DEFAULTS` (and a
family's `training_defaults`), the YAML file, the command line. Every key must name a field: an
unknown or misspelt key is an error with a suggestion, never silently dropped (run_mlm.py's
`config_overrides` string and untyped `cfg.get(key, default)` both swallow typos). run_mlm.py's
own flags are read under our names or refused with the equivalent. The fields themselves and
their help live in recipes/arguments.py; `--help` is recipes/help.py.

Model-shape keys (`hidden_size`, `num_hidden_layers`, ...) are generated from the model config
class itself, so every `RobertaConfig`/`BertConfig` field is accepted and nothing else is.
"""

import argparse
import dataclasses
import difflib
import os
import sys
from pathlib import Path

import datasets
import huggingface_hub.utils
import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments
from transformers.utils import logging as transformers_logging

from recipes.errors import UserError
from recipes.help import HELP_FLAGS, format_help
from recipes.models.families import DERIVED
from recipes.runs.precision import resolve_bf16


def model_overrides(model_config_args) -> dict:
    """The model-shape fields the user set, ready for `config_class(**overrides)`."""
    return {k: v for k, v in dataclasses.asdict(model_config_args).items() if v is not None}


# Keys users carry over from older transformers, and what to use instead.
RENAMED_KEYS = {
    "evaluation_strategy": "eval_strategy",
    "warmup_ratio": "warmup_steps (a float below 1 is read as a ratio)",
    "no_cuda": "use_cpu",
    "logging_dir": "the TENSORBOARD_LOGGING_DIR environment variable",
    "max_position_embedding": "max_position_embeddings (it is derived from max_seq_length)",
    "per_gpu_train_batch_size": "per_device_train_batch_size",
    "per_gpu_eval_batch_size": "per_device_eval_batch_size",
}

# run_mlm.py's flags (transformers' examples/pytorch/language-modeling) that mean the same here
# under another name: read as ours, with a note.
RUN_MLM_ALIASES = {
    "train_file": "train_files",
    "validation_file": "validation_files",
    "tokenizer_name": "tokenizer_name_or_path",
}

# run_mlm.py's flags that have no field here, and what does their job.
RUN_MLM_EQUIVALENTS = {
    "config_overrides": "set each model key as its own flag or YAML key, e.g. `--hidden_size "
    "256 --num_hidden_layers 4` (every field of the family's config class is one; --help lists "
    "them)",
    "config_name": "the model config is built from model_type and the model keys "
    "(`--hidden_size 256`, ...), or read from model_name_or_path's checkpoint",
    "pad_to_max_length": "text is packed into full max_seq_length blocks, so nothing is padded; "
    "`--line_by_line true` keeps one example per line, padded to a multiple of 8",
    "max_train_samples": "pretraining stops after `--max_steps N` optimizer steps (or train on "
    "fewer train_files)",
    "max_eval_samples": "the held-out share is `--validation_split_percentage` (or give "
    "`--validation_files`)",
    "overwrite_cache": "the tokenized data is cached under a fingerprint of the files, the "
    "tokenizer and the settings, so any change re-tokenizes by itself; to start afresh, delete "
    "the datasets cache (HF_DATASETS_CACHE, by default ~/.cache/huggingface/datasets)",
    "cache_dir": "set the HF_HOME environment variable (models and datasets are cached under it)",
    "use_fast_tokenizer": "tokenizers are always the fast kind (the tokenizers library): drop it",
    "model_revision": "download that revision (`hf download ID --revision REV --local-dir DIR`) "
    "and set `--model_name_or_path DIR`",
    "token": "set the HF_TOKEN environment variable (or run `hf auth login`)",
    "trust_remote_code": "no model or dataset code is run from the Hub here: models are "
    "transformers' own classes, and datasets 4+ loads no dataset scripts",
    "low_cpu_mem_usage": "drop it: a model is built from scratch or loaded from safetensors",
    "model_type": "drop it: the model's family is its checkpoint's (the pretraining recipes take "
    "`model_type`; their --help lists the families)",
}

# TrainingArguments fields that Trainer leaves to the script, and that the recipes ignore.
DO_FLAGS = {
    "do_train": "the recipe always trains, then evaluates on the held-out split: drop it",
    "do_eval": "the recipe always evaluates on the held-out split (eval_strategy and eval_steps "
    "say how often): drop it",
    "do_predict": "the recipes evaluate on their held-out (fine-tuning: and test) data by "
    "themselves: drop it",
}


# Values resolved when the run starts; run_config.yaml records `auto`, so a rerun decides anew.
AUTO_FIELDS = ("bf16", "disable_tqdm")

# What a YAML says about its own data, and what happens instead when the command line gives
# other data (train_files or dataset_name): the demo's held-out plays, its Hub dataset, its
# language and license would otherwise describe the user's corpus and land on their card.
DATA_DESCRIPTIONS = {
    "train_files": "",
    "dataset_name": "",
    "dataset_config_name": "",
    "validation_files": ", so a share of it is held out instead (or set --validation_files)",
    "test_files": ", so a share of it is held out instead (or set --test_files)",
    "language": "; it names that file's language (set --language for yours)",
    "license": "; it was chosen for that file's data, so the default applies (or set --license)",
}


def _unknown_key_error(key: str, known: list[str], where: str) -> UserError:
    if key in DERIVED:
        return UserError(f"`{key}` in {where} cannot be set: {DERIVED[key]}. Remove it.")
    if key in RUN_MLM_EQUIVALENTS:
        return UserError(f"`{key}` in {where} is run_mlm.py's: {RUN_MLM_EQUIVALENTS[key]}.")
    hint = RENAMED_KEYS.get(key)
    if hint is None:
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
        hint = " or ".join(close) if close else None
    fix = f" Did you mean {hint}?" if hint else " Run with --help to list every field."
    return UserError(f"unknown config key `{key}` in {where}.{fix}")


def _check_key(key: str, known: list[str], where: str) -> None:
    if key in DO_FLAGS:
        raise UserError(f"`{key}` in {where}: {DO_FLAGS[key]}.")
    if key not in known and not (key.startswith("no_") and key[3:] in known):
        raise _unknown_key_error(key, known, where)


def _run_mlm_name(key: str, known: list[str], where: str) -> str:
    """run_mlm.py's name for a field, as ours (with a note); any other key as it is."""
    ours = RUN_MLM_ALIASES.get(key)
    if ours is None or key in known or ours not in known:
        return key
    if os.environ.get("RANK", "0") == "0":
        print(f"`{key}` ({where}) is run_mlm.py's name: read as `{ours}`")
    return ours


def _choice_hint(key: str, value, where: str, hints: dict) -> None:
    """A value outside a field's choices that points to another recipe: `hints`, the
    dataclasses' `choice_hints` ({(field, value): hint}; recipes/arguments.py)."""
    hint = hints.get((key, str(value)))
    if hint:
        raise UserError(f"`{key}: {value}` ({where}): {hint}.")


def _command_line(
    argv: list[str], known: list[str], actions: dict, hints: dict
) -> tuple[list, list]:
    """The command line checked (unknown keys, run_mlm.py's flags) and under our names, and
    the AUTO_FIELDS given as `auto` (no boolean for argparse: taken out, resolved later)."""
    out, autos, spelled = [], [], {}
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        given, eq, value = token[2:].partition("=")
        if not token.startswith("--") or given == "config":
            out.append(token)
            continue
        name = _run_mlm_name(given, known, "the command line")
        _check_key(name, known, "the command line")
        if spelled.setdefault(name, given) != given:
            raise UserError(f"`--{given}` and `--{spelled[name]}` both set `{name}`: give one.")
        following = value if eq else (argv[i] if i < len(argv) else "")
        if name in AUTO_FIELDS and following == "auto":
            autos.append(name)
            i += 0 if eq else 1
            continue
        choices = actions[name].choices if name in actions else None  # `no_x` has none
        if choices is not None and following not in choices:
            _choice_hint(name, following, "the command line", hints)
        out.append(f"--{name}{eq}{value}")
    return out, autos


def parse_config(dataclass_types: list[type], argv: list[str] | None = None, defaults=None):
    """Parse `--config FILE.yaml` plus `--field value` overrides into the given dataclasses.

    YAML values keep their YAML types and go straight into the dataclasses (argparse would
    push string defaults through its type converters); command-line values are converted by
    the argparse types HfArgumentParser derives from the field annotations. `--help` prints
    what this very command would run with (recipes/help.py) and exits.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(dataclass_types, allow_abbrev=False)
    parser.add_argument("--config", type=str, default=None, help="A YAML file of fields.")
    asked_help = [t for t in argv if t in HELP_FLAGS]
    argv = [t for t in argv if t not in HELP_FLAGS]
    actions = {}
    for action in parser._actions:
        actions.setdefault(action.dest, action)  # a bool's `--no_x` comes after `--x`
    field_defaults = {dest: action.default for dest, action in actions.items()}
    known = sorted(dest for dest in actions if dest not in ("help", "config"))
    hints = {k: v for cls in dataclass_types for k, v in getattr(cls, "choice_hints", {}).items()}
    argv, autos = _command_line(argv, known, actions, hints)

    # Only what the command line names explicitly: no argparse defaults.
    for action in parser._actions:
        action.default = argparse.SUPPRESS

    # argparse would print the usage of every field (hundreds of lines) above its one-line error
    def fail(message):
        raise UserError(f"{message} (on the command line). Run with --help to list every field.")

    parser.error = fail
    cli = vars(parser.parse_args(argv))
    cli |= dict.fromkeys(autos, "auto")
    config_path = cli.pop("config", None)

    # Each layer overrides the one before; `origins` says which layer a value came from.
    values = dict(defaults or {})
    origins = dict.fromkeys(values, "recipe default")
    if config_path is not None:
        for key, value in _load_yaml(Path(config_path), known).items():
            values[key] = _yaml_value(actions[key], value, config_path, hints)
            origins[key] = config_path
    values.update(cli)
    origins.update(dict.fromkeys(cli, "command line"))
    dropped = _drop_demo_data(values, origins)
    precision_reason = _resolve_autos(values, origins)
    if asked_help:
        recorded = recorded_values(values, origins)
        print(
            format_help(
                parser, dataclass_types, values, origins, recorded, field_defaults, asked_help
            )
        )
        raise SystemExit(0)
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
        print(_describe_settings(parsed, values, origins, dropped))
        for args in parsed:
            if isinstance(args, TrainingArguments):
                print(f"precision: {'bf16' if args.bf16 else 'fp32'} ({args.precision_reason})")
    return list(parsed)


def _resolve_autos(values: dict, origins: dict) -> str | None:
    """`bf16: auto` and `disable_tqdm: auto`, decided for this machine and this output; the
    origin says why. Returns the precision reason, if bf16 was auto."""
    precision_reason = None
    if values.get("bf16") == "auto":
        values["bf16"], precision_reason = resolve_bf16(
            bool(values.get("use_cpu")), bool(values.get("fp16"))
        )
        origins["bf16"] = f"derived: bf16 auto, {precision_reason}"
    if values.get("bf16") is True and not values.get("use_cpu") and not torch.cuda.is_available():
        # TrainingArguments refuses bf16 without a GPU unless told the CPU is meant
        values["use_cpu"], origins["use_cpu"] = True, "derived: bf16 on a machine without a GPU"
    if values.get("disable_tqdm") == "auto":
        terminal = sys.stdout.isatty()
        values["disable_tqdm"] = not terminal
        where = "a terminal" if terminal else "not a terminal (a log file, a pipe)"
        origins["disable_tqdm"] = f"derived: disable_tqdm auto, stdout is {where}"
    if values.get("disable_tqdm") is True:
        _quiet_progress_bars()
    return precision_reason


def _quiet_progress_bars() -> None:
    """Trainer's bars go with disable_tqdm (it prints its log lines instead); the tokenizing,
    download and weight-loading bars of datasets, huggingface_hub and transformers with them."""
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    transformers_logging.disable_progress_bar()


def recorded_values(values: dict, origins: dict) -> dict:
    """What run_config.yaml records: every value, but none detected on this machine. `bf16:
    auto` and `disable_tqdm: auto` stay `auto` and a `use_cpu` derived from the missing GPU is
    left out, so a rerun on another machine (a GPU one, a CPU without native bf16, a terminal)
    detects them again instead of inheriting this one's answer. Secrets are never recorded."""
    recorded = {}
    for key, value in values.items():
        origin = str(origins.get(key, ""))
        if is_secret(key) or (origin.startswith("derived") and key == "use_cpu"):
            continue
        recorded[key] = "auto" if origin.startswith(f"derived: {key} auto") else value
    return recorded


def _drop_demo_data(values: dict, origins: dict) -> list[str]:
    """A YAML's DATA_DESCRIPTIONS go with *its* data: given train_files or dataset_name on the
    command line, the ones the YAML set are dropped (the field's default applies unless the
    command line sets it too). Returns one line per dropped field, saying why."""
    given = [k for k in ("train_files", "dataset_name") if origins.get(k) == "command line"]
    notes = []
    for key, then in DATA_DESCRIPTIONS.items():
        source = origins.get(key)
        if given and key in values and source not in ("command line", "recipe default"):
            notes.append(
                f"{key} from {source} not used: {' and '.join(given)} was given on the "
                f"command line{then}"
            )
            del values[key], origins[key]
    return notes


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


def _describe_settings(parsed, values: dict, origins: dict, dropped=()) -> str:
    """Every setting that differs from its dataclass default, where it came from, and what a
    YAML set that this run does not use."""
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
    text = "settings that differ from the defaults (where each came from):\n" + "\n".join(rows)
    if dropped:
        text += "\nnot carried over (they describe the YAML's own data):\n"
        text += "\n".join(f"  {note}" for note in dropped)
    return text


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
    renamed = {}
    for key, value in loaded.items():
        ours = _run_mlm_name(key, known, str(path))
        _check_key(ours, known, str(path))
        if ours in renamed:
            raise UserError(f"{path} sets both `{key}` and `{ours}` (the same field): keep one.")
        renamed[ours] = value
    return renamed


def _yaml_value(action: argparse.Action, value, where: str, hints: dict):
    """Check a YAML value as the command line would. YAML 1.1 reads `5e-4` (no dot) as a
    string, which would fail hours later in the optimizer: numeric fields convert strings."""
    if isinstance(value, str) and action.type in (int, float):
        try:
            return action.type(value)
        except ValueError:
            kind = "an integer" if action.type is int else "a number"
            raise UserError(f"`{action.dest}: {value}` in {where}: expected {kind}.") from None
    if action.choices is not None and isinstance(value, str) and value not in action.choices:
        _choice_hint(action.dest, value, where, hints)
        choices = ", ".join(str(c) for c in action.choices)
        raise UserError(f"`{action.dest}: {value}` in {where}: choose one of {choices}.")
    if action.nargs == "+" and isinstance(value, str):  # `train_file: a.txt`, run_mlm.py's way
        return [value]
    return value
