"""Configuration: YAML + command line into typed dataclasses; typos are errors."""

import dataclasses
import importlib
import re
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
import yaml
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from recipes import finetune_classification, pretrain_bert, pretrain_mlm, run_folder
from recipes.errors import UserError
from recipes.models.families import MLM_FAMILIES
from recipes.runs.starting_point import starting_point
from recipes.runs.throughput import model_summary
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
    data_args, *_, training = pretrain_mlm.parse_args([*demo, "--train_files", "mine.txt"])
    assert data_args.validation_files is None
    # said with the settings, which the run prints once its own checks passed (record_run)
    assert "settings that differ" not in capsys.readouterr().out
    assert "validation_files from recipes/configs/roberta-tiny.yaml not used" in (
        training.settings_report
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


def test_the_readme_states_the_bare_commands_parameter_count(tmp_path):
    """README: "Without `--config` the recipe builds ... (N M parameters with a K k vocabulary)":
    the model the bare command builds with a tokenizer of K thousand tokens has the count its
    model line prints (runs/throughput.py model_summary), built on the meta device (no memory)."""
    stated = re.search(
        r"Without `--config`.*?\(([\d.]+)M parameters with a (\d+)k\s+vocabulary\)",
        (ROOT / "README.md").read_text(),
        re.DOTALL,
    )
    assert stated, "README no longer states the bare command's size"
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    words = [f"w{i}" for i in range(int(stated[2]) * 1000 - len(specials))]
    vocab = {token: i for i, token in enumerate(specials + words)}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
        **dict(zip(["bos_token", "pad_token", "eos_token", "unk_token", "mask_token"], specials)),
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=8192,
    )
    tokenizer.save_pretrained(tmp_path)
    data, model_args, shape, training = pretrain_mlm.parse_args(
        ["--train_files", "x.txt", "--tokenizer_name_or_path", str(tmp_path)]
    )
    start = starting_point(
        model_args, data, training, shape, MLM_FAMILIES, attention=model_args.attn_implementation
    )
    with torch.device("meta"):
        model = start.model()
    printed = model_summary(start.family, model, data.max_seq_length)
    assert f"; {stated[1]}M parameters" in printed, printed


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


