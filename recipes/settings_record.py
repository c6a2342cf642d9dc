"""What a run keeps and shows of its settings: the values run_config.yaml records, the report
printed once every check passed, where a value came from, and the secrets neither may hold.
recipes/config.py builds these while it parses; recipes/runs/ reads them back."""

import dataclasses

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


def drop_demo_data(values: dict, origins: dict) -> list[str]:
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


def setting_origin(training_args, key: str) -> str:
    """Where a setting came from (a YAML file, the command line, a default), for messages."""
    return getattr(training_args, "run_settings", {}).get("origins", {}).get(key, "a default")


def is_secret(key: str) -> bool:
    """hub_token and the like, never printed or written down; not tokenizer_name_or_path."""
    return "token" in key.lower().split("_")


def describe_settings(parsed, values: dict, origins: dict, dropped=()) -> str:
    """Every setting that differs from its dataclass default, where it came from, and what a
    YAML set that this run does not use."""
    defaults = dataclass_defaults(*(type(args) for args in parsed))
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


def dataclass_defaults(*classes) -> dict:
    """{field: default} of the given dataclasses (a default_factory's value made fresh)."""
    values = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
    return values
