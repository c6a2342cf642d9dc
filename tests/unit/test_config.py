"""Configuration: YAML + command line into typed dataclasses; typos are errors."""

import importlib
import re
from pathlib import Path

import pytest
import yaml

from recipes import pretrain_bert, pretrain_mlm
from recipes.errors import UserError
from tokenizer_training import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def write_yaml(tmp_path, **fields) -> str:
    base = {"train_files": ["tests/helpers/fixtures/corpus/*.txt"], "tokenizer_name_or_path": "tok"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base | fields))
    return str(path)


def test_yaml_then_command_line_precedence(tmp_path):
    cfg = write_yaml(tmp_path, max_seq_length=64, hidden_size=96, learning_rate=1e-3)
    data, model, shape, train = pretrain_mlm.parse_args(
        ["--config", cfg, "--learning_rate", "2e-3", "--no_sparse_mlm_head"]
    )
    assert data.max_seq_length == 64  # YAML
    assert shape.hidden_size == 96 and shape.num_hidden_layers is None  # only what was set
    assert train.learning_rate == 2e-3  # command line beats YAML
    assert model.sparse_mlm_head is False
    assert train.include_num_input_tokens_seen == "non_padding"  # recipe default
    assert train.remove_unused_columns is False


@pytest.mark.parametrize(
    "key, suggestion",
    [
        ("hidden_sise", "hidden_size"),  # misspelt model field
        ("max_position_embedding", "max_position_embeddings"),  # singular, as in a real config
        ("evaluation_strategy", "eval_strategy"),  # removed in transformers v5
        ("learnig_rate", "learning_rate"),
    ],
)
def test_unknown_yaml_key_is_an_error_with_a_suggestion(tmp_path, key, suggestion):
    cfg = write_yaml(tmp_path, **{key: 1})
    with pytest.raises(UserError, match=f"unknown config key `{key}`.*{suggestion}"):
        pretrain_mlm.parse_args(["--config", cfg])


def test_unknown_command_line_key_is_an_error(tmp_path):
    with pytest.raises(UserError, match="hidden_size"):
        pretrain_mlm.parse_args(["--config", write_yaml(tmp_path), "--hiden_size", "8"])


@pytest.mark.parametrize("value", ["0", "1", "1.5"])
def test_mlm_probability_must_be_in_open_unit_interval(tmp_path, value):
    with pytest.raises(UserError, match="mlm_probability"):
        pretrain_mlm.parse_args(["--config", write_yaml(tmp_path), "--mlm_probability", value])


@pytest.mark.parametrize("path", sorted((ROOT / "recipes/configs").glob("*.yaml")), ids=str)
def test_every_shipped_recipe_config_parses(path):
    text = path.read_text()
    assert text.startswith("#"), "configs open with a comment: hardware, batch arithmetic, time"
    # the header's launch line names the recipe that reads the file
    recipe = re.search(r"-m recipes\.(\w+) --config", text)
    assert recipe, "the header shows the command that runs the config"
    importlib.import_module(f"recipes.{recipe[1]}").parse_args(["--config", str(path)])


@pytest.mark.parametrize("path", sorted((ROOT / "tokenizer_training/configs").glob("*.yaml")))
def test_every_shipped_tokenizer_config_parses(path):
    args, data = train_tokenizer.parse_config(
        [train_tokenizer.TokenizerArguments, train_tokenizer.DataSourceArguments],
        ["--config", str(path)],
    )
    assert args.vocab_size >= 300 and (data.train_files or data.dataset_name)


