"""The start of every run: seed, output folder (finished, resumable or fresh), Hub access checked
before any training, experiment tracking (`start_run`, which writes nothing); then, once the
recipe's own checks passed too (tokenizer, data, model), the settings printed and recorded in
run_config.yaml (`record_run`, the first write): a refused run leaves output_dir as it was.
What the output folder holds: recipes/run_folder.py.
"""

import contextlib
import functools
import importlib.util
import io
import os
from pathlib import Path

import yaml
from transformers import set_seed

from recipes.errors import UserError, on_interrupt
from recipes.help import running_module
from recipes.precision import warn_if_slow_bf16
from recipes.run_folder import (
    FINISHED_MARKER,
    RUN_CONFIG,
    TRAINER_STATE,
    checkpoint_is_complete,
    last_complete_checkpoint,
    require_output_folder,
)
from recipes.runs import hub
from recipes.settings_record import is_secret

# output_dir/_runs/<run name>/: fine-tuning keeps each finished run of its grid there
RUNS_FOLDER = "_runs"


def start_run(training_args, overwrite: bool) -> str | None:
    """What every recipe does first, before any slow work: seed, check the output folder and
    the Hub. Writes nothing (record_run does, once the recipe's checks passed). Returns the
    checkpoint to resume from, if any."""
    set_seed(training_args.seed)
    configure_tracking(training_args)
    warn_if_slow_bf16(training_args)  # fp32 by default; bf16 only where it is fast
    resume_from = prepare_output_dir(training_args, overwrite)
    on_interrupt(functools.partial(how_to_resume, Path(training_args.output_dir), overwrite))
    hub.move_token_to_env(training_args)  # else Trainer saves it in training_args.bin
    if training_args.push_to_hub:  # a bad token fails now, not after hours of training
        training_args.hub_model_id = hub.check_hub_access(
            training_args.hub_model_id or Path(training_args.output_dir).name,
            private=training_args.hub_private_repo,
        )
        settings = getattr(training_args, "run_settings", None)
        if settings:  # the full `user/name`: a run continued from this one's folder cites it
            settings["values"]["hub_model_id"] = training_args.hub_model_id
    return resume_from


def record_run(training_args, overwrite: bool) -> None:
    """Called by a recipe once every check passed (output folder, Hub, tokenizer, data, model),
    just before training: print the settings (recipes/config.py `settings_report`), then the
    run's first writes: a finished model being overwritten stops looking finished, and
    run_config.yaml records the settings. Until here a refused run has written nothing."""
    if training_args.process_index == 0:
        print(getattr(training_args, "settings_report", ""))
        if overwrite:  # until this run finishes, nothing in output_dir should look finished
            (Path(training_args.output_dir) / FINISHED_MARKER).unlink(missing_ok=True)
    save_run_config(training_args)


def how_to_resume(out: Path, overwrite: bool) -> str:
    """The line Ctrl-C prints: what rerunning the same command does with what `out` holds."""
    # overwrite_output_dir: the same command would forget what was saved and start again
    same = (
        "the same command without `overwrite_output_dir: true`" if overwrite else "the same command"
    )
    if (out / RUNS_FOLDER).is_dir():  # fine-tuning: the same command skips the finished runs
        return f"rerun {same} to resume; finished runs are kept."
    with contextlib.redirect_stdout(io.StringIO()):  # its note on a partial checkpoint
        checkpoint = last_complete_checkpoint(out) if out.is_dir() else None
    if checkpoint is None:
        return "no checkpoint was saved yet; rerun the same command to start again."
    return f"rerun {same} to resume from {Path(checkpoint).name} ({checkpoint})."


# `report_to` value -> the packages that provide it (any one of them).
TRACKERS = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "trackio": ("trackio",),
}


