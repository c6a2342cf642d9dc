"""`--help`: the options people set, grouped by concern, each with the default that this very
command would run with, in the order a run applies them: the field's own default, the recipe's
and the model family's (recipes/arguments.py TRAINING_DEFAULTS, families.py training_defaults),
the --config file, the flags. TrainingArguments' own defaults (learning rate 5e-05, no warm-up)
are not what a recipe runs with, so they are never shown as if they were. `--help-all` adds every
other TrainingArguments field. The sections: recipes/arguments.py HELP_SECTIONS.
"""

import argparse
import copy
import dataclasses
import sys
import textwrap

import yaml
from transformers import TrainingArguments

from recipes.models.families import DERIVED_FROM_TOKENIZER
from recipes.shape_arguments import SHAPE_DERIVED_UNLESS_SET

HELP_FLAGS = ("-h", "--help", "--help-all")
WIDTH = 100
METAVARS = {int: "N", float: "NUMBER", str: "TEXT"}

# `--help` (recipes/help.py): sections in the order shown, and the fields each takes from
# elsewhere: a recipe field named here leaves its dataclass's `help_section`; a TrainingArguments
# field is shown only if named here (`--help-all` shows all of them).
HELP_SECTIONS = {
    "data": ["short_seq_prob", "dupe_factor", "documents", "validation_holdout"],
    "model": [],
    "model shape": [],
    "masking": ["mlm_probability", "whole_word_mask"],
    "fine-tuning runs": [],
    "training": [
        "num_train_epochs",
        "max_steps",
        "time_budget",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_steps",
        "decay_share",
        "weight_decay",
        "adam_beta1",
        "adam_beta2",
        "max_grad_norm",
        "optim",
        "seed",
        "bf16",
        "use_cpu",
        "activation_checkpointing",
        "torch_compile",
        "dataloader_num_workers",
    ],
    "evaluation and logging": [
        "eval_strategy",
        "eval_steps",
        "eval_every",
        "per_device_eval_batch_size",
        "logging_steps",
        "report_to",
        "disable_tqdm",
    ],
    "outputs and the Hub": [
        "output_dir",
        "overwrite_output_dir",
        "save_steps",
        "save_every",
        "save_steps_log_spaced",
        "save_total_limit",
        "resume_from_checkpoint",
        "language",
        "license",
        "push_to_hub",
        "hub_model_id",
        "hub_private_repo",
        "hub_strategy",
        "push_revisions",
    ],
}


# TrainingArguments' help where the recipes do otherwise than Trainer alone would.
HELP_OVERRIDES = {
    "push_to_hub": "Push the model, its tokenizer, card and run_config.yaml to the Hub once, at "
    "the end of the run (recipes/runs/finish.py); the token and the repo are checked before "
    "training. `push_revisions` also pushes each checkpoint to a branch of its own as it is "
    "saved; `hub_strategy: checkpoint`, the latest one to the main branch.",
    "hub_model_id": "The Hub repository push_to_hub writes: `user/name`, or `name` in your own "
    "namespace. Unset: output_dir's folder name.",
    "resume_from_checkpoint": "A checkpoint-N folder to resume from (optimizer, schedule, RNG "
    "states, data position). Unset or true: a run whose output_dir holds checkpoints resumes "
    "from the newest complete one by itself; `overwrite_output_dir: true` starts afresh.",
    "output_dir": "The folder the run writes: the model, its checkpoints, card and "
    "run_config.yaml (created if missing; a refused run leaves it as it was).",
}


