"""Pseudo-log-likelihood (recipes/models/pll.py) and minimal-pair accuracy: the batched scorer
equals a direct computation and the plain one-sentence-per-pass scorer, for every family and
any token budget; special tokens are never scored; a tie counts wrong."""

import pytest
import torch
from helpers import tiny_model
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
    RobertaConfig,
    RobertaForMaskedLM,
)

from recipes.models.pll import (
    encode_for_scoring,
    pseudo_log_likelihoods,
    pseudo_log_likelihoods_plain,
)
from recipes.runs.metrics import minimal_pair_accuracy, score_minimal_pairs

SENTENCES = [
    "Shall I compare thee to a summer's day?",
    "Thou art more lovely and more temperate.",
    "a",
    "",  # nothing to score: 0.0
    "Rough winds do shake the darling buds of May, and summer's lease hath all too short a date.",
]


@pytest.fixture(scope="module")
def tokenizer(bpe_tokenizer_dir):
    return AutoTokenizer.from_pretrained(bpe_tokenizer_dir)


def _model(kind, tok):
    ids = dict(pad_token_id=tok.pad_token_id)
    if kind is ModernBertForMaskedLM:
        ids |= dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                    cls_token_id=tok.bos_token_id, sep_token_id=tok.eos_token_id)  # fmt: skip
    config = {RobertaForMaskedLM: RobertaConfig, BertForMaskedLM: BertConfig,
              ModernBertForMaskedLM: ModernBertConfig}[kind]  # fmt: skip
    return tiny_model(kind, config, vocab_size=len(tok), positions=64, **ids)


def direct_pll(model, tok, sentence: str) -> float:
    """Salazar et al. written out: one forward pass per scored token."""
    ids = tok(sentence)["input_ids"]
    special = set(tok.all_special_ids) - {tok.unk_token_id}
    total = 0.0
    with torch.no_grad():
        for i, token in enumerate(ids):
            if token in special:
                continue
            masked = list(ids)
            masked[i] = tok.mask_token_id
            logits = model(input_ids=torch.tensor([masked])).logits[0, i]
            total += float(torch.log_softmax(logits, -1)[token])
    return total


@pytest.mark.parametrize("kind", [RobertaForMaskedLM, BertForMaskedLM, ModernBertForMaskedLM])
def test_batched_equals_direct_and_plain_for_every_budget(kind, tokenizer):
    model = _model(kind, tokenizer)
    direct = [direct_pll(model, tokenizer, s) for s in SENTENCES]
    plain = pseudo_log_likelihoods_plain(model, tokenizer, SENTENCES)
    assert plain == pytest.approx(direct, abs=1e-5)
    # 30 tokens: a sentence's copies span several batches; 1: one copy per pass
    for budget in (1, 30, 8192):
        batched = pseudo_log_likelihoods(model, tokenizer, SENTENCES, token_budget=budget)
        assert batched == pytest.approx(direct, abs=1e-5), budget
    assert direct[3] == 0.0 and all(score < 0 for i, score in enumerate(direct) if i != 3)


def test_special_tokens_are_context_never_scored(tokenizer):
    ((ids, positions),) = encode_for_scoring(tokenizer, ["Good morrow, my lord."])
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert positions == list(range(1, len(ids) - 1))
    # a special token written in the text is special there too
    ((ids, positions),) = encode_for_scoring(tokenizer, ["my lord </s> sir"])
    assert tokenizer.eos_token_id in [ids[i] for i in range(1, len(ids) - 1)]
    assert all(ids[i] not in tokenizer.all_special_ids for i in positions)


def test_the_unknown_token_is_text_and_scored(train_wordpiece_tokenizer):
    wordpiece = AutoTokenizer.from_pretrained(train_wordpiece_tokenizer(600))
    ((ids, positions),) = encode_for_scoring(wordpiece, ["my lord \u2603 sir"])  # a snowman
    assert wordpiece.unk_token_id in ids  # a character the vocabulary lacks
    assert positions == list(range(1, len(ids) - 1))  # all but [CLS] and [SEP]


def test_ties_count_wrong_and_groups_are_scored_apart():
    assert minimal_pair_accuracy([-1.0, -2.0], [-1.0, -2.0])["accuracy"] == 0.0  # constant scorer
    result = minimal_pair_accuracy(
        [-1.0, -5.0, -3.0, -3.0],
        [-2.0, -4.0, -3.0, -9.0],
        {"UID": ["a", "a", "b", "b"], "field": ["x", "y", "y", "y"]},
    )
    assert result["accuracy"] == 0.5 and result["pairs"] == 4 and result["ties"] == 1
    assert result["by_group"] == {"UID": {"a": 0.5, "b": 0.5}, "field": {"x": 1.0, "y": 1 / 3}}


def test_identical_sentences_tie_and_are_wrong(tokenizer):
    from recipes.data.minimal_pairs import MinimalPairs

    model = _model(RobertaForMaskedLM, tokenizer)
    same = MinimalPairs("x", good=["My lord."], bad=["My lord."])
    assert score_minimal_pairs(model, tokenizer, same)["accuracy"] == 0.0