def configure_tracking(training_args) -> None:
    """`report_to: tensorboard` (or wandb, trackio) from the YAML: a tracker that is not
    installed stops the run now, with the install command, not after the data is tokenized.
    TensorBoard logs go to output_dir/runs unless TENSORBOARD_LOGGING_DIR says otherwise
    (transformers v5 dropped `logging_dir` for that variable); `runs/` is never pushed."""
    for tracker in training_args.report_to or []:
        packages = TRACKERS.get(tracker)
        if packages and not any(importlib.util.find_spec(p) for p in packages):
            raise UserError(
                f"`report_to: {tracker}` needs the {packages[0]} package: `pip install "
                f"{packages[0]}` (or drop {tracker} from report_to)."
            )
    if "tensorboard" in (training_args.report_to or []):
        logs = os.environ.setdefault(
            "TENSORBOARD_LOGGING_DIR", str(Path(training_args.output_dir) / "runs")
        )
        if training_args.process_index == 0:
            print(f"TensorBoard logs: {logs} (tensorboard --logdir {logs})")


def prepare_output_dir(training_args, overwrite: bool) -> str | None:
    """Refuse to clobber a finished model; return the checkpoint to resume from, if any.

    A run killed mid-way left checkpoint-N folders: the same command continues from the
    newest complete one, unless `resume_from_checkpoint` names another.
    """
    out = Path(training_args.output_dir)
    require_output_folder(str(out))
    if (out / FINISHED_MARKER).exists() and not overwrite:
        raise UserError(
            f"output_dir {out} already holds a finished model. Pick another output_dir, or set "
            "`overwrite_output_dir: true` to train again from scratch there."
        )
    if overwrite:  # all_results.json goes once the run's checks passed (record_run)
        return None
    chosen = training_args.resume_from_checkpoint
    if chosen and str(chosen).lower() != "true":  # `true` means the newest, as by default
        if not Path(chosen).is_dir():
            raise UserError(f"`resume_from_checkpoint: {chosen}` is not a checkpoint folder.")
        if not checkpoint_is_complete(Path(chosen)):
            raise UserError(
                f"`resume_from_checkpoint: {chosen}` is incomplete (no readable "
                f"{TRAINER_STATE}: the run stopped while writing it); pick an older one."
            )
    else:
        chosen = last_complete_checkpoint(out) if out.is_dir() else None
    if chosen:
        print(f"Resuming from {chosen}: optimizer, schedule, RNG states and data position")
    return chosen


def save_run_config(training_args, recipe: str | None = None) -> Path | None:
    """Write output_dir/run_config.yaml from `training_args.run_settings` (recipes/config.py:
    {"values": what differs from the defaults, "origins": where each came from}), so that
    `--config run_config.yaml` reruns the run. Main process only; nothing without settings.
    Keys naming a token are never written: the file is pushed with the model."""
    settings = getattr(training_args, "run_settings", None)
    if not settings or training_args.process_index != 0:
        return None
    values, origins = settings.get("values", {}), settings.get("origins", {})
    out = Path(training_args.output_dir)
    recipe = recipe or running_module()
    dropped = sorted(k for k in values if is_secret(k))
    lines = [
        "# Every setting of this run that differs from the defaults; the comment after each says",
        "# where it came from. Rerun it (into a new folder) with:",
        f"#   python -m {recipe} --config {out / RUN_CONFIG} --output_dir NEW",
    ]
    if dropped:
        lines.append(f"# Left out, never written down: {', '.join(dropped)} (use HF_TOKEN).")
    for key, value in values.items():
        if key in dropped:
            continue
        # the value in YAML's one-line (flow) style, a list or mapping included: [value] -> value
        flow = yaml.safe_dump(
            [value], default_flow_style=True, width=4096, allow_unicode=True
        ).strip()[1:-1]
        origin = origins.get(key, "?")
        if "\n" not in flow:
            lines.append(f"{key}: {flow}  # {origin}")
        else:  # too long for one line after all
            block = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True)
            lines += [f"# {origin}", block.rstrip()]
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_CONFIG
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