def format_help(
    parser, dataclass_types, values, origins, recorded, field_defaults, asked, hidden=()
) -> str:
    """The help text for `parser` (recipes/config.py parse_config's), its defaults taken from
    `values` as parse_config layered them: `recorded` (what run_config.yaml records), else the
    field's own; a value decided on this machine (`bf16: auto`) is shown with what it is here.
    `hidden`: fields the command refuses, left out."""
    every = "--help-all" in asked
    training = any(issubclass(cls, TrainingArguments) for cls in dataclass_types)
    sections = _sections(dataclass_types, every, set(hidden))
    shown = _Defaults(values, origins, recorded, field_defaults)
    out = argparse.ArgumentParser(
        prog=running_module(),
        usage=f"python -m {running_module()} [--config FILE.yaml] [--FIELD VALUE ...]",
        description=_wrap(_intro(parser, values, field_defaults, training, every)),
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(
            prog, max_help_position=34, width=WIDTH
        ),
        add_help=False,
    )
    start = out.add_argument_group("start here")
    start.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="A YAML file of `field: value` lines (recipes/configs/); flags override it.",
    )
    start.add_argument("--help", action="store_true", help="This list: the options people set.")
    if training:
        start.add_argument("--help-all", action="store_true", help="Every TrainingArguments field.")
    for title, names in sections.items():
        if title == "model shape" and not every:
            shape = next(c for c in dataclass_types if hasattr(c, "config_defaults"))
            out.add_argument_group(title, _wrap(_shape_summary(shape, values, origins)))
            continue
        group = out.add_argument_group(title)
        for name in names:
            group._add_action(_entry(parser._option_string_actions[f"--{name}"], shown))
    return out.format_help()


def _sections(dataclass_types, every: bool, hidden: set[str]) -> dict[str, list[str]]:
    """Section title -> field names, in HELP_SECTIONS' order; a recipe field goes under its
    dataclass's `help_section` unless HELP_SECTIONS names it elsewhere; `hidden` ones left out."""
    placed = {name: title for title, names in HELP_SECTIONS.items() for name in names}
    fields = {}  # name -> (dataclass, its section)
    for cls in dataclass_types:
        own = getattr(cls, "help_section", cls.__name__.removesuffix("Arguments").lower())
        if hasattr(cls, "config_defaults"):  # recipes/shape_arguments.py model_config_arguments
            own = "model shape"
        for f in dataclasses.fields(cls):
            if f.name in hidden:
                continue
            if not issubclass(cls, TrainingArguments):
                fields.setdefault(f.name, placed.get(f.name, own))
            elif f.name in placed or every:
                fields.setdefault(f.name, placed.get(f.name, "every other TrainingArguments field"))
    titles = list(HELP_SECTIONS)
    for title in fields.values():  # a section of its own (the tokenizer's) goes after the data
        if title not in titles:
            titles.insert(titles.index("masking"), title)
    sections = {title: [] for title in titles}
    for name, title in fields.items():  # a recipe dataclass's own first, in its order
        if name not in placed:
            sections[title].append(name)
    for title, names in HELP_SECTIONS.items():
        sections[title] += [name for name in names if name in fields]
    return {title: names for title, names in sections.items() if names}


class _Defaults:
    """The default shown for each field: what run_config.yaml records for it, else the field's
    own; plus what it resolves to here, where that differs (auto, derived values)."""

    def __init__(self, values, origins, recorded, field_defaults):
        self.values, self.origins = values, origins
        self.recorded, self.field_defaults = recorded, field_defaults

    def __call__(self, name: str) -> str:
        if name in self.recorded:
            default, origin = self.recorded[name], self.origins.get(name, "")
        else:
            default, origin = self.field_defaults.get(name), ""
        text = f"default: {show(default)}"
        if origin and not origin.startswith("derived"):
            text += f", from {_source(origin)}"
        here = self.values.get(name, default)
        if here != default:
            text += f"; here {show(here)}: {self.origins[name].removeprefix('derived: ')}"
        return text


def show(value) -> str:
    """A value as a YAML file or flag would spell it; None as `unset`."""
    if value is None:
        return "unset"
    flow = yaml.safe_dump([value], default_flow_style=True, width=4096, allow_unicode=True)
    return flow.strip()[1:-1]


def _source(origin: str) -> str:
    return {"recipe default": "the recipe", "command line": "the command line"}.get(origin, origin)


