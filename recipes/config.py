"""Configuration: typed fields from a YAML file plus command-line overrides.

A run is a YAML file plus command-line overrides:

    python -m recipes.pretrain_mlm --config recipes/configs/roberta-tiny.yaml --max_steps 50

Order of precedence, lowest first: dataclass defaults, the recipe's `TRAINING_DEFAULTS` (and a
family's `training_defaults`), the YAML file, the command line. Every key must name a field: an
unknown or misspelt key is an error with a suggestion, never silently dropped (run_mlm.py's
`config_overrides` string and untyped `cfg.get(key, default)` both swallow typos). run_mlm.py's
own flags are read under our names or refused with the equivalent. The fields themselves and
their help live in recipes/arguments.py; `--help` is recipes/help.py; older and run_mlm.py names
are recipes/old_names.py.

Model-shape keys (`hidden_size`, `num_hidden_layers`, ...) are generated from the family's model
config class itself (recipes/shape_arguments.py), so every field of it is accepted and nothing
else is. Nothing here knows a family: what the fields say about values and keys they refuse
(`choice_hints`, `not_settable`) comes with the dataclasses.
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
from recipes.help import HELP_FLAGS, format_help, show
from recipes.old_names import (
    DO_FLAGS,
    NOOP_REFUSED,
    RENAMED_KEYS,
    RUN_MLM_ALIASES,
    RUN_MLM_EQUIVALENTS,
    RUN_MLM_NOOPS,
)
from recipes.precision import resolve_bf16
from recipes.settings_record import describe_settings, drop_demo_data, recorded_values


def model_overrides(model_config_args) -> dict:
    """The model-shape fields the user set, ready for `config_class(**overrides)`."""
    return {k: v for k, v in dataclasses.asdict(model_config_args).items() if v is not None}


# Values resolved when the run starts; run_config.yaml records `auto`, so a rerun decides anew.
AUTO_FIELDS = ("bf16", "disable_tqdm")


@dataclasses.dataclass(frozen=True)
class _Fields:
    """What the parsed dataclasses accept, and what they say about keys and values they don't."""

    known: list[str]  # every field name
    actions: dict  # field name -> its argparse action (type, choices)
    # {(field, value): hint}: a value outside the choices that another recipe takes
    # (a dataclass's `choice_hints`, e.g. recipes/arguments.py ModelArguments)
    hints: dict
    # {field: why}: model keys no one sets (recipes/shape_arguments.py `not_settable`)
    not_settable: dict

    @classmethod
    def of(cls, dataclass_types: list[type], actions: dict) -> "_Fields":
        def merged(attribute: str) -> dict:
            return {k: v for c in dataclass_types for k, v in getattr(c, attribute, {}).items()}

        known = sorted(dest for dest in actions if dest not in ("help", "config"))
        return cls(known, actions, merged("choice_hints"), merged("not_settable"))


def _unknown_key_error(key: str, fields: _Fields, where: str) -> UserError:
    if key in fields.not_settable:
        why = fields.not_settable[key]
        return UserError(f"`{key}` in {where} cannot be set: {why}. Remove it.")
    if key in RUN_MLM_EQUIVALENTS:
        return UserError(f"`{key}` in {where} is run_mlm.py's: {RUN_MLM_EQUIVALENTS[key]}.")
    hint = RENAMED_KEYS.get(key)
    if hint is None:
        close = difflib.get_close_matches(key, fields.known, n=3, cutoff=0.75)
        hint = " or ".join(close) if close else None
    fix = f" Did you mean {hint}?" if hint else " Run with --help to list every field."
    return UserError(f"unknown config key `{key}` in {where}.{fix}")


def _check_key(key: str, fields: _Fields, where: str) -> None:
    if key in DO_FLAGS:
        raise UserError(f"`{key}` in {where}: {DO_FLAGS[key]}.")
    known = fields.known
    if key not in known and not (key.startswith("no_") and key[3:] in known):
        raise _unknown_key_error(key, fields, where)


