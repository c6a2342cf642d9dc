"""The from-scratch BERT matches transformers' BertForPreTraining weight for weight."""

import pytest
import torch
import transformers
from datasets import Dataset
from transformers import AutoModelForMaskedLM, BertConfig, Trainer, TrainingArguments

from recipes.scratch_bert import (
    BertForPreTraining,
    from_transformers_state_dict,
    save_as_transformers,
    to_transformers_state_dict,
)

VOCAB, SEQ = 100, 16


@pytest.fixture
def config() -> BertConfig:
    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    """Three sequence pairs, two of them padded, with ~15% of real tokens labelled."""
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, VOCAB, (3, SEQ), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 11:] = 0
    attention_mask[2, 6:] = 0
    input_ids[attention_mask == 0] = 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[0, 8:], token_type_ids[1, 5:11], token_type_ids[2, 3:6] = 1, 1, 1
    labelled = (torch.rand(input_ids.shape, generator=g) < 0.15) & attention_mask.bool()
    labelled[:, 1] = True  # at least one label per row
    labels = torch.where(labelled, torch.randint(5, VOCAB, input_ids.shape, generator=g), -100)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
        "next_sentence_label": torch.tensor([0, 1, 1]),
    }


def test_state_dict_names_and_shapes_match_transformers(config):
    ours = BertForPreTraining(config).state_dict()
    theirs = transformers.BertForPreTraining(config).state_dict()
    assert set(ours) == set(theirs) - {
        "cls.predictions.decoder.weight",
        "cls.predictions.decoder.bias",
    }
    assert all(ours[k].shape == theirs[k].shape for k in ours)


def test_init_follows_transformers(config):
    sd = BertForPreTraining(config).state_dict()
    assert sd["bert.encoder.layer.0.attention.self.query.weight"].std() == pytest.approx(0.02, 0.2)
    assert sd["bert.encoder.layer.0.attention.self.query.bias"].abs().max() == 0
    assert sd["bert.embeddings.LayerNorm.weight"].eq(1).all()
    assert sd["bert.embeddings.word_embeddings.weight"][config.pad_token_id].abs().max() == 0
    assert sd["cls.predictions.bias"].abs().max() == 0


@pytest.mark.parametrize("direction", ["theirs_to_ours", "ours_to_theirs"])
def test_same_outputs_as_transformers(config, batch, direction):
    torch.manual_seed(0)
    ours, theirs = BertForPreTraining(config).eval(), transformers.BertForPreTraining(config).eval()
    if direction == "theirs_to_ours":
        ours.load_state_dict(from_transformers_state_dict(theirs.state_dict()))
    else:
        theirs.load_state_dict(to_transformers_state_dict(ours))
    with torch.no_grad():
        a, b = ours(**batch), theirs(**batch)
    torch.testing.assert_close(a.prediction_logits, b.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        a.seq_relationship_logits, b.seq_relationship_logits, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=0)


def test_sparse_head_gives_the_dense_loss_and_gradients(config, batch):
    dense = BertForPreTraining(config).eval()
    sparse = BertForPreTraining(config, sparse_mlm_head=True).eval()
    sparse.load_state_dict(dense.state_dict())
    out_dense, out_sparse = dense(**batch), sparse(**batch)
    n_labelled = int((batch["labels"] != -100).sum())
    assert out_sparse.prediction_logits.shape == (n_labelled, VOCAB)
    torch.testing.assert_close(out_sparse.loss, out_dense.loss, atol=1e-5, rtol=0)
    out_dense.loss.backward()
    out_sparse.loss.backward()
    for (name, p_dense), p_sparse in zip(
        dense.named_parameters(), sparse.parameters(), strict=True
    ):
        torch.testing.assert_close(p_sparse.grad, p_dense.grad, atol=1e-5, rtol=0, msg=name)


def test_loss_from_either_label_alone(config, batch):
    model = BertForPreTraining(config).eval()
    both = model(**batch).loss
    mlm = model(**{k: v for k, v in batch.items() if k != "next_sentence_label"}).loss
    nsp = model(**{k: v for k, v in batch.items() if k != "labels"}).loss
    torch.testing.assert_close(mlm + nsp, both)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "next_sentence_label")}
    assert model(**inputs).loss is None


def test_saved_checkpoint_loads_in_stock_transformers(config, batch, tmp_path):
    ours = BertForPreTraining(config).eval()
    save_as_transformers(ours, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]

    theirs = transformers.BertForPreTraining.from_pretrained(tmp_path).eval()
    assert theirs.config.architectures == ["BertForPreTraining"]
    inputs = {k: v for k, v in batch.items() if k != "labels" and k != "next_sentence_label"}
    with torch.no_grad():
        a, b = ours(**inputs), theirs(**inputs)
        mlm = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()(**inputs)
    torch.testing.assert_close(b.prediction_logits, a.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        b.seq_relationship_logits, a.seq_relationship_logits, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(mlm.logits, a.prediction_logits, atol=1e-5, rtol=0)


def test_trains_with_trainer_and_accumulation(config, batch, tmp_path):
    rows = {k: v.repeat(4, *[1] * (v.dim() - 1)).tolist() for k, v in batch.items()}
    model = BertForPreTraining(config, sparse_mlm_head=True)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=3,
        gradient_accumulation_steps=2,
        max_steps=2,
        learning_rate=1e-3,
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        report_to="none",
    )
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict(rows))
    # Otherwise Trainer would skip dividing our (mean) loss by the accumulation steps.
    assert trainer.model_accepts_loss_kwargs is False
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(0 < x < 20 for x in losses)
    trainer.save_model(str(tmp_path / "final"))  # plain safetensors of our state_dict
    assert (tmp_path / "final" / "model.safetensors").exists()
