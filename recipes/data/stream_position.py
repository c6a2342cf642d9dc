"""Resume a `streaming: true` run where its data stood, from datasets' IterableDataset state.

Trainer resumes a dataset by reading it again from the start and dropping the batches already
trained on: exact, but resuming a stream after N steps costs reading and tokenizing N steps of
text. datasets' `IterableDataset.state_dict()` is the stream's position after the latest
example it yielded; `load_state_dict()` makes the next pass start right after it.

The position a checkpoint needs is the one after the last example *trained on*, not after the
last one read: the data loader reads ahead (accelerate fetches the next batch early, and rank 0
fetches one batch per rank). So `TrackedStream` keeps the state after each of the latest
examples, and `SaveStreamPosition` writes checkpoint-N/stream_position.json with the state after
example N x examples_per_step, where examples_per_step = per-device batch x gradient
accumulation x ranks (rank 0 reads every rank's batches).

What is exact: resuming in the stream's first pass, with `dataloader_num_workers: 0` (positions
recorded in worker processes never reach the main one). Otherwise a checkpoint has no
stream_position.json and the resumed run falls back to Trainer's re-read-and-skip.
"""

import collections
import json
import os
from pathlib import Path

import torch
from transformers import TrainerCallback

POSITION_FILE = "stream_position.json"


def track_stream_position(trainer, resume_from: str | None) -> None:
    """Make the stream `trainer` trains on resumable from its checkpoints' stream positions.
    `trainer.train_dataset` must be a TrackedStream; call before `trainer.train()`."""
    stream = trainer.train_dataset
    stream.set_examples_per_step(trainer.get_total_train_batch_size(trainer.args))
    trainer.add_callback(SaveStreamPosition(stream))
    if resume_from is None:
        return
    examples = stream.restore(resume_from)
    if examples is None:
        print(
            f"{resume_from} has no usable {POSITION_FILE} (none saved, or the global batch "
            "changed): re-reading the stream up to where it was"
        )
    else:
        trainer.args.ignore_data_skip = True  # the stream itself starts at the right place
        print(f"Resuming the stream after its example {examples} ({POSITION_FILE})")


class TrackedStream(torch.utils.data.IterableDataset):
    """A datasets IterableDataset that remembers its state after each of its latest examples."""

    def __init__(self, dataset, examples_per_step: int = 1):
        self.dataset = dataset
        self.set_examples_per_step(examples_per_step)
        self.examples_read = 0  # since the start of the run, a resumed one included
        self.passes = 0  # started passes over the stream; > 1 means it was read through

    def set_examples_per_step(self, examples_per_step: int):
        """The global batch: examples read per optimizer step, all ranks and micro-batches."""
        self.examples_per_step = examples_per_step
        # The loader reads ahead by a batch or two per rank: 4 steps of states is ample.
        self.states = collections.deque(maxlen=4 * examples_per_step + 64)  # (count, state)

    def __iter__(self):
        if torch.utils.data.get_worker_info() is not None:
            yield from self.dataset  # in a loader worker: nothing to record in the main process
            return
        self.passes += 1
        for example in self.dataset:
            self.examples_read += 1
            self.states.append((self.examples_read, self.dataset.state_dict()))
            yield example

    def set_epoch(self, epoch: int):  # Trainer calls this through the data loader
        self.dataset.set_epoch(epoch)

    def position_after(self, examples: int) -> dict | None:
        """The stream's state after its `examples`-th example, if still known exactly."""
        if self.passes != 1:
            return None  # never read in this process, or read through: counts mean nothing
        for count, state in reversed(self.states):
            if count == examples:
                return state
        return None

    def restore(self, checkpoint: str | os.PathLike) -> int | None:
        """Start the next pass after the position saved in `checkpoint`; return the example
        count there, or None when the checkpoint has no position (then Trainer must skip)."""
        path = Path(checkpoint) / POSITION_FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        if saved["examples_per_step"] != self.examples_per_step:
            return None  # batch size or ranks changed: the count would be wrong
        self.dataset.load_state_dict(saved["state"])
        self.examples_read = saved["examples"]
        return saved["examples"]


class SaveStreamPosition(TrainerCallback):
    """Writes the position after the last trained-on example into every checkpoint."""

    def __init__(self, stream: TrackedStream):
        self.stream = stream
        self.warned = False

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:  # rank 0 reads the stream for every rank
            return
        examples = state.global_step * self.stream.examples_per_step
        position = self.stream.position_after(examples)
        if position is None:
            if not self.warned:
                print(
                    "stream position not recorded (a loader worker reads the stream, or the "
                    "stream was read through): a resumed run re-reads it and skips what was "
                    "trained on"
                )
                self.warned = True
            return
        record = {
            "examples": examples,
            "examples_per_step": self.stream.examples_per_step,
            "state": position,
        }
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        tmp = checkpoint / (POSITION_FILE + ".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, checkpoint / POSITION_FILE)  # a kill mid-write leaves no partial file
