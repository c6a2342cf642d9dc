"""Model families: one record each and no per-family switch elsewhere, configs derived from the
tokenizer, ModernBERT end to end, `bf16: auto`, FSDP's layer class and tied head bias."""

import importlib
import io
import os
import re
import tokenize
from pathlib import Path
from unittest import mock

import pytest
import torch
import transformers
import yaml
from helpers import REPO, tiny, tiny_shape
from transformers import AutoTokenizer

from recipes import precision, pretrain_mlm
from recipes.errors import UserError
from recipes.models.checkpoints import check_positions
from recipes.models.families import (
    FAMILIES,
    MLM,
    MLM_FAMILIES,
    MLM_NSP,
    NSP_FAMILIES,
    build_config,
    build_model,
    display_name,
)

TINY_MODERNBERT = ["--model_type", "modernbert", *tiny()]


@pytest.fixture(scope="module")
def wordpiece_dir(train_wordpiece_tokenizer):
    return train_wordpiece_tokenizer(900)


# ---- One record per family; nothing elsewhere switches on one -------------------------------

SEARCHED = ["recipes", "benchmarks", "tokenizer_training", "tests"]
RECORDS = REPO / "recipes/models/families.py"  # the one place a family is spelled out
# This file: the records' own tests, and the examples below of what the guard catches
GUARD = Path(__file__).resolve()
# the hand-written BERT: its `cls.predictions` are its own modules, not a reach into a family's
OWN_MODULES = REPO / "recipes/models/scratch_bert.py"
SUBMODULE = "a family's submodule by name"
# In tests, `assert x == "roberta"` states an expected value; only a branch is a switch
COMPARED = ("a model_type comparison", "a family name compared")


def switch_patterns() -> dict[str, re.Pattern]:
    quoted = "[\"'](?:" + "|".join(map(re.escape, FAMILIES)) + ")[\"']"
    return {
        "a model_type comparison": re.compile(r"model_type\s*[!=]=|[!=]=\s*[\w.]*model_type\b"),
        "a family name compared": re.compile(rf"[!=]=\s*{quoted}|{quoted}\s*[!=]="),
        "a family name as a key": re.compile(rf"{quoted}\s*:"),
        "a family name in a collection": re.compile(rf"\bin\s*[(\[{{][^)\]}}]*{quoted}"),
        # ("model_type", "bert"): a key or a pair that stands for one family
        "a family name paired with model_type": re.compile(rf"[\"']model_type[\"']\s*,\s*{quoted}"),
        # ["modernbert", "roberta"]: families listed by hand, where a new one would be missed
        "families listed by hand": re.compile(rf"{quoted}\s*,\s*{quoted}"),
        SUBMODULE: re.compile(r"\.(?:roberta|deberta|lm_head|lm_predictions)\b"
                              r"|\.cls\.(?:predictions|seq_relationship)\b"),
    }  # fmt: skip


def family_classes_in_isinstance(line: str) -> list[str]:
    """transformers classes of a family (RobertaForMaskedLM, BertConfig, ...) tested with
    isinstance: the family's record (or its `base_model`) says what such a test asks."""
    prefixes = tuple(spec.model_class.__name__.split("For")[0] for spec in FAMILIES.values())
    found = []
    for call in re.findall(r"isinstance\(([^)]*)\)", line):
        for name in re.findall(r"\b[A-Z]\w*", call):
            if name.startswith(prefixes) and hasattr(transformers, name):
                found.append(name)
    return found


def code_lines(path):
    """(line number, the line without its comment) for each line of a Python file."""
    source = path.read_text(encoding="utf-8")
    cut = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            cut[token.start[0]] = token.start[1]
    for number, line in enumerate(source.splitlines(), start=1):
        yield number, line[: cut.get(number, len(line))]


def test_no_per_family_switch_outside_the_family_records():
    """Nor in tests: a test of every family takes them from the records (FAMILIES,
    MLM_FAMILIES), so a new family runs every family test instead of being skipped."""
    patterns = switch_patterns()
    found = []
    for folder in SEARCHED:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path in (RECORDS, GUARD):
                continue
            for number, line in code_lines(path):
                what = [name for name, p in patterns.items() if p.search(line)]
                if path == OWN_MODULES:
                    what = [name for name in what if name != SUBMODULE]
                if folder == "tests" and line.lstrip().startswith("assert "):
                    what = [name for name in what if name not in COMPARED]
                what += [f"isinstance on {c}" for c in family_classes_in_isinstance(line)]
                if what:
                    where = path.relative_to(REPO)
                    found.append(f"{where}:{number}: {', '.join(what)}: {line.strip()}")
    assert not found, "per-family switches outside recipes/models/families.py:\n" + "\n".join(found)


def test_the_switch_patterns_catch_what_they_are_for():
    patterns = switch_patterns()
    caught = [
        'offset = 1 if config.model_type == "roberta" else 0',
        'if family == "bert":',
        'arch = {"roberta": "RoBERTa", "bert": "BERT"}.get(model_type)',
        'if name in ("roberta", "modernbert"):',
        "hidden = model.roberta(input_ids=ids)",
        "head = self.cls.predictions",
        '("model_type", "bert"): "BERT has its own recipe"',
        '@pytest.mark.parametrize("family", ["modernbert", "roberta"])',
        "scores = model.lm_predictions(hidden, embeddings)",
    ]
    for line in caught:
        assert any(p.search(line) for p in patterns.values()), line
    assert family_classes_in_isinstance("if isinstance(model, RobertaForMaskedLM):")
    assert not family_classes_in_isinstance("elif isinstance(module, BertMLMHead):")  # ours
    for line in [
        'build_config(STOCK_FAMILY, tok, 128, {"hidden_size": 8})',
        'run("--model_type", "roberta", "--hidden_size", "8")',
    ]:
        assert not any(p.search(line) for p in patterns.values()), line  # fmt: skip