def _entry(action: argparse.Action, shown: _Defaults) -> argparse.Action:
    entry = copy.copy(action)
    entry.option_strings = [f"--{action.dest}"]  # not the --dash-spelling nor --no_ twin
    entry.required = False
    entry.default = argparse.SUPPRESS
    help_text = HELP_OVERRIDES.get(action.dest, (action.help or "").strip())
    if action.choices is not None and len(action.choices) > 6:
        entry.choices, entry.metavar = None, "NAME"
        if len(action.choices) <= 12:  # longer ones (optim): the help names where they are
            help_text += f" One of: {', '.join(str(c) for c in action.choices)}."
    elif action.choices is None:
        is_bool = getattr(action.type, "__name__", "") == "string_to_bool"
        entry.metavar = "BOOL" if is_bool else METAVARS.get(action.type, "VALUE")
    # argparse %-formats help text: a literal % must be doubled
    entry.help = f"{help_text} ({shown(action.dest).replace('%', '%%')})"
    return entry


def _intro(parser, values, field_defaults, training: bool, every: bool) -> str:
    layers, family = "the recipe's", ""
    action = parser._option_string_actions.get("--model_type")
    if action is not None and action.choices:
        current = values.get("model_type", field_defaults.get("model_type"))
        layers = "the recipe's and the model family's"
        family = f" This is model_type {current}'s."
        other = next((c for c in action.choices if c != current), None)
        if other is not None:
            family += f" `--model_type {other} --help` shows {other}'s."
    recorded = " A run records the same values in output_dir/run_config.yaml." if training else ""
    more = " --help-all lists every TrainingArguments field too." if training and not every else ""
    return (
        f"Each default below is the one this command would run with: the field's own, then "
        f"{layers}, then the --config file's, then the flags'. Give --config FILE.yaml and flags "
        f"before --help to see that run's.{family}{recorded}\n\n"
        "Booleans: --name, --name false, or --no_name for one that defaults to true. Lists: "
        f"--train_files a.txt b.txt. Unknown keys are errors, with a suggestion.{more}"
    )


def _shape_summary(shape, values: dict, origins: dict) -> str:
    config_class = shape.config_class
    names = [f.name for f in dataclasses.fields(shape)]
    set_here = {}  # source -> ["name=value", ...]
    for name in names:
        if name in values:
            set_here.setdefault(_source(origins[name]), []).append(f"{name}={show(values[name])}")
    lines = []
    if config_class is None:
        lines.append(
            "Fields of the checkpoint's config, each a flag or YAML key: unset, the checkpoint's "
            "own. Shape keys must match it; dropout keys may differ."
        )
        lines.append(f"Fields: {', '.join(names)}.")
    else:
        own = [n for n in names if n not in values and n not in SHAPE_DERIVED_UNLESS_SET]
        kept = [f"{n}={show(shape.config_defaults.get(n))}" for n in own]
        lines.append(
            f"Fields of {config_class.__name__}, each a flag or YAML key (--hidden_size 256); "
            "unset ones keep the values below. --help-all describes each."
        )
        whose = f"{config_class.__name__}'s own"
        if getattr(shape, "family_defaults", None):  # the family's record sets its own
            whose += f", the family's for {', '.join(shape.family_defaults)}"
        lines.append(f"{whose}: {', '.join(kept)}.")
        derived = [f"{n}: {why}" for n, why in SHAPE_DERIVED_UNLESS_SET.items() if n in names]
        if derived:
            lines.append(f"Unless set: {'; '.join(derived)}.")
    for source, settings in set_here.items():
        lines.append(f"Set by {source}: {', '.join(settings)}.")
    lines.append(f"From the tokenizer, not settable: {', '.join(DERIVED_FROM_TOKENIZER)}.")
    not_settable = getattr(shape, "not_settable", {})
    fixed = [f"{n} ({why})" for n, why in not_settable.items() if n not in DERIVED_FROM_TOKENIZER]
    if fixed:  # the family's record fixes them (recipes/models/families.py `fixed_config`)
        lines.append(f"Fixed by the family, not settable: {', '.join(fixed)}.")
    return "\n\n".join(lines)


def _wrap(text: str) -> str:
    return "\n\n".join(
        textwrap.fill(paragraph, WIDTH - 2, break_on_hyphens=False, break_long_words=False)
        for paragraph in text.split("\n\n")
    )


def running_module() -> str:
    """The module `python -m` runs (for the commands we print), e.g. recipes.pretrain_bert."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)  # set by `python -m`
    name = getattr(spec, "name", "") or ""
    return name if name.startswith(("recipes.", "tokenizer_training.")) else "recipes.<recipe>"