# ---- --help: the defaults a run uses, grouped ----------------------------------------------
def help_entries(text: str) -> dict[str, str]:
    """`--field` -> its help text, continuation lines joined."""
    entries, current = {}, None
    for line in text.splitlines():
        match = re.match(r"  --(\w+)", line)
        if match:
            current = match[1]
            entries[current] = line
        elif current and line.startswith("   "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def help_defaults(text: str) -> dict[str, str]:
    """`--field` -> the default its help shows (without where it came from)."""
    defaults = {}
    for name, entry in help_entries(text).items():
        shown = re.search(r"\(default: (.*)\)$", " ".join(entry.split()))
        if shown:
            defaults[name] = re.split(r", from |; here ", shown[1])[0]
    return defaults


def printed_help(parse, argv, capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 0
    return capsys.readouterr().out


FAMILY_DATA = ["--train_files", "x.txt", "--tokenizer_name_or_path", "tok"]
ENTRY_POINTS = {  # id -> (parse_args, argv that picks the family, the data flags)
    "pretrain_mlm-modernbert": (pretrain_mlm.parse_args, ["--model_type", "modernbert"],
                                FAMILY_DATA),
    "pretrain_mlm-roberta": (pretrain_mlm.parse_args, ["--model_type", "roberta"], FAMILY_DATA),
    "pretrain_bert": (pretrain_bert.parse_args, [], FAMILY_DATA),
    "finetune_classification": (finetune_classification.parse_args, [],
                                ["--train_files", "x.jsonl", "--model_name_or_path", "m"]),
}  # fmt: skip


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_help_shows_the_defaults_the_run_records(entry, capsys):
    """What `--help` prints as each default is what run_config.yaml records for a run given
    nothing but its data (start.py writes run_settings["values"]), or the field's own default
    where the run records nothing."""
    parse, family, data = ENTRY_POINTS[entry]
    *_, training = parse([*family, *data])
    recorded, origins = training.run_settings["values"], training.run_settings["origins"]
    shown = help_defaults(printed_help(parse, [*family, "--help"], capsys))
    own = {
        f.name: f.default
        for cls in (type(args) for args in parse([*family, *data]))
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING
    }
    assert {"learning_rate", "warmup_steps", "bf16", "output_dir", "eval_strategy"} <= set(shown)
    for name, text in shown.items():
        if origins.get(name) == "command line":
            continue  # the data flags
        expected = recorded[name] if name in recorded else own[name]
        assert (None if text == "unset" else yaml.safe_load(text)) == expected, name
    assert shown["bf16"] == "auto" and shown["disable_tqdm"] == "auto"
    if entry == "pretrain_mlm-roberta":  # the family's, not TrainingArguments' 5e-05 and 0
        assert (shown["learning_rate"], shown["warmup_steps"]) == ("0.0007", "0.3")
        assert shown["mlm_probability"] == "0.3"
    # --help-all: every field, so every recorded default has its line
    everything = help_defaults(printed_help(parse, [*family, "--help-all"], capsys))
    assert set(recorded) - {"train_files", "tokenizer_name_or_path", "model_name_or_path"} <= set(
        everything
    )
    assert "adam_epsilon" in everything and "adam_epsilon" not in shown


def test_help_is_grouped_config_first_and_short(capsys):
    text = printed_help(pretrain_mlm.parse_args, ["--help"], capsys)
    titles = re.findall(r"^([a-z][^:\n]*):$", text, re.MULTILINE)
    assert titles == [
        "start here", "data", "model", "model shape", "masking", "training",
        "evaluation and logging", "outputs and the Hub",
    ]  # fmt: skip
    assert next(iter(help_entries(text))) == "config"
    assert len(text.splitlines()) < 300
    assert "whole_word_mask" in text.split("masking:")[1].split("training:")[0]
    assert "learning_rate 5e-05" not in text and "ModernBertConfig's own: hidden_size=768" in text


def test_help_shows_what_a_config_file_sets(capsys):
    config = "recipes/configs/roberta-tiny.yaml"
    text = printed_help(pretrain_mlm.parse_args, ["--config", config, "--help"], capsys)
    defaults = help_defaults(text)
    assert defaults["output_dir"] == "outputs/roberta-tiny"
    assert f"(default: outputs/roberta-tiny, from {config})" in " ".join(text.split())
    assert f"Set by {config}: hidden_size=" in " ".join(text.split())


# ---- the demo's data description stays with the demo's data --------------------------------
def test_the_yaml_language_and_license_go_with_the_yaml_data(capsys):
    demo = ["--config", "recipes/configs/modernbert-tiny.yaml"]
    data_args, *_, training = pretrain_mlm.parse_args(demo)
    assert (data_args.language, data_args.license) == ("en", "apache-2.0")  # the demo's own text
    capsys.readouterr()
    data_args, *_, training = pretrain_mlm.parse_args([*demo, "--train_files", "my.txt"])
    recorded = training.run_settings["values"]
    assert "language" not in recorded and "license" not in recorded
    assert "validation_files" not in recorded
    assert data_args.language is None and data_args.license == "apache-2.0"  # the default
    printed = training.settings_report.split("not carried over")[1]  # printed by record_run
    for key in ("language", "license", "validation_files"):
        assert f"{key} from recipes/configs/modernbert-tiny.yaml not used: train_files was " in (
            printed
        )
    argv = [*demo, "--train_files", "my.txt", "--language", "fa", "--license", "mit"]
    data_args = pretrain_mlm.parse_args(argv)[0]
    assert (data_args.language, data_args.license) == ("fa", "mit")


def test_a_hub_dataset_on_the_command_line_replaces_the_yaml_one():
    persian = ["--config", "recipes/configs/roberta-base-persian.yaml"]
    data_args = pretrain_mlm.parse_args([*persian, "--dataset_name", "me/corpus"])[0]
    assert (data_args.dataset_name, data_args.dataset_config_name) == ("me/corpus", None)
    assert data_args.language is None
    data_args = pretrain_mlm.parse_args([*persian, "--train_files", "my.txt"])[0]
    assert (data_args.train_files, data_args.dataset_name) == (["my.txt"], None)


# ---- run_mlm.py's flags ---------------------------------------------------------------------
def test_run_mlm_names_are_read_as_ours(tmp_path, capsys):
    argv = ["--train_file", "a.txt", "--validation_file", "b.txt", "--tokenizer_name", "tok"]
    data_args, *_, training = pretrain_mlm.parse_args(argv)
    assert data_args.train_files == ["a.txt"] and data_args.validation_files == ["b.txt"]
    assert data_args.tokenizer_name_or_path == "tok"
    assert "`train_file` (the command line) is run_mlm.py's name: read as `train_files`" in (
        capsys.readouterr().out
    )
    assert "train_files" in training.run_settings["values"]  # recorded under our name
    config = tmp_path / "c.yaml"
    config.write_text("train_file: a.txt\ntokenizer_name: tok\nline_by_line: true\n")
    data_args = pretrain_mlm.parse_args(["--config", str(config)])[0]
    assert (data_args.train_files, data_args.line_by_line) == (["a.txt"], True)
    with pytest.raises(UserError, match="give one"):
        pretrain_mlm.parse_args([*argv, "--train_files", "c.txt"])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config_overrides", "hidden_size=256"], r"run_mlm.py's: set each model key .*--hidden_size 256"),
        (["--max_train_samples", "100"], r"run_mlm.py's: .*--max_steps"),
        (["--do_train", "false"], r"`do_train: false` \(the command line\): the recipes exist to train"),
        (["--do_eval=false"], r"`do_eval: false` \(the command line\): the recipe always evaluates"),
        (["--do_predict"], r"`do_predict` in the command line: the recipes evaluate"),
        (["--model_type", "bert"], r"`model_type: bert` .*python -m recipes.pretrain_bert"),
        (["--model_type=bert"], r"python -m recipes.pretrain_bert"),
    ],
)  # fmt: skip
def test_run_mlm_flags_without_a_field_here_name_the_equivalent(flags, message):
    with pytest.raises(UserError, match=message):
        pretrain_mlm.parse_args([*FAMILY_DATA, *flags])


