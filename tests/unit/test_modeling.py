"""Model config derived from the tokenizer, and the sparse masked-LM head."""

import copy

import pytest
import torch
from helpers import tiny_model
from transformers import BertConfig, BertForPreTraining, RobertaConfig, RobertaForMaskedLM

from recipes.errors import UserError
from recipes.models.families import FAMILIES, build_config
from recipes.models.sparse_head import use_sparse_mlm_head

ROBERTA, BERT = FAMILIES["roberta"], FAMILIES["bert"]
# the families whose sparse masked-LM head is recipes/models/sparse_head.py's forward
SPARSE_FORWARD = [spec for spec in FAMILIES.values() if spec.mlm_head]


class FakeTokenizer:
    """Ids as a freshly trained tutorial tokenizer has them: <s>=0 <pad>=1 </s>=2."""

    pad_token_id, bos_token_id, eos_token_id = 1, 0, 2

    def __len__(self):
        return 1234


def test_config_takes_ids_vocab_and_positions_from_the_tokenizer():
    config = build_config("roberta", FakeTokenizer(), 128, {"hidden_size": 64})
    assert config.vocab_size == 1234
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 0, 2)
    assert config.max_position_embeddings == 128 + 1 + 1  # positions start at pad + 1
    assert config.hidden_size == 64 and config.type_vocab_size == 1


def test_too_few_positions_is_an_error_not_an_index_error():
    with pytest.raises(UserError, match="max_seq_length \\+ pad_token_id \\+ 1 = 514"):
        build_config("roberta", FakeTokenizer(), 512, {"max_position_embeddings": 512})


def test_sparse_head_matches_dense_loss_and_gradients():
    dense = tiny_model(RobertaForMaskedLM, RobertaConfig)
    sparse = copy.deepcopy(dense)
    use_sparse_mlm_head(sparse, ROBERTA)
    ids = torch.randint(5, 100, (3, 24))
    labels = torch.full_like(ids, -100)
    pick = torch.rand(ids.shape) < 0.2
    labels[pick] = ids[pick]
    losses = []
    for model in (dense, sparse):
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        losses.append(out.loss)
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    for (name, p1), (_, p2) in zip(dense.named_parameters(), sparse.named_parameters()):
        assert torch.allclose(p1.grad, p2.grad, atol=1e-5), name
    # without labels (fill-mask) the stock dense path runs
    assert sparse(input_ids=ids).logits.shape == (3, 24, 100)
    assert type(sparse).__name__ == "RobertaForMaskedLM"  # saves as the stock class


def test_sparse_bert_pretraining_matches_dense_loss_and_gradients():
    dense = tiny_model(BertForPreTraining, BertConfig)
    sparse = copy.deepcopy(dense)
    use_sparse_mlm_head(sparse, BERT)
    ids = torch.randint(5, 100, (4, 20))
    labels = torch.where(torch.rand(ids.shape) < 0.2, ids, torch.full_like(ids, -100))
    nsp = torch.tensor([0, 1, 1, 0])
    a = dense(input_ids=ids, labels=labels, next_sentence_label=nsp)
    b = sparse(input_ids=ids, labels=labels, next_sentence_label=nsp)
    assert torch.allclose(a.loss, b.loss, atol=1e-5)
    assert torch.allclose(a.seq_relationship_logits, b.seq_relationship_logits, atol=1e-6)
    a.loss.backward()
    b.loss.backward()
    pairs = zip(dense.named_parameters(), sparse.named_parameters(), strict=True)
    for (name, p1), (_, p2) in pairs:  # MLM head, tied embeddings, encoder, NSP head
        assert p1.grad is not None and p2.grad is not None, name
        assert torch.allclose(p1.grad, p2.grad, atol=1e-5), name
    assert dense.cls.predictions.transform.dense.weight.grad.abs().sum() > 0


def test_sparse_loss_normalizes_by_the_step_token_count():
    model = tiny_model(RobertaForMaskedLM, RobertaConfig)
    use_sparse_mlm_head(model, ROBERTA)
    ids = torch.randint(5, 100, (2, 16))
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, torch.full_like(ids, -100))
    n = int((labels != -100).sum())
    mean = model(input_ids=ids, labels=labels).loss
    # Trainer passes the count over all accumulated micro-batches: the sum is divided by it
    summed = model(input_ids=ids, labels=labels, num_items_in_batch=4 * n).loss
    assert torch.allclose(summed * 4, mean, atol=1e-5)


@pytest.mark.parametrize("spec", SPARSE_FORWARD, ids=lambda spec: spec.display_name)
def test_a_step_with_no_masked_token_adds_nothing_instead_of_nan(spec):
    model = tiny_model(spec.model_class, spec.config_class).train()
    use_sparse_mlm_head(model, spec)
    ids = torch.randint(5, 100, (2, 16))
    extra = {"next_sentence_label": torch.tensor([0, 1])} if spec.nsp_head else {}
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
    model = tiny_model(RobertaForMaskedLM, RobertaConfig)
    with pytest.raises(ValueError, match="no sparse masked-LM head"):
        use_sparse_mlm_head(model, FAMILIES["modernbert"])  # it has sparse_prediction instead
