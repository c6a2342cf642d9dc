"""Model families: configs derived from the tokenizer, ModernBERT end to end, `bf16: auto`."""

import os
from unittest import mock

import pytest
import torch
import yaml
from helpers import tiny, tiny_shape
from transformers import AutoTokenizer

from recipes import pretrain_mlm
from recipes.errors import UserError
from recipes.models.families import FAMILIES, build_config, build_model
from recipes.runs import precision

TINY_MODERNBERT = ["--model_type", "modernbert", *tiny()]


@pytest.fixture(scope="module")
def wordpiece_dir(train_wordpiece_tokenizer):
    return train_wordpiece_tokenizer(900)


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_modernbert_config_takes_every_id_from_the_tokenizer(
    kind, bpe_tokenizer_dir, wordpiece_dir
):
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir if kind == "bpe" else wordpiece_dir)
    config = build_config("modernbert", tok, 64, {"hidden_size": 32, "num_attention_heads": 2})
    # ModernBertConfig's own defaults are its tokenizer's: pad 50283, cls 50281, sep 50282
    assert config.vocab_size == len(tok) < 1000
    assert config.pad_token_id == tok.pad_token_id
    assert config.cls_token_id == tok.cls_token_id and config.sep_token_id == tok.sep_token_id
    assert config.bos_token_id == (tok.bos_token_id if kind == "bpe" else tok.cls_token_id)
    assert config.eos_token_id == (tok.eos_token_id if kind == "bpe" else tok.sep_token_id)
    assert config.max_position_embeddings == 64
    model = build_model("modernbert", config, sparse_mlm_head=True)
    assert model.model.embeddings.tok_embeddings.padding_idx == tok.pad_token_id


def test_positions_shorter_than_the_sequence_are_an_error(bpe_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    with pytest.raises(UserError, match="max_position_embeddings: 64"):
        build_config("modernbert", tok, 128, {"max_position_embeddings": 64})


def test_modernbert_fields_are_settable_and_misspellings_are_not(tmp_path, corpus_files):
    base = ["--train_files", *corpus_files, "--tokenizer_name_or_path", "tok"]
    _, model, shape, _ = pretrain_mlm.parse_args(
        base
        + ["--model_type", "modernbert", "--global_attn_every_n_layers", "1"]
        + ["--local_attention", "64", "--mlp_dropout", "0.1"]
    )
    assert model.model_type == "modernbert"
    assert (shape.global_attn_every_n_layers, shape.local_attention) == (1, 64)
    with pytest.raises(UserError, match="unknown config key `local_attention`"):
        pretrain_mlm.parse_args(base + ["--model_type", "roberta", "--local_attention", "64"])
    with pytest.raises(UserError, match="cls_token_id.*copied from the tokenizer"):
        pretrain_mlm.parse_args(base + ["--model_type", "modernbert", "--cls_token_id", "3"])


def test_modernbert_native_sparse_prediction_gives_the_dense_loss_and_gradients(bpe_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    overrides = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    overrides |= {"intermediate_size": 64, "attn_implementation": "sdpa"}
    config = build_config("modernbert", tok, 32, overrides)
    torch.manual_seed(0)
    sparse = build_model("modernbert", config, sparse_mlm_head=True)
    dense = build_model("modernbert", build_config("modernbert", tok, 32, overrides), False)
    dense.load_state_dict(sparse.state_dict())
    assert sparse.config.sparse_prediction is False  # what save_pretrained will write
    ids = torch.randint(5, len(tok), (4, 32))
    labels = torch.full_like(ids, -100)
    labels[:, ::5] = ids[:, ::5]
    n = (labels != -100).sum()
    losses, grads = [], []
    for model in (sparse, dense):
        out = model(input_ids=ids, labels=labels, num_items_in_batch=n)
        out.loss.backward()
        losses.append(out.loss)
        grads.append(model.model.embeddings.tok_embeddings.weight.grad)
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert sparse(input_ids=ids, labels=labels).logits.shape == (n, len(tok))


# ---- bf16: auto ----------------------------------------------------------------------------


def parse(tmp_path, *argv, **yaml_fields):
    path = tmp_path / "c.yaml"
    base = {"train_files": ["tests/helpers/fixtures/corpus/*.txt"], "tokenizer_name_or_path": "tok"}
    path.write_text(yaml.safe_dump(base | yaml_fields))
    return pretrain_mlm.parse_args(["--config", str(path), *argv])[-1]


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)


@pytest.mark.parametrize("feature", ["AMX", "AVX512-BF16"])
def test_bf16_auto_on_a_cpu_with_native_bf16(tmp_path, monkeypatch, cpu_only, feature):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: feature)
    args = parse(tmp_path)
    assert args.bf16 is True and args.use_cpu is True
    assert feature in args.precision_reason
    # run_config.yaml keeps `auto`: a rerun on another machine detects its own precision
    assert args.run_settings["values"]["bf16"] == "auto"