@pytest.mark.parametrize(
    "flags, note",
    [
        (["--pad_to_max_length"], r"`pad_to_max_length` \(the command line\) is run_mlm.py's, not needed: text is packed"),
        (["--overwrite_cache", "true"], r"`overwrite_cache` .*re-tokenizes by itself"),
        (["--do_train"], r"`do_train` \(the command line\) is run_mlm.py's, not needed: the recipe always trains"),
        (["--do_eval", "true"], r"`do_eval` .*not needed: the recipe always evaluates"),
    ],
)  # fmt: skip
def test_harmless_run_mlm_flags_are_accepted_with_a_note(flags, note, capsys):
    *_, training = pretrain_mlm.parse_args([*FAMILY_DATA, *flags, "--max_steps", "3"])
    assert training.max_steps == 3  # the flag after the dropped one is still read
    assert re.search(note, capsys.readouterr().out)
    assert not {"do_train", "do_eval"} & set(training.run_settings["values"])  # not recorded


def test_run_mlm_keys_in_a_yaml_name_the_equivalent(tmp_path, capsys):
    *_, training = pretrain_mlm.parse_args(["--config", write_yaml(tmp_path, do_train=True)])
    assert re.search(
        r"`do_train` \(.*c\.yaml\) is run_mlm.py's, not needed", capsys.readouterr().out
    )
    with pytest.raises(UserError, match=r"`do_eval: false` \(.*c\.yaml\)"):
        pretrain_mlm.parse_args(["--config", write_yaml(tmp_path, do_eval=False)])
    with pytest.raises(UserError, match=r"`model_type: bert` .*recipes.pretrain_bert"):
        pretrain_mlm.parse_args(["--config", write_yaml(tmp_path, model_type="bert")])


