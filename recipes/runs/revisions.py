"""Checkpoints as Hub revisions (`push_revisions: true`), and log-spaced early checkpoints.

Pythia, OLMo and Ettin publish their checkpoints as branches of one repo, loadable by name:
`from_pretrained(id, revision="step1000")`. Here the initial weights go to branch `step0` and
every checkpoint Trainer saves to `step<N>`, the model files byte for byte as in checkpoint-N
(`main` gets the final model at the end, as without revisions).

A checkpoint is first staged: its model and tokenizer files hard-linked (copied where links
fail) into output_dir/_revisions/step<N>/, in the moment Trainer saved it, so that
`save_total_limit` may delete checkpoint-N before it is uploaded. A background thread uploads
the staged folders in order, so training never waits on the network; a pushed one is listed in
output_dir/revisions (pushed to `main` with the model, and the card's table) and its staged
folder removed. Whatever is still staged when a run is killed is pushed by the resumed run,
which also stages every checkpoint the list does not name; branches that exist are reused.
The run ends only once the last upload is done (`on_train_end` waits, saying for what).
"""

import json
import os
import queue
import shutil
import threading
from pathlib import Path

from transformers import TrainerCallback

from recipes.errors import UserError
from recipes.run_folder import TRAINER_STATE, checkpoint_is_complete, checkpoints
from recipes.runs import hub

REVISIONS_FILE = "revisions"  # output_dir/revisions and the repo's main: a line per revision
STAGING = "_revisions"  # `_*` is never pushed to main (hub.PUSH_IGNORE_PATTERNS)
STEP_FILE = "_step"  # in a staged folder: "<step> <tokens seen>"; `_*`: not uploaded
HEADER = "# revision\tstep\ttokens_seen"
# What a revision holds: enough for from_pretrained and the tokenizer, not the optimizer state.
REVISION_PATTERNS = [
    "*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json",
    "tokenizer*", "special_tokens_map.json", "vocab*", "merges.txt", "trainer_state.json",
]  # fmt: skip


def revision_name(step: int) -> str:
    return f"step{step}"


# --------------------------------------------------------------------------- the list
def read_revisions(output_dir: str | Path) -> list[tuple[str, int, int]]:
    """(revision, step, tokens seen) of every revision pushed from output_dir, by step."""
    path = Path(output_dir) / REVISIONS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, step, tokens = line.split("\t")
            rows.append((name, int(step), int(tokens)))
    return sorted(rows, key=lambda row: row[1])


