"""Which models to evaluate, and loading them: a folder (a run's output_dir or one of its
`checkpoint-N` folders), a Hub id with an optional `@revision`, and with `all_checkpoints` every
checkpoint of a run (`checkpoint-N` folders, or a Hub repository's `step<N>` branches) in step
order, then the final model. Stock transformers only: AutoModelForMaskedLM from safetensors, no
remote code (a BERT recipe's BertForPreTraining checkpoint loads as BertForMaskedLM: the
masked-LM head is the same weights; the next-sentence head and pooler are left out).
"""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from recipes.errors import UserError
from recipes.models.checkpoints import HUB_PATTERNS
from recipes.run_folder import (
    CHECKPOINT,
    RUN_CONFIG,
    TRAINER_STATE,
    checkpoint_is_complete,
    checkpoints,
    not_found_anywhere,
    require_folder_or_hub_id,
)

STEP_BRANCH = re.compile(r"step(\d+)")


@dataclass
class Target:
    """One model to evaluate: `name` as the table shows it; `source` a local folder or a Hub
    repo id (at `revision`); `step` and `tokens_seen` where the folder's trainer_state.json (or
    a `step<N>` branch name) tells them; `run` the run folder whose run_config.yaml names the
    text it held out."""

    name: str
    source: str
    revision: str | None = None
    step: int | None = None
    tokens_seen: int | None = None
    run: Path | None = None


def _trainer_state(folder: Path) -> dict:
    try:
        state = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _local(folder: Path, name: str) -> Target:
    state = _trainer_state(folder)
    step = state.get("global_step")
    match = CHECKPOINT.fullmatch(folder.name)
    if match:
        step = int(match.group(1))
    run = next((f for f in (folder, folder.parent) if (f / RUN_CONFIG).is_file()), None)
    return Target(name, str(folder), None, step, state.get("num_input_tokens_seen"), run)


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors"))


def run_checkpoints(folder: Path, spec: str) -> list[Target]:
    """A run folder's `checkpoint-N` folders by step, then its final model unless a
    checkpoint of the same step holds the same weights (the final step is saved as both)."""
    found = []
    for _, path in checkpoints(folder):
        if checkpoint_is_complete(path) or _has_weights(path):
            found.append(path)
        else:  # Trainer writes the weights first, trainer_state.json last
            print(f"Skipping incomplete checkpoint {path} (the run stopped while writing it)")
    if not found:
        raise UserError(
            f"`--all_checkpoints true`: {spec} has no checkpoint-N folders. A run keeps "
            "`save_total_limit` of them (every `save_steps` steps); set both before training, "
            "or evaluate the folder alone (`--all_checkpoints false`)."
        )
    targets = [_local(path, str(path)) for path in found]
    if _has_weights(folder):
        final = _local(folder, spec)
        if final.step is not None and final.step == targets[-1].step:
            targets.pop()  # the final model is that checkpoint's weights: show it once
        targets.append(final)
    return targets


def hub_revisions(repo: str) -> list[str | None]:
    """A Hub repository's `step<N>` branches by N, then None (its main branch)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        refs = HfApi().list_repo_refs(repo)
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise UserError(
            f"`--model {repo}`: could not list its branches: {_first_line(err)}"
        ) from None
    steps = sorted(
        (int(m.group(1)), b.name) for b in refs.branches if (m := STEP_BRANCH.fullmatch(b.name))
    )
    return [name for _, name in steps] + [None]


def resolve_targets(specs: list[str], all_checkpoints: bool) -> list[Target]:
    """Every model the user named, in order; a run folder or a Hub repository expanded into
    its checkpoints with `all_checkpoints`."""
    targets = []
    for spec in specs:
        folder = Path(spec).expanduser()
        if folder.is_dir():
            targets += run_checkpoints(folder, spec) if all_checkpoints else [_local(folder, spec)]
            continue
        repo, _, revision = spec.partition("@")
        require_folder_or_hub_id(repo, "--model", "Give a run's output_dir, or a Hub id.")
        revisions = hub_revisions(repo) if all_checkpoints and not revision else [revision or None]
        for rev in revisions:
            match = STEP_BRANCH.fullmatch(rev or "")
            step = int(match.group(1)) if match else None
            name = f"{repo}@{rev}" if rev else repo
            targets.append(Target(name, repo, rev, step))
    return targets


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def fetch(target: Target) -> Path:
    """The local folder holding the target's config, weights and tokenizer: downloaded for a
    Hub id (config, safetensors and tokenizer files only; never pickles), checked either way."""
    if os.path.isdir(target.source):
        folder = Path(target.source)
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            folder = Path(
                snapshot_download(
                    target.source, revision=target.revision, allow_patterns=HUB_PATTERNS
                )
            )
        except RevisionNotFoundError:
            raise UserError(
                f"`--model {target.name}`: {target.source} has no revision "
                f"`{target.revision}`. Give a branch, tag or commit of it (`@step1000`), or "
                "leave `@...` out for its main branch."
            ) from None
        except RepositoryNotFoundError:
            raise not_found_anywhere(
                target.source,
                "--model",
                "no such repository, or a private one: log in with `hf auth login`",
                "Give a run's output_dir, one of its checkpoint-N folders, or a Hub id.",
            ) from None
        except (HfHubHTTPError, OSError, ValueError) as err:
            raise UserError(
                f"`--model {target.name}`: could not download it: {_first_line(err)}"
            ) from None
        state = _trainer_state(folder)
        target.tokens_seen = state.get("num_input_tokens_seen", target.tokens_seen)
        if target.step is None:
            target.step = state.get("global_step")
    if not (folder / "config.json").is_file():
        raise UserError(
            f"`--model {target.name}`: {folder} has no config.json, so it holds no model. Give a "
            "run's output_dir, one of its checkpoint-N folders, or a Hub id."
        )
    if not _has_weights(folder):
        raise UserError(
            f"`--model {target.name}`: {folder} has no safetensors weights (model.safetensors). "
            "Pickled pytorch_model.bin files can run code when loaded and are not read: load "
            "the model with transformers and save_pretrained it again, which writes safetensors."
        )
    return folder


def load_target(target: Target):
    """(model in fp32 and eval mode, tokenizer) of a target."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers import logging as hf_logging

    folder = fetch(target)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a BertForPreTraining's NSP head and pooler stay unused
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForMaskedLM.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError) as err:
        raise UserError(
            f"`--model {target.name}`: could not load it as a masked LM: {_first_line(err)}"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if tokenizer.mask_token_id is None:
        raise UserError(
            f"`--model {target.name}`: its tokenizer has no mask token, so nothing can be "
            "masked: save the tokenizer with its special tokens (`mask_token`)."
        )
    return model.eval(), tokenizer
