"""Publishing to the Hugging Face Hub: check access early, push the folder.

`check_hub_access` runs before training so that a bad token or an unwritable repo fails in
seconds instead of after hours. Every call honours `HF_ENDPOINT`, read when the call is made
(huggingface_hub itself reads it once, at import time). The token never appears in a message,
a log line, a saved file (`move_token_to_env`) or a pushed file.
"""

import logging
import os
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalTokenNotFoundError,
    OIDCError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import filter_repo_objects, validate_repo_id

from recipes.errors import UserError

logger = logging.getLogger(__name__)

# Trainer leaves these in output_dir; none of them belongs in a published model repo.
# (run_config.yaml does: the card links it, to reproduce the run. tests/unit/test_hub.py checks.)
PUSH_IGNORE_PATTERNS = ["checkpoint-*", "_*", "runs/", "training_args.bin"]


# Files up to this size are checked for the token before a push (configs, logs, cards).
SCAN_LIMIT_BYTES = 50 * 2**20


LOGIN_HINT = "run `hf auth login` or set HF_TOKEN to a token with write access"


def _api(token: str | None) -> HfApi:
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)


def _effective_token(token: str | None) -> str | None:
    """The token requests will carry: the argument, else HF_TOKEN or the saved login."""
    try:
        return token or get_token()
    except OIDCError:
        return None


def _redact(text: str, token: str | None) -> str:
    secret = _effective_token(token)
    return text.replace(secret, "hf_***") if secret else text


def _status(err: HfHubHTTPError) -> int | None:
    return err.response.status_code if err.response is not None else None


# --------------------------------------------------------------------------- token
def move_token_to_env(training_args) -> None:
    """Take `hub_token` out of the TrainingArguments and hand it over as HF_TOKEN.

    Trainer pickles its arguments into training_args.bin: in output_dir, in every checkpoint,
    and on the Hub with `hub_strategy: checkpoint`. A token given as `--hub_token` would be
    saved there in clear. huggingface_hub reads HF_TOKEN on every request, so Trainer's pushes
    and ours still authenticate; the variable lives in this process and its children only.
    """
    if training_args.hub_token:
        os.environ["HF_TOKEN"] = training_args.hub_token
        training_args.hub_token = None


# --------------------------------------------------------------------------- access check
def check_hub_access(repo_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Check the token and create the repo if needed; return the full repo id (`user/name`)."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"hub_model_id '{repo_id}' is not a valid Hub repo id: {err}") from None
    api = _api(token)
    try:
        me = api.whoami()
    except LocalTokenNotFoundError:
        raise UserError(
            f"push_to_hub is on but no Hugging Face token was found: {LOGIN_HINT}."
        ) from None
    except HfHubHTTPError as err:
        if _status(err) == 401:
            raise UserError(
                f"the Hub at {api.endpoint} rejected the token: {LOGIN_HINT}."
            ) from None
        raise UserError(
            f"could not check the token with {api.endpoint}: {_redact(str(err), token)}"
        ) from None
    except (OSError, httpx2.TransportError) as err:  # network down, wrong HF_ENDPOINT
        raise UserError(
            f"could not reach the Hub at {api.endpoint} ({type(err).__name__})."
        ) from None

    user = me["name"]
    namespace, _, name = repo_id.rpartition("/")
    namespace = namespace or user
    full_id = f"{namespace}/{name}"

    # create_repo(exist_ok=True) answers a 403 by falling back to repo_info, so an existing
    # repo we can read but not write would pass silently; whoami tells us up front instead.
    # Fine-grained tokens list permissions per resource; for those the server decides.
    role = me.get("auth", {}).get("accessToken", {}).get("role")
    if role == "read":
        raise UserError(
            f"the Hugging Face token for '{user}' is read-only, so it cannot push to {full_id}: "
            f"{LOGIN_HINT}."
        )
    writable = [user] + [o["name"] for o in me.get("orgs", []) if o.get("roleInOrg") != "read"]
    if role != "fineGrained" and namespace not in writable:
        raise UserError(_not_writable(full_id, namespace, writable))

    try:
        api.create_repo(full_id, exist_ok=True, repo_type="model", private=private)
    except HfHubHTTPError as err:
        if _status(err) in (401, 403):
            raise UserError(_not_writable(full_id, namespace, writable)) from None
        raise UserError(f"could not create {full_id}: {_redact(str(err), token)}") from None
    return full_id


def _not_writable(full_id: str, namespace: str, writable: list[str]) -> str:
    return (
        f"the token cannot write to '{full_id}' (namespace '{namespace}'); it can write to: "
        f"{', '.join(writable)}. Set hub_model_id to a repo in one of those namespaces, e.g. "
        f"'{writable[0]}/{full_id.split('/')[-1]}', or use a token with access to '{namespace}'."
    )


# --------------------------------------------------------------------------- push
def push_folder(
    output_dir: str | Path,
    repo_id: str,
    token: str | None = None,
    commit_message: str = "Upload model pretrained from scratch",
) -> str:
    """Upload model, tokenizer, card, results and plots from output_dir; return the commit URL."""
    return upload(output_dir, repo_id, token=token, commit_message=commit_message)[0]


def upload(
    folder: str | Path,
    repo_id: str,
    *,
    revision: str = "main",
    commit_message: str,
    token: str | None = None,
    ignore_patterns: list[str] = PUSH_IGNORE_PATTERNS,
    allow_patterns: list[str] | None = None,
    exact: bool = False,
) -> tuple[str, bool]:
    """Upload `folder` to the branch `revision` of `repo_id` (created from `main` if it does not
    exist); return the commit URL and whether anything changed. Files the branch already holds
    byte for byte are not sent again, and a push that changes nothing makes no commit.
    `exact`: also delete the branch's files the folder does not have (a revision holds one
    checkpoint, whatever `main` held when the branch was made)."""
    folder = Path(folder)
    _refuse_files_with_token(folder, _effective_token(token), ignore_patterns)
    api = _api(token)
    try:
        try:
            before = api.repo_info(repo_id, revision=revision).sha
        except RevisionNotFoundError:  # a new branch, from main: a change even if no file is
            before = None
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="model",
            revision=revision,
            commit_message=commit_message,
            allow_patterns=allow_patterns,
            ignore_patterns=list(ignore_patterns),
            delete_patterns="*" if exact else None,
        )
    except HfHubHTTPError as err:
        if _status(err) in (401, 403):
            raise UserError(f"the Hub refused the push to {repo_id}: {LOGIN_HINT}.") from None
        raise
    logger.info("Pushed %s to %s (%s)", folder, info.commit_url, revision)
    return info.commit_url, info.oid != before


def _refuse_files_with_token(
    output_dir: Path, token: str | None, ignore_patterns: list[str] = PUSH_IGNORE_PATTERNS
) -> None:
    # A config or log dump can carry the token; a public repo would then leak it for good.
    # Weights are skipped by size: reading gigabytes to find a 40-byte string is not worth it.
    if not token:
        return
    files = sorted(
        p.relative_to(output_dir).as_posix() for p in output_dir.rglob("*") if p.is_file()
    )
    for rel in filter_repo_objects(files, ignore_patterns=ignore_patterns):
        path = output_dir / rel
        if path.stat().st_size <= SCAN_LIMIT_BYTES and token.encode() in path.read_bytes():
            raise UserError(
                f"{path} contains your Hugging Face token; remove it (or the file) before pushing."
            )
