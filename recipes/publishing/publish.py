"""Publish a folder after the fact (`python -m recipes.push`): a finished run of any recipe, one
checkpoint-N of a run, or a tokenizer; no training. What the folder is decides its card
(recipes/publishing/cards.py). The card is written into the folder (README.md) and the folder
pushed; files the repo already holds byte for byte are not sent again, and a push that changes
nothing says so.
"""

from pathlib import Path

from recipes.errors import UserError
from recipes.publishing.cards import CARD, checkpoint_card, run_card, tokenizer_card
from recipes.run_folder import (
    CHECKPOINT,
    FINISHED_MARKER,
    TRAINER_STATE,
    checkpoint_is_complete,
    checkpoints,
)
from recipes.runs import hub, revisions


# --------------------------------------------------------------------------- what the folder is
def folder_kind(folder: Path) -> str:
    """'run', 'checkpoint' or 'tokenizer'; anything else is refused with what to do instead."""
    what = "a recipe's output_dir, a checkpoint-N folder in it, or a tokenizer folder"
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: give {what}.")
    has_model = (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
    if (folder / FINISHED_MARKER).is_file():
        if not has_model or not (folder / CARD).is_file():
            raise UserError(
                f"{folder} has {FINISHED_MARKER} but no model (config.json, *.safetensors) or "
                f"no card ({CARD}): it is not a finished run of these recipes."
            )
        return "run"
    if (folder / TRAINER_STATE).exists() or CHECKPOINT.fullmatch(folder.name):
        if not (checkpoint_is_complete(folder) and has_model):
            raise UserError(
                f"{folder} is an incomplete checkpoint (no readable {TRAINER_STATE}, "
                "config.json or *.safetensors: the run stopped while writing it); publish an "
                "older checkpoint-N."
            )
        return "checkpoint"
    if (folder / "tokenizer.json").is_file() and not (folder / "config.json").exists():
        return "tokenizer"
    saved = checkpoints(folder)
    if saved:
        complete = [path for _, path in saved if checkpoint_is_complete(path)]
        instead = (
            f"or publish a checkpoint: python -m recipes.push {complete[-1]} --hub_model_id ..."
            if complete
            else f"none of its checkpoints ({saved[-1][1].name} the last) is complete"
        )
        raise UserError(
            f"{folder} holds no finished model: its run has not finished (no "
            f"{FINISHED_MARKER}). Rerun its command to resume it; {instead}."
        )
    raise UserError(
        f"{folder} holds no finished model, checkpoint or tokenizer (no {FINISHED_MARKER}, "
        f"{TRAINER_STATE} or tokenizer.json): give {what}."
    )


CARDS = {"run": run_card, "checkpoint": checkpoint_card, "tokenizer": tokenizer_card}


# --------------------------------------------------------------------------- publish
def publish(
    folder: str | Path,
    hub_model_id: str,
    *,
    language: str | None = None,
    license: str | None = None,
    private: bool | None = None,
    revision: str = "main",
    commit_message: str | None = None,
) -> str:
    """Check the folder, then Hub access; push revisions a run left unpushed; write the card;
    push. Returns the commit URL."""
    folder = Path(folder)
    kind = folder_kind(folder)  # a folder that cannot be published fails before any network
    repo_id = hub.check_hub_access(hub_model_id, private=private)
    if kind == "run":
        for staged in revisions.staged(folder):
            print(f"pushed revision {revisions.push_staged(staged, folder, repo_id)}")
    text = str(CARDS[kind](folder, repo_id, language, license))
    card = folder / CARD
    if not card.is_file() or card.read_text(encoding="utf-8") != text:
        card.write_text(text, encoding="utf-8")
    allow = revisions.REVISION_PATTERNS + [CARD] if kind == "checkpoint" else None
    url, changed = hub.upload(
        folder, repo_id, revision=revision, allow_patterns=allow,
        commit_message=commit_message or f"Publish {folder.name} ({kind}) with recipes.push",
    )  # fmt: skip
    where = f"{repo_id}" + (f" (revision {revision})" if revision != "main" else "")
    if changed:
        print(f"Pushed the {kind} in {folder} to {url}")
    else:
        print(f"nothing changed since the last push: {where} already holds {folder} ({url})")
    return url
