"""Masking: which tokens the model must predict, drawn so that a resumed run masks exactly as an
unbroken one.

BERT's recipe: `mlm_probability` of the tokens (15%) are selected; of those 80% become the mask
token, 10% a random token and 10% stay as they are; the model is scored on all selected ones.
"""

import hashlib
from dataclasses import dataclass

import torch
from transformers import DataCollatorForLanguageModeling


@dataclass
class ResumableMaskingCollator(DataCollatorForLanguageModeling):
    """DataCollatorForLanguageModeling whose masks depend only on `seed` and the batch itself.

    The stock collator draws masks from the global RNG, or with `seed` from one generator per
    process (seed + worker id) that restarts with every epoch's workers and with every resumed
    run. Either way a resumed run masks its remaining batches differently from an
    uninterrupted one, and the masks depend on `dataloader_num_workers`. Seeding a generator
    per batch from (seed, the batch's token ids) makes masking a pure function of the data:
    the same in any worker, after skipped batches, after a resume. Shuffling regroups
    examples every epoch, so the same text is still masked afresh each epoch (except with a
    batch size of 1 or an unshuffled stream read more than once).
    """

    def create_rng(self):
        pass  # no per-process generator: torch_mask_tokens makes one per batch

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        key = str(self.seed).encode()
        digest = hashlib.blake2b(inputs.numpy().tobytes(), digest_size=8, key=key).digest()
        self.generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        return super().torch_mask_tokens(inputs, special_tokens_mask, offset_mapping)