@pytest.mark.parametrize("parse", [pretrain_mlm.parse_args, pretrain_bert.parse_args])
def test_help_lists_every_field(parse, capsys):
    # argparse %-formats help strings: a bare "%" in one ("this % of") crashed --help.
    with pytest.raises(SystemExit) as exit_:
        parse(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "--validation_split_percentage" in out


def test_the_yaml_held_out_files_go_with_the_yaml_train_files(capsys):
    """roberta-tiny.yaml holds out six of its plays; with your own train_files they would be
    the wrong held-out set, so they are dropped unless validation_files is given too."""
    demo = ["--config", "recipes/configs/roberta-tiny.yaml"]
    data_args = pretrain_mlm.parse_args(demo)[0]
    assert len(data_args.validation_files) == 6
    data_args = pretrain_mlm.parse_args([*demo, "--train_files", "mine.txt"])[0]
    assert data_args.validation_files is None
    assert "validation_files from recipes/configs/roberta-tiny.yaml not used" in (
        capsys.readouterr().out
    )
    argv = [*demo, "--train_files", "mine.txt", "--validation_files", "held.txt"]
    assert pretrain_mlm.parse_args(argv)[0].validation_files == ["held.txt"]


def test_family_training_defaults_and_what_overrides_them():
    data = ["--train_files", "a.txt", "--tokenizer_name_or_path", "tok"]
    roberta = pretrain_mlm.parse_args([*data, "--model_type", "roberta"])
    modernbert = pretrain_mlm.parse_args([*data, "--model_type", "modernbert"])
    assert (roberta[3].learning_rate, roberta[3].warmup_steps, roberta[0].mlm_probability) == (
        7e-4, 0.3, 0.3,
    )  # fmt: skip
    assert (modernbert[3].learning_rate, modernbert[0].mlm_probability) == (1e-3, 0.3)
    assert modernbert[3].warmup_steps == 0.06  # TRAINING_DEFAULTS
    base = pretrain_mlm.parse_args(["--config", "recipes/configs/roberta-base.yaml"])
    assert base[0].mlm_probability == 0.15  # the YAML wins
    set_here = pretrain_mlm.parse_args([*data, "--learning_rate", "1e-4"])
    assert set_here[3].learning_rate == 1e-4


def test_a_bare_command_trains_the_documented_default_modernbert():
    data, model, _, train = pretrain_mlm.parse_args(
        ["--train_files", "x.txt", "--tokenizer_name_or_path", "T"]
    )
    assert model.model_type == "modernbert"  # README: "ModernBERT, the default"
    assert (train.learning_rate, data.mlm_probability) == (1e-3, 0.3)  # its family defaults


# ---- GPU base configs: their own tokenizer, of the size they were written for --------------
TOKENIZER_CONFIGS = {
    yaml.safe_load(p.read_text())["output_dir"]: yaml.safe_load(p.read_text())
    for p in (ROOT / "tokenizer_training" / "configs").glob("*.yaml")
}
BASE_CONFIGS = [
    p for p in sorted((ROOT / "recipes" / "configs").glob("*.yaml")) if "-base" in p.name
]


@pytest.mark.parametrize("path", BASE_CONFIGS, ids=lambda p: p.name)
def test_a_base_config_names_its_own_tokenizer_of_the_size_it_expects(path):
    config = yaml.safe_load(path.read_text())
    tokenizer, expected = config["tokenizer_name_or_path"], config["expected_vocab_size"]
    assert tokenizer != "outputs/tokenizer-bpe", "the demo's Shakespeare tokenizer"
    trained_by = TOKENIZER_CONFIGS.get(tokenizer)
    if trained_by is not None:  # a shipped tokenizer config trains it
        assert trained_by["vocab_size"] == expected
    else:  # or the config's header says how to train it
        assert f"--output_dir {tokenizer}" in path.read_text()
        assert f"--vocab_size {expected}" in path.read_text()


def test_a_tokenizer_of_another_size_than_expected_is_an_error(tmp_path, bpe_tokenizer_dir, capsys):
    cfg = write_yaml(
        tmp_path, tokenizer_name_or_path=str(bpe_tokenizer_dir), expected_vocab_size=50000
    )
    with pytest.raises(SystemExit) as exit_:
        pretrain_mlm.main(["--config", cfg, "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert "expected_vocab_size: 50000" in message and cfg in message  # the field, the file
    assert "has 800 tokens" in message and str(bpe_tokenizer_dir) in message
    assert not (tmp_path / "out" / "all_results.json").exists()
