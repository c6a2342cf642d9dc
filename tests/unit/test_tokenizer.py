"""Tokenizer training: exact round trips (Persian, ZWNJ, digits, emoji) and stock loading."""

import json

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

ROUND_TRIP = [
    "To be, or not to be: that is the question.",
    "  leading spaces,\ttabs and\nnew lines  ",
    # Persian: ZWNJ (U+200C) inside می‌خواهم and کتاب‌ها, Persian digits ۱۴۰۳, Arabic comma.
    "من می\u200cخواهم این کتاب\u200cها را در سال ۱۴۰۳ بخوانم، ممنون.",
    "emoji 😀👍🏽 and accents: café, naïve, Ångström",
    "mixed: RoBERTa روبرتا 123 ۴۵۶",
]


@pytest.fixture(scope="module")
def bpe_dir(train_bpe_tokenizer):
    return train_bpe_tokenizer(2000)


@pytest.fixture(scope="module")
def wordpiece_dir(train_wordpiece_tokenizer):
    return train_wordpiece_tokenizer(2000)


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_bytelevel_bpe_round_trips_exactly(bpe_dir, text):
    tok = AutoTokenizer.from_pretrained(bpe_dir)
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.unk_token_id not in ids  # byte-level: every byte has a token
    assert tok.decode(ids, skip_special_tokens=True) == text
    # transformers' tokenizer and the raw `tokenizers` one agree token for token
    assert Tokenizer.from_file(str(bpe_dir / "tokenizer.json")).encode(text).ids == ids


def test_bpe_loads_with_specials_in_tutorial_order(bpe_dir):
    tok = AutoTokenizer.from_pretrained(bpe_dir)
    assert [tok.bos_token, tok.pad_token, tok.eos_token, tok.unk_token, tok.mask_token] == [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        "<mask>",
    ]
    assert tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]) == [0, 1, 2, 3, 4]
    assert tok.model_max_length == 512  # not 1e30
    assert len(tok) == 2000
    # "<mask>" absorbs the space before it, as the masked word's "Ġword" token did in training
    with_mask = tok("Good <mask>, my lord.")["input_ids"]
    assert with_mask.count(tok.mask_token_id) == 1
    assert tok.convert_ids_to_tokens(with_mask[with_mask.index(tok.mask_token_id) - 1]) == "Good"


def test_wordpiece_loads_and_matches_training_pipeline(wordpiece_dir):
    tok = AutoTokenizer.from_pretrained(wordpiece_dir)
    assert tok.mask_token == "[MASK]" and tok.cls_token == "[CLS]" and tok.pad_token_id == 0
    raw = Tokenizer.from_file(str(wordpiece_dir / "tokenizer.json"))
    for text in ["Thou art MORE lovely and more temperate.", "Shall I compare thee?"]:
        assert tok(text)["input_ids"] == raw.encode(text).ids
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text  # cased
    pair = tok("First part.", "Second part.")
    assert pair["token_type_ids"][-1] == 1 and pair["token_type_ids"][0] == 0


def test_training_args_are_recorded(bpe_dir):
    meta = json.loads((bpe_dir / "tokenizer_training_args.json").read_text())
    assert meta["tokenizer_args"]["vocab_size"] == 2000
    assert meta["tokenizer_args"]["min_frequency"] == 2


def test_the_tokenizer_card_says_what_it_is_and_loads_it_from_its_folder(bpe_dir):
    from huggingface_hub import ModelCard

    card = ModelCard.load(bpe_dir / "README.md")
    assert card.data.license == "apache-2.0" and "tokenizer" in card.data.tags
    assert "| algorithm | byte-level BPE |" in card.text
    assert "| vocabulary size | 2,000 |" in card.text
    assert f'AutoTokenizer.from_pretrained("{bpe_dir}")' in card.text
