"""The from-scratch BERT matches transformers' BertForPreTraining weight for weight."""

import pytest
import torch
import transformers
from datasets import Dataset
from helpers import tiny_shape
from transformers import (
    AutoModelForMaskedLM,
    BertConfig,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from recipes.models.families import FAMILIES
from recipes.models.scratch_bert import (
    BertForPreTraining,
    from_transformers_state_dict,
    save_as_transformers,
    to_transformers_state_dict,
)
from recipes.models.sparse_head import use_sparse_mlm_head

VOCAB, SEQ = 100, 16


@pytest.fixture
def config() -> BertConfig:
    return BertConfig(vocab_size=VOCAB, max_position_embeddings=64, **tiny_shape())


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
    # Trainer passes the step's masked-token count and does not divide the loss itself.
    assert trainer.model_accepts_loss_kwargs is True
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(0 < x < 20 for x in losses)
    trainer.save_model(str(tmp_path / "final"))  # plain safetensors of our state_dict
    assert (tmp_path / "final" / "model.safetensors").exists()


class KeepStepGradients(TrainerCallback):
    """The summed gradient of each optimizer step, just before the optimizer uses it."""

    def __init__(self):
        self.steps = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.steps.append({n: p.grad.clone() for n, p in model.named_parameters()})


def step_gradients(model, rows, tmp_path) -> dict[str, torch.Tensor]:
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=3,
        gradient_accumulation_steps=2,
        max_steps=1,
        max_grad_norm=0,  # no clipping: compare the raw gradients
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    keep = KeepStepGradients()
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_dict(rows), callbacks=[keep]
    )
    trainer.train()
    [grads] = keep.steps
    return grads


@pytest.mark.parametrize("sparse", [True, False])
def test_accumulated_step_weighs_every_masked_token_as_transformers_does(
    config, batch, tmp_path, sparse
):
    """Gradient accumulation 2 over micro-batches with very different masked-token counts: the
    step's gradient equals transformers' BertForPreTraining with the sparse head of
    recipes/models/sparse_head.py (sum over the step's masked tokens / their count). A per-micro-batch
    mean would weigh the lightly masked micro-batch's tokens several times more."""
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0  # Trainer: train()
    rows = {k: v.repeat(2, *[1] * (v.dim() - 1)) for k, v in batch.items()}
    labels = torch.full_like(rows["labels"], -100)
    labels[0] = rows["input_ids"][0]  # one fully labelled row: 16 tokens...
    labels[1:, 1] = rows["input_ids"][1:, 1]  # ...and one per other row, so however Trainer
    rows["labels"] = labels  # groups the six rows in two micro-batches, the counts differ
    rows = {k: v.tolist() for k, v in rows.items()}

    torch.manual_seed(0)
    ours = BertForPreTraining(config, sparse_mlm_head=sparse)
    theirs = transformers.BertForPreTraining(config)
    theirs.load_state_dict(to_transformers_state_dict(ours))
    use_sparse_mlm_head(theirs, FAMILIES["bert"])
    ours_grads = step_gradients(ours, rows, tmp_path / "ours")
    theirs_grads = step_gradients(theirs, rows, tmp_path / "theirs")
    for name, grad in ours_grads.items():
        torch.testing.assert_close(grad, theirs_grads[name], atol=1e-5, rtol=0, msg=name)