def test_each_family_record_names_what_the_rest_of_the_code_asks_of_it():
    names = [display_name(f) for f in FAMILIES]
    assert all(names) and len(set(names)) == len(names)
    assert display_name("xlm-roberta") == "xlm-roberta"  # no family here: as it is
    # each family is trained by exactly one recipe, its objective's
    assert sorted(MLM_FAMILIES + NSP_FAMILIES) == sorted(FAMILIES)
    for objective, families in [(MLM, MLM_FAMILIES), (MLM_NSP, NSP_FAMILIES)]:
        assert callable(importlib.import_module(objective.recipe).main)
        assert all(FAMILIES[f].objective is objective for f in families)
    for name, spec in FAMILIES.items():
        assert (REPO / spec.tiny_config).is_file(), name
        # the sparse head: the config's own, or a head the forward can reach, not both
        assert spec.config_sparse_prediction != bool(spec.mlm_head), name
        assert bool(spec.nsp_head) == (spec.objective is MLM_NSP), name
        # the YAML is the family's: it names its model_type, and its recipe reads it
        config = yaml.safe_load((REPO / spec.tiny_config).read_text())
        assert config["model_type"] == name, spec.tiny_config
        assert (
            f"-m {spec.objective.recipe} --config {spec.tiny_config}"
            in (REPO / spec.tiny_config).read_text()
        )


def test_help_choices_and_hints_come_from_the_records(capsys):
    """--help lists every family of the recipe with its summary; a family of the other recipe
    gets a pointer to it (recipes/config.py `choice_hints`)."""
    from recipes import pretrain_bert

    for recipe, families, others in [
        (pretrain_mlm, MLM_FAMILIES, NSP_FAMILIES),
        (pretrain_bert, NSP_FAMILIES, MLM_FAMILIES),
    ]:
        data = ["--train_files", "x.txt", "--tokenizer_name_or_path", "tok"]
        for family in families:
            assert recipe.parse_args(["--model_type", family, *data])[1].model_type == family
        capsys.readouterr()
        with pytest.raises(SystemExit) as shown:
            recipe.parse_args(["--help"])
        assert shown.value.code == 0
        shown = " ".join(capsys.readouterr().out.split())  # unwrapped
        assert f"--model_type {{{','.join(families)}}}" in shown
        for family in families:
            assert f"'{family}' ({' '.join(FAMILIES[family].summary.split())})" in shown
        for other in others:
            spec = FAMILIES[other]
            with pytest.raises(UserError, match=f"python -m {spec.objective.recipe} "):
                recipe.parse_args(["--model_type", other, *data])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_positions_are_counted_one_way_for_new_models_and_checkpoints(family, bpe_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    spec = FAMILIES[family]
    config = build_config(family, tok, 32, tiny_shape())
    assert config.max_position_embeddings == max(
        spec.positions_needed(32, tok.pad_token_id), spec.min_positions
    )
    check_positions(config, 32, "here")  # what a new model gets, a checkpoint of it passes
    longest = config.max_position_embeddings - spec.positions_needed(0, tok.pad_token_id)
    check_positions(config, longest, "here")
    with pytest.raises(UserError, match=f"`max_seq_length: {longest + 1}` needs"):
        check_positions(config, longest + 1, "here")


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


def test_bf16_auto_on_a_cpu_without_native_bf16_stays_fp32(tmp_path, monkeypatch, cpu_only):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: None)
    args = parse(tmp_path)
    assert args.bf16 is False and "no native bf16" in args.precision_reason
    assert "precision: fp32 (this CPU has no native bf16" in args.settings_report  # record_run
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


def shared_parameters(model) -> list[list[str]]:
    """The names of each Parameter the model holds under more than one name."""
    names = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    return [group for group in names.values() if len(group) > 1]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_under_fsdp2_only_the_embedding_is_shared_and_the_logits_stay(
    family, tmp_path, monkeypatch, restore_environ, bpe_tokenizer_dir
):
    """FSDP2 refuses one Parameter in two groups: after prepare_for_fsdp the only Parameter
    held under two names is the input embedding (tied to the decoder, one group), whatever the
    family's head (RoBERTa's and BERT's tie their bias to the decoder's as well)."""
    from recipes.models.fsdp import prepare_for_fsdp

    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    model = build_model(family, build_config(family, tokenizer, 32, tiny_shape()), True).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):  # zeros at init: a bias left out would not show
                parameter.normal_()
    ids = torch.randint(5, len(tokenizer), (2, 16))
    before = model(input_ids=ids)[0]  # the masked-LM logits, BERT's NSP ones after them
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    monkeypatch.delenv("FSDP_TRANSFORMER_CLS_TO_WRAP", raising=False)
    refusal = FAMILIES[family].fsdp2_refusal
    if refusal:  # the record says why FSDP2 cannot train it: refused before any training
        with pytest.raises(UserError, match=re.escape(refusal)):
            prepare_for_fsdp(family, model)
        return
    prepare_for_fsdp(family, model)
    embedding = model.get_input_embeddings().weight
    for _ in range(2):  # and after tie_weights, which accelerate may call
        for group in shared_parameters(model):
            assert model.get_parameter(group[0]) is embedding, group
        model.tie_weights()
    after = model(input_ids=ids)[0]
    assert torch.equal(before, after)
    model.save_pretrained(tmp_path)  # what a stock load makes of it: any bias tied back
    reloaded = type(model).from_pretrained(tmp_path).eval()
    assert torch.equal(before, reloaded(input_ids=ids)[0])
