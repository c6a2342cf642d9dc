"""Masking: which tokens the model must predict, drawn so that a resumed run masks exactly as an
unbroken one.

BERT's recipe: `mlm_probability` of the tokens (15%) are selected; of those 80% become the mask
token, 10% a random token and 10% stay as they are; the model is scored on all selected ones.

Whole-word masking (`whole_word_mask: true`) selects words instead of tokens: every piece of a
selected word is masked together, and the 80/10/10 choice is made once per word (a word is all
mask tokens, all random tokens or all kept), so no piece of it is left to give the others away.
Each word is selected with probability `mlm_probability`, so the expected share of masked
tokens stays `mlm_probability`. (Google's BERT code draws 80/10/10 per piece even under
whole-word masking; transformers v5's `whole_word_mask=True` drops the 10/10 altogether.)

Where words start is read from the token ids alone, with a table computed once per vocabulary,
so it works on packed blocks, streams and line-by-line data alike (transformers v5's
whole-word masking needs each token's character offsets, which packed blocks do not carry):

- byte-level BPE (RoBERTa, ModernBERT): a token beginning with "Ġ" (a space) begins a word;
- SentencePiece-style BPE: a token beginning with "▁" begins a word;
- WordPiece (BERT): every token that does not begin with "##" begins a word;
- a token made only of punctuation, symbols or whitespace ("," "." "Ċ" "Ġ(") is a word of its
  own, and the token after it begins a new word: "king's," is `king's` + `,` (as BERT's own
  tokenizer splits punctuation off words); an apostrophe piece such as "'s" has letters, so it
  stays with its word;
- a rare punctuation mark that byte-level BPE splits into byte pieces (a curly quote in a text
  that has few) cannot be told from letters piece by piece: it stays with the word it touches;
- special tokens are never masked and end words; the first token of a row begins a word (a
  packed block may start in the middle of one: its tail is then a word here);
- a token added with `add_tokens_from` (" cardiology", a leading space) begins a word.
"""

import hashlib
import json
import unicodedata
from dataclasses import dataclass

import torch
from tokenizers import decoders
from transformers import DataCollatorForLanguageModeling

from recipes.errors import UserError


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

    `whole_words`: mask whole words (module docstring). The stock `whole_word_mask` stays off:
    it needs offset mappings and forces every selected token to the mask token.
    """

    whole_words: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.whole_words:
            self.begins, self.ends, self.special = word_boundary_tables(self.tokenizer)

    def create_rng(self):
        pass  # no per-process generator: torch_mask_tokens makes one per batch

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        key = str(self.seed).encode()
        digest = hashlib.blake2b(inputs.numpy().tobytes(), digest_size=8, key=key).digest()
        self.generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        if self.whole_words:
            return self.mask_whole_words(inputs, special_tokens_mask)
        return super().torch_mask_tokens(inputs, special_tokens_mask, offset_mapping)

    def mask_whole_words(self, inputs, special_tokens_mask=None):
        ids = inputs.clamp(0, len(self.begins) - 1)
        special = self.special[ids]
        if special_tokens_mask is not None:
            special |= special_tokens_mask.bool()
        # a word starts at a word-initial token, after a punctuation/special token, at column 0
        after_boundary = torch.ones_like(special)
        after_boundary[:, 1:] = self.ends[ids[:, :-1]] | special[:, :-1]
        starts = (self.begins[ids] | after_boundary) & ~special
        word = (starts.flatten().cumsum(0) - 1).clamp(min=0).view_as(inputs)  # batch-wide index
        n_words = int(starts.sum())
        g = self.generator
        chosen = torch.rand(n_words, generator=g) < self.mlm_probability
        how = torch.rand(n_words, generator=g)  # one 80/10/10 draw per word
        masked = chosen[word] & ~special if n_words else torch.zeros_like(special)
        labels = inputs.clone()
        labels[~masked] = -100
        if not n_words:
            return inputs, labels
        to_mask = masked & (how < self.mask_replace_prob)[word]
        to_random = (
            masked & ~to_mask & (how < self.mask_replace_prob + self.random_replace_prob)[word]
        )
        random_ids = torch.randint(len(self.tokenizer), inputs.shape, generator=g)
        inputs[to_mask] = self.tokenizer.mask_token_id
        inputs[to_random] = random_ids[to_random]
        return inputs, labels


def word_scheme(tokenizer) -> tuple[str, str]:
    """How the tokenizer marks words: ("start", marker) when word-initial tokens carry a marker
    (byte-level "Ġ", SentencePiece "▁"), ("continue", prefix) when word-internal ones do
    (WordPiece "##")."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    model = spec.get("model") or {}
    if model.get("type") == "WordPiece":
        return "continue", model.get("continuing_subword_prefix") or "##"
    text = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
    if '"ByteLevel"' in text:
        return "start", "Ġ"
    if '"Metaspace"' in text:
        return "start", "▁"
    raise UserError(
        f"`whole_word_mask` needs to know where words start, and this tokenizer "
        f"({type(tokenizer).__name__}, model {model.get('type')}) marks them in no way it "
        "knows: byte-level BPE (Ġ), SentencePiece-style BPE (▁) and WordPiece (##) are supported."
    )


def _is_punctuation(text: str) -> bool:
    """Only punctuation, symbols or whitespace (Unicode categories P*, S*, Z*, C*)."""
    return bool(text) and all(unicodedata.category(c)[0] in "PSZC" for c in text)


def word_boundary_tables(tokenizer):
    """Per token id: does it begin a word, does a word end after it, is it special (bool
    tensors of len(tokenizer)). Computed once per vocabulary: ~30k strings, well under 1 s."""
    kind, marker = word_scheme(tokenizer)
    size = len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    added = {t.content for t in tokenizer.added_tokens_decoder.values() if not t.special}
    byte_level = decoders.ByteLevel() if marker == "Ġ" else None
    begins, ends = torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool)
    special = torch.zeros(size, dtype=torch.bool)
    special[[i for i in tokenizer.all_special_ids if i < size]] = True
    for i, token in enumerate(tokens):
        if token is None or special[i]:
            ends[i] = True
            continue
        if token in added:  # added whole words: " cardiology" (byte-level), "cardiology"
            begins[i] = token.startswith(" ") or kind == "continue"
            text = token  # (or runs of spaces, which some tokenizers add: words of their own)
        elif kind == "continue":
            begins[i] = not token.startswith(marker)
            text = token.removeprefix(marker)
        else:
            begins[i] = token.startswith(marker)
            # byte-level: map back to the text; a piece of a multi-byte character decodes to
            # U+FFFD and counts as word material, not punctuation
            text = byte_level.decode([token]) if byte_level else token.replace(marker, " ")
            text = text.replace("\ufffd", "x")
        if _is_punctuation(text):
            begins[i] = ends[i] = True
    return begins, ends, special