def test_bf16_auto_on_a_cpu_without_native_bf16_stays_fp32(tmp_path, monkeypatch, cpu_only, capsys):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: None)
    args = parse(tmp_path)
    assert args.bf16 is False and "no native bf16" in args.precision_reason
    assert "precision: fp32 (this CPU has no native bf16" in capsys.readouterr().out
    assert parse(tmp_path, "--bf16", "auto").bf16 is False
    assert parse(tmp_path, "--bf16=auto").bf16 is False


def test_bf16_set_by_hand_wins(tmp_path, monkeypatch, cpu_only):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: "AMX")
    assert parse(tmp_path, "--bf16", "false").bf16 is False
    assert parse(tmp_path, bf16=False).bf16 is False
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: None)
    assert parse(tmp_path, bf16=True).bf16 is True  # asked for: warned about at start


def test_bf16_auto_follows_accelerate_mixed_precision(tmp_path, monkeypatch, cpu_only):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: None)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    args = parse(tmp_path)
    assert args.bf16 is True and "accelerate" in args.precision_reason


def test_every_family_builds_its_stock_class(bpe_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    for name, spec in FAMILIES.items():
        model = build_model(
            name, build_config(name, tok, 32, small | {"intermediate_size": 64}), True
        )
        assert type(model) is spec.model_class and model.config.vocab_size == len(tok)


# ---- FSDP: each family names the layer class FSDP wraps -------------------------------------
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_names_a_layer_class_its_model_has(family, bpe_tokenizer_dir):
    from accelerate.utils.dataclasses import get_module_class_from_name

    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    config = build_config(family, tokenizer, 32, tiny_shape())
    model = build_model(family, config, sparse_mlm_head=True)
    layer = get_module_class_from_name(model, FAMILIES[family].layer_class)
    assert layer is not None and layer.__name__ == FAMILIES[family].layer_class


@pytest.fixture
def restore_environ():
    """The recipe sets FSDP_TRANSFORMER_CLS_TO_WRAP in os.environ itself, where monkeypatch
    does not see it: without this, it leaks into later tests' subprocesses (test_fsdp.py)."""
    with mock.patch.dict(os.environ):
        yield


def test_the_recipe_tells_accelerate_the_family_layer_class_under_fsdp(
    monkeypatch, restore_environ
):
    from recipes.models.fsdp import fsdp_layer_class_to_wrap

    monkeypatch.delenv("FSDP_TRANSFORMER_CLS_TO_WRAP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert fsdp_layer_class_to_wrap("modernbert") is None  # not under FSDP: nothing to do
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what `accelerate launch` exports
    monkeypatch.setenv("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP")
    assert fsdp_layer_class_to_wrap("modernbert") == "ModernBertEncoderLayer"
    assert os.environ["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "ModernBertEncoderLayer"
    with pytest.raises(UserError, match="RobertaLayer.*Remove the key"):
        monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", "ModernBertEncoderLayer")
        fsdp_layer_class_to_wrap("roberta")


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_under_fsdp2_the_lm_head_bias_has_one_name_and_the_same_logits(
    family, tmp_path, monkeypatch, restore_environ, bpe_tokenizer_dir
):
    from recipes.models.fsdp import prepare_for_fsdp

    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    model = build_model(family, build_config(family, tokenizer, 32, tiny_shape()), True).eval()
    head = model.lm_head if family == "roberta" else model.cls.predictions
    with torch.no_grad():
        head.bias.normal_()  # zeros at init: a bias left out would not show
    ids = torch.randint(5, len(tokenizer), (2, 16))
    before = model(input_ids=ids).logits if family == "roberta" else model(ids).prediction_logits
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    monkeypatch.delenv("FSDP_TRANSFORMER_CLS_TO_WRAP", raising=False)
    prepare_for_fsdp(family, model)
    # FSDP2 refuses one Parameter in two groups: decoder.bias no longer aliases head.bias
    assert head.decoder.bias is None and not any("decoder.bias" in k for k in model.state_dict())
    model.tie_weights()  # accelerate may call it: the bias stays out, the weight stays tied
    assert head.decoder.bias is None
    assert head.decoder.weight is model.get_input_embeddings().weight
    after = model(input_ids=ids).logits if family == "roberta" else model(ids).prediction_logits
    assert torch.equal(before, after)
    model.save_pretrained(tmp_path)  # what a stock load makes of it: the bias tied back
    reloaded = type(model).from_pretrained(tmp_path).eval()
    out = reloaded(input_ids=ids)
    assert torch.equal(before, out.logits if family == "roberta" else out.prediction_logits)
