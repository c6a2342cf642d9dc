"""Model config derived from the tokenizer, and the sparse masked-LM head, for every family."""

import pytest
import torch
from helpers import tiny_shape

from recipes.errors import UserError
from recipes.models.families import FAMILIES, build_config, build_model
from recipes.models.sparse_head import use_sparse_mlm_head
from recipes.models.vocabulary import extend_vocabulary

# the families whose sparse masked-LM head is recipes/models/sparse_head.py's forward
SPARSE_FORWARD = [name for name, spec in FAMILIES.items() if spec.mlm_head]
# the families that number positions from pad_token_id + 1
AFTER_PAD = [name for name, spec in FAMILIES.items() if spec.positions_after_pad]
VOCAB = 100


class FakeTokenizer:
    """Ids as a freshly trained tutorial tokenizer has them: <s>=0 <pad>=1 </s>=2."""

    pad_token_id, bos_token_id, eos_token_id = 1, 0, 2
    cls_token_id = sep_token_id = None  # byte-level BPE: <s> and </s> serve

    def __len__(self):
        return VOCAB


def tiny_pair(family: str) -> tuple:
    """Two tiny models of the family with the same weights, in eval mode (no dropout): the
    sparse head, and the dense one."""
    torch.manual_seed(0)
    sparse = build_model(family, build_config(family, FakeTokenizer(), 32, tiny_shape()), True)
    dense = build_model(family, build_config(family, FakeTokenizer(), 32, tiny_shape()), False)
    dense.load_state_dict(sparse.state_dict())
    return sparse.eval(), dense.eval()


def masked_batch(rows: int = 3, length: int = 24, share: float = 0.2):
    ids = torch.randint(5, VOCAB, (rows, length))
    labels = torch.where(torch.rand(ids.shape) < share, ids, torch.full_like(ids, -100))
    return ids, labels


def next_sentence_labels(family: str, rows: int) -> dict:
    return {"next_sentence_label": torch.arange(rows) % 2} if FAMILIES[family].nsp_head else {}


@pytest.mark.parametrize("family", AFTER_PAD)
def test_config_takes_ids_vocab_and_positions_from_the_tokenizer(family):
    config = build_config(family, FakeTokenizer(), 128, {"hidden_size": 64})
    assert config.vocab_size == VOCAB
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 0, 2)
    assert config.max_position_embeddings == 128 + 1 + 1  # positions start at pad + 1
    assert config.hidden_size == 64


@pytest.mark.parametrize("family", AFTER_PAD)
def test_too_few_positions_is_an_error_not_an_index_error(family):
    with pytest.raises(UserError, match="max_seq_length \\+ pad_token_id \\+ 1 = 514"):
        build_config(family, FakeTokenizer(), 512, {"max_position_embeddings": 512})


@pytest.mark.parametrize("family", list(FAMILIES))
def test_sparse_head_matches_dense_loss_and_gradients(family):
    """The head at masked positions only (the config's own sparse_prediction, or
    sparse_head.py's forward calling the head as the family's record says) gives the dense
    head's loss and gradients: MLM head, tied embeddings, encoder and any NSP head."""
    sparse, dense = tiny_pair(family)
    ids, labels = masked_batch()
    extra = next_sentence_labels(family, len(ids))
    n = (labels != -100).sum()
    outputs = []
    for model in (dense, sparse):
        out = model(input_ids=ids, labels=labels, num_items_in_batch=n, **extra)
        out.loss.backward()
        outputs.append(out)
    assert torch.allclose(outputs[0].loss, outputs[1].loss, atol=1e-5)
    if extra:  # the next-sentence head runs as before
        assert torch.allclose(outputs[0][-1], outputs[1][-1], atol=1e-6)
    pairs = zip(dense.named_parameters(), sparse.named_parameters(), strict=True)
    trained = 0
    for (name, p1), (_, p2) in pairs:
        if p1.grad is None:  # e.g. a pooler only the NSP head reads, without one
            assert p2.grad is None, name
            continue
        assert torch.allclose(p1.grad, p2.grad, atol=1e-5), name
        trained += 1
    assert trained > 0 and sparse.get_input_embeddings().weight.grad.abs().sum() > 0
    # one row of logits per masked token; without labels (fill-mask) the stock dense path runs
    assert sparse(input_ids=ids, labels=labels, **extra)[1].shape == (n, VOCAB)
    assert sparse(input_ids=ids)[0].shape == (*ids.shape, VOCAB)
    assert type(sparse) is FAMILIES[family].model_class  # saves as the stock class


@pytest.mark.parametrize("family", SPARSE_FORWARD)
def test_sparse_loss_normalizes_by_the_step_token_count(family):
    model, _ = tiny_pair(family)
    ids, labels = masked_batch(2, 16, 0.3)
    extra = next_sentence_labels(family, len(ids))
    n = int((labels != -100).sum())
    # Trainer passes the count over all accumulated micro-batches: the sum is divided by it
    # (BERT's next-sentence part weighed by this batch's share of it, so all of it scales)
    mean = model(input_ids=ids, labels=labels, **extra).loss
    summed = model(input_ids=ids, labels=labels, num_items_in_batch=4 * n, **extra).loss
    assert torch.allclose(summed * 4, mean, atol=1e-5)


@pytest.mark.parametrize("family", SPARSE_FORWARD)
def test_a_step_with_no_masked_token_adds_nothing_instead_of_nan(family):
    model, _ = tiny_pair(family)
    model.train()
    ids = torch.randint(5, VOCAB, (2, 16))
    extra = next_sentence_labels(family, len(ids))
    loss = model(
        input_ids=ids,
        labels=torch.full_like(ids, -100),
        num_items_in_batch=torch.tensor(0),
        **extra,
    ).loss
    loss.backward()
    assert loss.item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_a_family_without_a_named_head_gets_no_sparse_forward():
    family = SPARSE_FORWARD[0]
    model = build_model(family, build_config(family, FakeTokenizer(), 32, tiny_shape()), False)
    own_sparse = next(spec for spec in FAMILIES.values() if not spec.mlm_head)
    with pytest.raises(ValueError, match="no sparse masked-LM head"):
        use_sparse_mlm_head(model, own_sparse)  # it has sparse_prediction instead


@pytest.mark.parametrize("family", list(FAMILIES))
def test_added_words_give_every_family_a_head_over_the_new_vocabulary_or_a_refusal(
    family, bpe_tokenizer_dir, tmp_path
):
    """add_tokens_from resizes the model through transformers: a family whose model it would
    leave with a broken head (one that cannot decode the new ids) is refused, never trained."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    model = build_model(family, build_config(family, tokenizer, 32, tiny_shape()), False).eval()
    old = len(tokenizer)
    (tmp_path / "words.txt").write_text("multitudinous\nincarnadine\n")
    try:
        added = extend_vocabulary(tokenizer, model, str(tmp_path / "words.txt"), limit=5)
    except UserError as refused:
        assert "resize_token_embeddings" in str(refused) and len(tokenizer) == old
        return
    assert len(added) == 2 and len(tokenizer) == old + 2
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(added)])
    assert model(input_ids=ids)[0].shape[-1] >= len(tokenizer)