def _run_mlm_name(key: str, known: list[str], where: str) -> str:
    """run_mlm.py's name for a field, as ours (with a note); any other key as it is."""
    ours = RUN_MLM_ALIASES.get(key)
    if ours is None or key in known or ours not in known:
        return key
    if os.environ.get("RANK", "0") == "0":
        print(f"`{key}` ({where}) is run_mlm.py's name: read as `{ours}`")
    return ours


def _noop(key: str, value, where: str) -> None:
    """run_mlm.py's `do_train`, `do_eval`, `overwrite_cache`: a note, or the reason a value
    that asks for something else is refused."""
    if isinstance(value, str):
        value = value.strip().lower() not in ("false", "no", "n", "f", "0")
    if (key, bool(value)) in NOOP_REFUSED:
        why = NOOP_REFUSED[key, bool(value)]
        raise UserError(f"`{key}: {str(bool(value)).lower()}` ({where}): {why}.")
    if os.environ.get("RANK", "0") == "0":
        print(f"`{key}` ({where}) is run_mlm.py's, not needed: {RUN_MLM_NOOPS[key]}")


def _choice_hint(key: str, value, where: str, fields: _Fields) -> None:
    """A value outside a field's choices that points to another recipe."""
    hint = fields.hints.get((key, str(value)))
    if hint:
        raise UserError(f"`{key}: {value}` ({where}): {hint}.")


def _command_line(argv: list[str], fields: _Fields) -> tuple[list, list]:
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
        name = _run_mlm_name(given, fields.known, "the command line")
        if name in RUN_MLM_NOOPS:  # a bare `--do_train`, or followed by its value
            following = value if eq else "true"
            if not eq and i < len(argv) and not argv[i].startswith("--"):
                following, i = argv[i], i + 1
            _noop(name, following, "the command line")
            continue
        _check_key(name, fields, "the command line")
        if spelled.setdefault(name, given) != given:
            raise UserError(f"`--{given}` and `--{spelled[name]}` both set `{name}`: give one.")
        following = value if eq else (argv[i] if i < len(argv) else "")
        if name in AUTO_FIELDS and following == "auto":
            autos.append(name)
            i += 0 if eq else 1
            continue
        action = fields.actions.get(name)  # `no_x` has none
        if action is not None and action.choices is not None and following not in action.choices:
            _choice_hint(name, following, "the command line", fields)
        out.append(f"--{name}{eq}{value}")
    return out, autos


