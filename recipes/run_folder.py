"""What a run's output folder holds and how to read it, for everything that reads one: the
recipes (resume, refuse to clobber), continued pretraining and fine-tuning (what a base was),
publishing and evaluation. The bottom of the house: it imports nothing of the recipes' but errors.

output_dir/
  model.safetensors, config.json      the model, stock transformers format
  tokenizer.json, tokenizer_config.json
  all_results.json                    written last: its presence means the run finished
  run_config.yaml                     every setting, rerunnable with --config
  README.md                           the model card
  loss_curve.png                      loss and held-out accuracy against step
  checkpoint-N/                       resumable checkpoints (trainer_state.json written last)

A model is named by a local folder or a Hub id (`owner/name`); `local_or_hub_id` tells which,
and says so when a path is neither, instead of a Hub lookup's error about the network.
"""

import json
import os
import re
from pathlib import Path

import yaml

from recipes.errors import UserError

FINISHED_MARKER = "all_results.json"  # written last: its presence means the run finished
RUN_CONFIG = "run_config.yaml"
TRAINER_STATE = "trainer_state.json"  # transformers.trainer.TRAINER_STATE_NAME
CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def read_run_config(folder: str | os.PathLike) -> dict:
    """The settings run_config.yaml records ({} when there is none, or it is not ours)."""
    try:
        settings = yaml.safe_load((Path(folder) / RUN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return settings if isinstance(settings, dict) else {}


def checkpoint_is_complete(checkpoint: Path) -> bool:
    """Trainer writes checkpoint-N/ in place, trainer_state.json last (after the weights,
    optimizer and RNG states), so a readable trainer_state.json means the rest is there."""
    try:
        json.loads((Path(checkpoint) / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return False
    return True


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """Every checkpoint-N folder in `out`, (step, path), oldest first."""
    found = []
    for path in Path(out).iterdir() if Path(out).is_dir() else ():
        match = CHECKPOINT.fullmatch(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest checkpoint-N that was written to the end; a run killed while saving leaves a
    newer, partial one, which is reported and left for Trainer to overwrite when it gets there."""
    for _, path in reversed(checkpoints(out)):
        if checkpoint_is_complete(path):
            return str(path)
        print(f"Skipping incomplete checkpoint {path} (the run stopped while writing it)")
    return None


def looks_local(path: str) -> bool:
    """A path that can only be local: absolute, relative with `.`/`~`, more than one `/`, or
    whose first part exists here (`outputs/tiny` where outputs/ does)."""
    return (
        path.startswith((".", "/", "~"))
        or path.count("/") > 1
        or os.path.exists(path.split("/", 1)[0])
    )


def require_folder_or_hub_id(path: str, field: str, hint: str = "") -> None:
    """A `path` that is no folder and not shaped like a Hub id (`owner/name`) is a typo or a
    missing output: say so, instead of a Hub lookup's cryptic error."""
    if os.path.isdir(path):
        return
    if looks_local(path):
        what = "a file" if os.path.exists(path) else f"no such folder (from {os.getcwd()})"
        hint = f" {hint}" if hint else ""
        raise UserError(f"`{field}: {path}` is not a folder: {what}.{hint}")


def not_found_anywhere(path: str, field: str, reason: str, hint: str = "") -> UserError:
    """The error for an id-shaped `path` that is no local folder and did not load from the Hub:
    both readings named, since `outputs/tokenizer` before outputs/ exists looks like a Hub id."""
    hint = f" {hint}" if hint else ""
    return UserError(
        f"`{field}: {path}` is neither a folder here (none at {os.path.abspath(path)}) nor a "
        f"repository the Hub answered for ({reason}). If it is one of your outputs, check the "
        f"path or create it first.{hint}"
    )