def _record(output_dir: Path, name: str, step: int, tokens: int) -> None:
    rows = {row[0]: row for row in read_revisions(output_dir)} | {name: (name, step, tokens)}
    lines = [HEADER] + [f"{n}\t{s}\t{t}" for n, s, t in sorted(rows.values(), key=lambda r: r[1])]
    (output_dir / REVISIONS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- staging
def stage(source: Path, output_dir: Path, step: int, tokens: int) -> Path:
    """Hard-link `source`'s model and tokenizer files into _revisions/step<N>/ (a half-written
    folder is never taken for a staged one: it is built under a temporary name)."""
    from huggingface_hub.utils import filter_repo_objects

    final = output_dir / STAGING / revision_name(step)
    tmp = output_dir / STAGING / f".{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = sorted(p.name for p in source.iterdir() if p.is_file())
    for name in filter_repo_objects(names, allow_patterns=REVISION_PATTERNS):
        try:
            os.link(source / name, tmp / name)
        except OSError:  # another file system, or one without hard links
            shutil.copy2(source / name, tmp / name)
    (tmp / STEP_FILE).write_text(f"{step} {tokens}\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def staged(output_dir: Path) -> list[Path]:
    """The staged folders not pushed yet, by step."""
    folder = output_dir / STAGING
    found = (
        [p for p in folder.glob("step*") if (p / STEP_FILE).is_file()] if folder.is_dir() else []
    )
    return sorted(found, key=lambda p: int(p.name.removeprefix("step")))


def push_staged(folder: Path, output_dir: Path, repo_id: str) -> str:
    """Upload one staged folder to its branch, list it in output_dir/revisions, remove it."""
    step, tokens = map(int, (folder / STEP_FILE).read_text().split())
    hub.upload(
        folder, repo_id, revision=folder.name, exact=True, ignore_patterns=["_*"],
        commit_message=f"Checkpoint at step {step} ({tokens:,} tokens seen)",
    )  # fmt: skip
    _record(output_dir, folder.name, step, tokens)
    shutil.rmtree(folder)
    return folder.name


# --------------------------------------------------------------------------- the callback
class PushRevisions(TrainerCallback):
    """Stage the initial weights and every saved checkpoint; upload them in the background."""

    def __init__(self, repo_id: str, output_dir: str):
        self.repo_id, self.out = repo_id, Path(output_dir)
        self.queue: queue.Queue[Path | None] = queue.Queue()
        self.pending: list[str] = []  # revisions queued or uploading, for the closing message
        self.failed: list[str] = []
        self.thread: threading.Thread | None = None

    def _worker(self) -> None:
        while (folder := self.queue.get()) is not None:
            try:
                push_staged(folder, self.out, self.repo_id)
                print(f"pushed revision {folder.name} to {self.repo_id}")
            except Exception as err:  # noqa: BLE001  (a failed upload must not stop training)
                self.failed.append(f"{folder.name} ({type(err).__name__}: {err})")
            self.pending.remove(folder.name)

    def _enqueue(self, folder: Path) -> None:
        self.pending.append(folder.name)
        self.queue.put(folder)

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not state.is_world_process_zero:
            return
        pushed = {step for _, step, _ in read_revisions(self.out)}
        waiting = {int(p.name.removeprefix("step")) for p in staged(self.out)}
        if state.global_step == 0 and 0 not in pushed | waiting:
            self._stage_initial(model, processing_class)
        # a resumed run: checkpoints saved before the kill that were never staged
        for step, path in checkpoints(self.out):
            if step not in pushed | waiting and checkpoint_is_complete(path):
                stage(path, self.out, step, _tokens_at(path))
        self.thread = threading.Thread(target=self._worker, name="push-revisions", daemon=True)
        self.thread.start()
        for folder in staged(self.out):
            self._enqueue(folder)

    def _stage_initial(self, model, processing_class) -> None:
        if any(hasattr(p, "full_tensor") for p in model.parameters()):  # FSDP2: sharded
            print("push_revisions: step0 not pushed, the weights are sharded (FSDP) at the start")
            return
        source = self.out / STAGING / ".initial"
        shutil.rmtree(source, ignore_errors=True)
        model.save_pretrained(source)
        if processing_class is not None:
            processing_class.save_pretrained(source)
        stage(source, self.out, 0, 0)
        shutil.rmtree(source)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self.thread is None:
            return
        checkpoint = self.out / f"checkpoint-{state.global_step}"
        self._enqueue(stage(checkpoint, self.out, state.global_step, state.num_input_tokens_seen))

    def on_train_end(self, args, state, control, **kwargs):
        if self.thread is None:
            return
        if self.pending:
            print(f"waiting for the upload of {', '.join(self.pending)} to {self.repo_id} ...")
        self.queue.put(None)
        self.thread.join()
        self.thread = None
        for failure in self.failed:
            print(
                f"warning: revision {failure} was not pushed; it stays in {self.out / STAGING}: "
                f"`python -m recipes.push {self.out}` pushes it"
            )


def _tokens_at(checkpoint: Path) -> int:
    state = json.loads((checkpoint / TRAINER_STATE).read_text())
    return int(state.get("num_input_tokens_seen") or 0)


class LogSpacedSaves(TrainerCallback):
    """Save at steps 1, 2, 4, 8, ... below save_steps as well (Pythia's early checkpoints:
    training changes fastest at the start), then every save_steps as set."""

    def on_step_end(self, args, state, control, **kwargs):
        step, every = state.global_step, state.save_steps or args.save_steps  # a ratio resolved
        if 0 < step < every and step & (step - 1) == 0:  # a power of two
            control.should_save = True


def revision_callbacks(data_args, training_args) -> list[TrainerCallback]:
    """The callbacks `push_revisions` and `save_steps_log_spaced` ask for (after start_run,
    which resolved hub_model_id)."""
    callbacks: list[TrainerCallback] = []
    if data_args.save_steps_log_spaced:
        callbacks.append(LogSpacedSaves())
    if data_args.push_revisions:
        if not training_args.push_to_hub:
            raise UserError(
                "`push_revisions: true` pushes checkpoints to the Hub: set `push_to_hub: true` "
                "and `hub_model_id` too."
            )
        callbacks.append(PushRevisions(training_args.hub_model_id, training_args.output_dir))
    return callbacks
