"""Whole-word masking from token ids alone: byte-level BPE (RoBERTa), WordPiece (BERT) and a
ModernBERT-style byte-level BPE with [CLS]/[SEP]; packed blocks and padded lines.

Words are checked against an oracle the masking code does not use: the tokenizer's own
`word_ids()` (its pre-tokenizer's words, from character offsets)."""

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from recipes.data.masking import ResumableMaskingCollator, word_boundary_tables

SENTENCE = (
    "Unmistakably, the multitudinous seas incarnadine: making the green one red. "
    "Shakespeare's extraordinarily unprofitable abominations!"
)


def corpus_text(corpus_files) -> str:
    return "\n".join(open(f, encoding="utf-8").read() for f in corpus_files)


@pytest.fixture(scope="module")
def wordpiece_tokenizer(train_wordpiece_tokenizer):
    return PreTrainedTokenizerFast.from_pretrained(train_wordpiece_tokenizer(800))


@pytest.fixture(scope="module")
def modernbert_style_tokenizer(corpus_files):
    """ModernBERT's tokenizer is byte-level BPE (no prefix space) with [CLS] ... [SEP]."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([corpus_text(corpus_files)], trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )


@pytest.fixture(scope="module", params=["bytelevel-bpe", "wordpiece", "modernbert-style"])
def tokenizer(request, bpe_tokenizer_dir):
    if request.param == "bytelevel-bpe":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    return request.getfixturevalue(request.param.replace("-", "_") + "_tokenizer")


def collator(tokenizer, seed=0, **kwargs):
    return ResumableMaskingCollator(tokenizer, seed=seed, whole_words=True, **kwargs)


def test_a_split_word_is_never_partly_masked(tokenizer):
    encoding = tokenizer(SENTENCE)
    words = encoding.word_ids()
    ids = encoding["input_ids"]
    pieces = {w: [i for i, x in enumerate(words) if x == w] for w in set(words) - {None}}
    assert max(len(p) for p in pieces.values()) >= 3, "the sentence has words of many pieces"
    mask_id = tokenizer.mask_token_id
    masked_words = 0
    for seed in range(300):
        # no random replacement here: a random token may be the mask token itself
        make = collator(tokenizer, seed=seed, random_replace_prob=0.0)
        batch = make([{"input_ids": ids}])
        labels, inputs = batch["labels"][0], batch["input_ids"][0]
        for positions in pieces.values():
            selected = [bool(labels[i] != -100) for i in positions]
            assert all(selected) or not any(selected), (seed, positions, selected)
            if all(selected):
                masked_words += len(positions) > 1
                # mask/keep per word: all pieces become the mask token, or none does
                replaced = [bool(inputs[i] == mask_id) for i in positions]
                assert all(replaced) or not any(replaced), (seed, positions, replaced)
        specials = torch.tensor(
            tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        )
        assert not (labels[specials.bool()] != -100).any()
    assert masked_words > 20  # multi-piece words do get masked


def test_masked_share_stays_near_mlm_probability_on_packed_blocks(tokenizer, corpus_files):
    ids = tokenizer(corpus_text(corpus_files))["input_ids"][: 128 * 160]
    blocks = torch.tensor(ids).view(-1, 128)
    specials = torch.isin(blocks, torch.tensor(tokenizer.all_special_ids))
    make = collator(tokenizer, mlm_probability=0.15)
    masked = total = mask_tokens = 0
    for batch in blocks.split(16):
        out = make([{"input_ids": row} for row in batch])
        selected = out["labels"] != -100
        masked += int(selected.sum())
        mask_tokens += int((out["input_ids"][selected] == tokenizer.mask_token_id).sum())
        total += int((~torch.isin(batch, torch.tensor(tokenizer.all_special_ids))).sum())
    assert total == int((~specials).sum())
    assert abs(masked / total - 0.15) < 0.015, masked / total
    assert abs(mask_tokens / masked - 0.8) < 0.06  # per word, so a little noisier than per token


def test_masks_are_a_function_of_seed_and_batch_and_padding_is_never_masked(tokenizer):
    lines = [SENTENCE, "Out, damned spot!", "To be, or not to be"]
    examples = [{"input_ids": tokenizer(t)["input_ids"]} for t in lines]
    make = collator(tokenizer, seed=3, pad_to_multiple_of=8)
    first, again = make(examples), collator(tokenizer, seed=3, pad_to_multiple_of=8)(examples)
    assert torch.equal(first["labels"], again["labels"])
    assert torch.equal(first["input_ids"], again["input_ids"])
    other = collator(tokenizer, seed=4, pad_to_multiple_of=8)(examples)
    assert not torch.equal(first["labels"], other["labels"])
    padding = first["attention_mask"] == 0
    assert padding.any() and not (first["labels"][padding] != -100).any()


def test_punctuation_is_a_word_of_its_own(bpe_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    begins, ends, special = word_boundary_tables(tok)
    comma, space_the = tok.convert_tokens_to_ids([",", "Ġthe"])
    assert begins[comma] and ends[comma]  # "," stands alone
    assert begins[space_the] and not ends[space_the]
    piece = tok.convert_tokens_to_ids("'s")  # an apostrophe piece stays with its word
    if piece != tok.unk_token_id:
        assert not begins[piece]
    assert special[tok.mask_token_id] and special[tok.pad_token_id]


def test_added_words_begin_words_and_added_space_runs_stand_alone(bpe_tokenizer_dir):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    tok.add_tokens([AddedToken(" incarnadine", normalized=False), AddedToken("   ")])
    begins, ends, _ = word_boundary_tables(tok)
    word, spaces = tok.convert_tokens_to_ids([" incarnadine", "   "])
    assert begins[word] and not ends[word]
    assert begins[spaces] and ends[spaces]