def _readme_run_mlm_rows() -> dict[str, str]:
    """README's "Coming from run_mlm.py" table: each flag (`--x` or `--x N`) -> what it says."""
    text = (ROOT / "README.md").read_text().split("## Coming from run_mlm.py", 1)[1]
    rows = {}
    for line in text.split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")] if line.startswith("| `--") else []
        for flag in re.findall(r"`(--[a-z_]+)[^`]*`", cells[0] if cells else ""):
            rows[flag] = cells[1]
    return rows


# A value for each flag of the table (none: a bare switch); the data flags go in place of ours.
RUN_MLM_VALUES = {
    "--train_file": ["x.txt"], "--validation_file": ["v.txt"], "--tokenizer_name": ["tok"],
    "--line_by_line": ["true"], "--config_overrides": ["hidden_size=8"], "--max_train_samples": ["9"],
    "--pad_to_max_length": [], "--overwrite_cache": [], "--do_train": [], "--do_eval": [],
    "--model_type": ["bert"], "--model_name_or_path": ["ckpt"], "--dataset_name": ["owner/data"],
    "--max_seq_length": ["64"], "--mlm_probability": ["0.2"],
}  # fmt: skip


@pytest.mark.parametrize("flag, says", sorted(_readme_run_mlm_rows().items()))
def test_run_mlm_flags_do_what_the_readme_table_says(flag, says, capsys):
    data = {"--train_files": "x.txt", "--tokenizer_name_or_path": "tok"}
    data.pop({"--train_file": "--train_files", "--dataset_name": "--train_files",
              "--tokenizer_name": "--tokenizer_name_or_path"}.get(flag, ""), None)  # fmt: skip
    argv = [*(x for item in data.items() for x in item), flag, *RUN_MLM_VALUES[flag]]
    if says.startswith("stops the run"):
        with pytest.raises(UserError, match=flag[2:]):
            pretrain_mlm.parse_args(argv)
        return
    pretrain_mlm.parse_args(argv)
    if "with a note" in says:
        assert f"`{flag[2:]}` (the command line) is run_mlm.py's" in capsys.readouterr().out


def test_a_run_mlm_flag_stops_the_real_command_with_exit_status_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        pretrain_mlm.main([*FAMILY_DATA, "--max_train_samples", "10"])
    assert exit_.value.code == 2 and "max_train_samples" in capsys.readouterr().err


# ---- progress bars: none in a log ------------------------------------------------------------
def test_progress_bars_are_off_when_stdout_is_not_a_terminal(monkeypatch):
    *_, training = pretrain_mlm.parse_args(FAMILY_DATA)  # pytest captures stdout: no terminal
    assert training.disable_tqdm is True
    assert training.run_settings["values"]["disable_tqdm"] == "auto"  # a rerun decides anew
    origin = training.run_settings["origins"]["disable_tqdm"]
    assert origin.startswith("derived: disable_tqdm auto, stdout is not a terminal")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert pretrain_mlm.parse_args(FAMILY_DATA)[-1].disable_tqdm is False
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert (
        pretrain_mlm.parse_args([*FAMILY_DATA, "--disable_tqdm", "false"])[-1].disable_tqdm is False
    )


@pytest.mark.parametrize(
    "module", ["recipes.tasks.folio", "recipes.tasks.manpages_de", "recipes.tasks.shakespeare",
               "recipes.fill_mask"],
)  # fmt: skip
def test_every_small_command_describes_itself_and_each_option(module, capsys):
    command = importlib.import_module(module)
    with pytest.raises(SystemExit):
        command.main(["--help"])
    text = capsys.readouterr().out
    last_line = command.__doc__.strip().splitlines()[-1].strip()
    assert last_line in text  # the whole description, not its first half-sentence
    options = text.split("options:")[1]
    for flag in re.findall(r"^  (--\w+)", options, re.MULTILINE):
        entry = options.split(flag, 1)[1].split("\n  --")[0]
        assert len(entry.split()) > 2, f"{module} {flag} has no help"


# ---- --help says what the recipes do, and lists only what they take -------------------------
@pytest.mark.parametrize(
    "parse, argv, absent",
    [
        (pretrain_mlm.parse_args, [], ["do_train", "do_eval", "do_predict", "overwrite_cache"]),
        (pretrain_bert.parse_args, [], ["streaming", "line_by_line", "streaming_validation_examples"]),
        (finetune_classification.parse_args, [], ["streaming", "eval_steps", "save_steps"]),
    ],
)  # fmt: skip
def test_help_leaves_out_what_the_recipe_refuses(parse, argv, absent, capsys):
    for asked in ("--help", "--help-all"):
        listed = help_entries(printed_help(parse, [*argv, asked], capsys))
        assert not set(absent) & set(listed), asked
    assert "eval_steps" in help_entries(printed_help(pretrain_mlm.parse_args, ["--help"], capsys))


def test_help_of_trainer_fields_says_what_the_recipes_do(capsys):
    text = " ".join(printed_help(pretrain_mlm.parse_args, ["--help-all"], capsys).split())
    push = text.split("--push_to_hub", 1)[1].split(" --", 1)[0]
    assert "once, at the end of the run" in push and "every time the model is saved" not in push
    resume = text.split("--resume_from_checkpoint", 1)[1].split(" --", 1)[0]
    assert "resumes from the newest complete one" in resume and "not directly used" not in resume


@pytest.mark.parametrize(
    "parse, flags, message",
    [
        (finetune_classification.parse_args, ["--eval_steps", "10"],
         r"`eval_steps: 10.0` \(the command line\): each run evaluates `evaluations_per_run` times"),
        (finetune_classification.parse_args, ["--save_steps", "10"], r"set evaluations_per_run"),
        (finetune_classification.parse_args, ["--streaming", "true"], r"streaming is for pretraining"),
        (pretrain_bert.parse_args, ["--streaming", "true"], r"NSP draws random sentences"),
        (pretrain_bert.parse_args, ["--line_by_line", "true"], r"drop `line_by_line`"),
    ],
)  # fmt: skip
def test_fields_a_recipe_does_not_take_are_refused_not_ignored(parse, flags, message):
    data = ENTRY_POINTS["finetune_classification" if parse is finetune_classification.parse_args
                        else "pretrain_bert"][2]  # fmt: skip
    parse(data)  # the defaults alone pass
    with pytest.raises(UserError, match=message):
        parse([*data, *flags])


# ---- a local folder not made yet is named as such, not looked up on the Hub -----------------
@pytest.mark.parametrize(
    "path, local",
    [
        ("outputs/my-tokenizer", True),  # a fresh clone: no outputs/ yet, still a folder
        ("data/corpus", True),
        ("./tok", True),
        ("a/b/c", True),
        ("answerdotai/ModernBERT-base", False),
        ("roberta-base", False),
    ],
)
def test_what_can_only_be_a_local_folder(path, local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing exists here
    assert run_folder.looks_local(path) is local
    if local:
        with pytest.raises(UserError, match=rf"`x: {re.escape(path)}` is not a folder: no such"):
            run_folder.require_folder_or_hub_id(path, "x")


def test_an_id_the_hub_was_not_asked_for_offline_says_so(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: True)
    message = str(run_folder.not_found_anywhere("me/tok", "x", "set HF_HUB_OFFLINE=0 to ..."))
    assert "HF_HUB_OFFLINE is set, so the Hub was not asked" in message
    assert "HF_HUB_OFFLINE=0" not in message  # the wrong fix for a folder not made yet