def parse_config(
    dataclass_types: list[type], argv: list[str] | None = None, defaults=None, refused=None
):
    """Parse `--config FILE.yaml` plus `--field value` overrides into the given dataclasses.

    YAML values keep their YAML types and go straight into the dataclasses (argparse would
    push string defaults through its type converters); command-line values are converted by
    the argparse types HfArgumentParser derives from the field annotations. `--help` prints
    what this very command would run with (recipes/help.py) and exits. `refused`: {field: why}
    for fields of the dataclasses that this recipe does not take: given any value but false or
    null (even their default: it would be silently ignored) they stop the parse with the
    reason, and --help leaves them out.
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
    fields = _Fields.of(dataclass_types, actions)
    argv, autos = _command_line(argv, fields)

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
        for key, value in _load_yaml(Path(config_path), fields).items():
            values[key] = _yaml_value(actions[key], value, config_path, fields)
            origins[key] = config_path
    values.update(cli)
    origins.update(dict.fromkeys(cli, "command line"))
    dropped = drop_demo_data(values, origins)
    precision_reason = _resolve_autos(values, origins)
    if asked_help:
        recorded = recorded_values(values, origins)
        print(
            format_help(
                parser,
                dataclass_types,
                values,
                origins,
                recorded,
                field_defaults,
                asked_help,
                hidden=set(refused or ()) | set(DO_FLAGS) | set(RUN_MLM_NOOPS),
            )
        )
        raise SystemExit(0)
    for key, why in (refused or {}).items():  # given, and asking for something: `false` does not
        if origins.get(key, "recipe default") != "recipe default" and values[key] not in (
            False,
            None,
        ):
            where = {"command line": "the command line"}.get(origins[key], origins[key])
            raise UserError(f"`{key}: {show(values[key])}` ({where}): {why}.")
    try:
        parsed = parser.parse_dict(values)
    except ValueError as err:  # TrainingArguments validates in __post_init__
        raise UserError(f"invalid training argument: {err}") from None
    except TypeError as err:
        raise UserError(f"invalid config value: {err}") from None
    report = describe_settings(parsed, values, origins, dropped)
    for args in parsed:
        if isinstance(args, TrainingArguments):
            _check_launch(args)
            # read by recipes/runs/start.py (run_config.yaml) and the card
            args.precision_reason = (
                precision_reason or f"bf16: {args.bf16} ({origins.get('bf16', 'default')})"
            )
            args.run_settings = {"values": recorded_values(values, origins), "origins": origins}
            report += f"\nprecision: {'bf16' if args.bf16 else 'fp32'} ({args.precision_reason})"
    for args in parsed:
        # printed by the command once its own checks passed (recipes/runs/start.py record_run,
        # the tokenizer trainer): an error about the tokenizer or the data is then the last
        # line, not found below ~35 lines of settings
        args.settings_report = report
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


def _load_yaml(path: Path, fields: _Fields) -> dict:
    if not path.is_file():
        raise UserError(f"config file {path} does not exist.{_close_configs(path)}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{path} must be a mapping of `field: value` lines.")
    renamed = {}
    for key, value in loaded.items():
        ours = _run_mlm_name(key, fields.known, str(path))
        if ours in RUN_MLM_NOOPS:
            _noop(ours, value, str(path))
            continue
        _check_key(ours, fields, str(path))
        if ours in renamed:
            raise UserError(f"{path} sets both `{key}` and `{ours}` (the same field): keep one.")
        renamed[ours] = value
    return renamed


def _close_configs(path: Path) -> str:
    """' Did you mean ...?' with the YAML files whose names are closest to a mistyped `path`'s,
    in the folder it names and in recipes/configs/ (subfolders included)."""
    shipped = Path(__file__).resolve().parent / "configs"
    found = [*path.parent.glob("*.y*ml"), *shipped.rglob("*.y*ml")] if path.parent.is_dir() else []
    found = found or list(shipped.rglob("*.y*ml"))
    candidates = {p.resolve() for p in found if p.suffix in (".yaml", ".yml")}
    by_name = {}
    for candidate in sorted(candidates):
        try:  # as the user would type it: relative to here where it can be
            shown = candidate.relative_to(Path.cwd())
        except ValueError:
            shown = candidate
        by_name.setdefault(candidate.name, []).append(str(shown))
    close = difflib.get_close_matches(path.name, list(by_name), n=3, cutoff=0.6)
    named = [shown for name in close for shown in by_name[name]]
    return f" Did you mean {' or '.join(named)}?" if named else ""


def _yaml_value(action: argparse.Action, value, where: str, fields: _Fields):
    """Check a YAML value as the command line would. YAML 1.1 reads `5e-4` (no dot) as a
    string, which would fail hours later in the optimizer: numeric fields convert strings."""
    if isinstance(value, str) and action.type in (int, float):
        try:
            return action.type(value)
        except ValueError:
            kind = "an integer" if action.type is int else "a number"
            raise UserError(f"`{action.dest}: {value}` in {where}: expected {kind}.") from None
    if action.choices is not None and isinstance(value, str) and value not in action.choices:
        _choice_hint(action.dest, value, where, fields)
        choices = ", ".join(str(c) for c in action.choices)
        raise UserError(f"`{action.dest}: {value}` in {where}: choose one of {choices}.")
    if action.nargs == "+" and isinstance(value, str):  # `train_file: a.txt`, run_mlm.py's way
        return [value]
    return value
