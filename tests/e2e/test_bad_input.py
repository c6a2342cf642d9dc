"""Bad input, in real processes: one clear message naming the file or field and the fix, a
non-zero exit status, no traceback, and nothing in output_dir that looks finished.

All cases start at once (most fail within the imports' few seconds), then each test checks
its own.
"""

import json
import os
import re
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from helpers import run_module, tiny
from transformers import AutoTokenizer

from recipes import pretrain_bert, pretrain_mlm
from recipes.arguments import DataArguments, DataSourceArguments
from recipes.data.packing import check_enough_data, tokenize_datasets
from recipes.data.text import load_raw_datasets
from recipes.data.tokenizer import load_tokenizer
from recipes.errors import UserError
from tokenizer_training.train_tokenizer import TokenizerArguments
from tokenizer_training.train_tokenizer import train_tokenizer as train_tokenizer_function

PRETRAIN, TOKENIZER = "recipes.pretrain_mlm", "tokenizer_training.train_tokenizer"
FINETUNE, FILL_MASK = "recipes.finetune_classification", "recipes.fill_mask"
NOT_MADE_YET = "outputs/not-made-yet"  # a fresh clone has no outputs/: still no Hub lookup
TINY = tiny(num_hidden_layers=1, max_steps=2, eval_steps=100, save_steps=100)

# id -> (module, arguments, expected message (regex)); {name} is a file made by `inputs`.
# Pretraining cases get --train_files/--tokenizer_name_or_path defaults unless they set them.
CASES = {
    "glob-matches-nothing": (PRETRAIN, ["--train_files", "{tmp}/nothing-*.txt"],
                             r"`train_files`: .*nothing-\*\.txt matches no file"),
    "empty-file": (PRETRAIN, ["--train_files", "{empty}"], r"empty\.txt is empty"),
    "smaller-than-a-block": (PRETRAIN, ["--train_files", "{small}", "--max_seq_length", "64"],
                             r"train data has \d+ tokens, fewer than one training block of "
                             r"max_seq_length=64"),
    "not-utf8": (PRETRAIN, ["--train_files", "{corpus}", "{latin1}"],
                 r"latin1\.txt line 3 is not valid UTF-8.*on_decode_error: skip"),
    "yaml-unknown-key": (PRETRAIN, ["--config", "{typo_yaml}"],
                         r"unknown config key `learnig_rate` in .*typo\.yaml\. Did you mean "
                         r"learning_rate"),
    "cli-unknown-key": (PRETRAIN, ["--lerning_rate", "1e-3"],
                        r"unknown config key `lerning_rate` in the command line.*learning_rate"),
    "misspelt-model-field": (PRETRAIN, ["--config", "{model_typo_yaml}"],
                             r"unknown config key `num_hidden_layer`.*num_hidden_layers"),
    # RoBERTa's positions start after the pad id: the trap this message is about
    "positions-too-few": (PRETRAIN, ["--model_type", "roberta", "--max_position_embeddings", "20"],
                          r"`max_position_embeddings: 20` is too small for max_seq_length=32.*"
                          r"needs .* = 34"),
    "longer-than-tokenizer": (PRETRAIN, ["--max_seq_length", "1024"],
                              r"`max_seq_length: 1024` exceeds the tokenizer's model_max_length "
                              r"\(512\)"),
    "mlm-probability-1.5": (PRETRAIN, ["--mlm_probability", "1.5"],
                            r"`mlm_probability` must be in \(0, 1\), got 1\.5"),
    "tokenizer-without-mask": (PRETRAIN, ["--tokenizer_name_or_path", "{no_mask_tok}"],
                               r"has no mask token"),
    "vocab-size-set": (PRETRAIN, ["--config", "{vocab_yaml}"],
                       r"`vocab_size` in .*vocab\.yaml cannot be set: the model's vocabulary is "
                       r"the tokenizer's"),
    "finished-output-dir": (PRETRAIN, ["--output_dir", "{finished}"],
                            r"output_dir .*finished already holds a finished model.*"
                            r"overwrite_output_dir"),
    "push-without-token": (PRETRAIN, ["--push_to_hub", "true", "--hub_model_id", "x/y"],
                           r"push_to_hub is on but no Hugging Face token was found"),
    "tokenizer-training-missing-file": (TOKENIZER, ["--train_files", "{tmp}/missing.txt"],
                                        r"`train_files`: .*missing\.txt matches no file"),
    "tokenizer-training-empty-file": (TOKENIZER, ["--train_files", "{empty}"],
                                      r"empty\.txt is empty"),
    "tokenizer-training-not-utf8": (TOKENIZER, ["--train_files", "{latin1}"],
                                    r"latin1\.txt line 3 is not valid UTF-8"),
    # the frictions a new user met (issue: "Frictions met as a new user")
    "output-dir-is-a-file": (PRETRAIN, ["--output_dir", "{a_file}"],
                             r"`output_dir: .*a-file\.txt` is a file, not a folder: pick another"),
    "tokenizer-output-dir-below-a-file": (TOKENIZER, ["--output_dir", "{a_file}/tok", "--train_files", "{corpus}"],
                                          r"`output_dir: .*a-file\.txt/tok` is below .*a-file\.txt,"
                                          r" which is a file, not a folder"),
    "tokenizer-not-made-yet": (PRETRAIN, ["--tokenizer_name_or_path", NOT_MADE_YET],
                               r"`tokenizer_name_or_path: outputs/not-made-yet` is not a folder: "
                               r"no such folder .*Train a tokenizer"),
    "model-not-made-yet": (FINETUNE, ["--model_name_or_path", NOT_MADE_YET],
                           r"`model_name_or_path: outputs/not-made-yet` is not a folder: no such "
                           r"folder .*Pretrain a model first"),
    "fill-mask-model-not-made-yet": (FILL_MASK, ["--model", NOT_MADE_YET, "To be or <mask>."],
                                     r"`model: outputs/not-made-yet` is not a folder: no such folder"),
    "config-misspelt": (PRETRAIN, ["--config", "recipes/configs/roberta-tinny.yaml"],
                        r"config file recipes/configs/roberta-tinny\.yaml does not exist\. Did you "
                        r"mean recipes/configs/roberta-tiny\.yaml"),
    "folder-of-hidden-files": (PRETRAIN, ["--train_files", "{hidden}"],
                               r"hidden matches no file\. Hidden files .* are skipped: 2 here"),
    "do-train-false": (PRETRAIN, ["--do_train", "false"],
                       r"`do_train: false` \(the command line\): the recipes exist to train"),
    "max-train-samples": (PRETRAIN, ["--max_train_samples", "100"],
                          r"`max_train_samples` in the command line is run_mlm.py's: .*max_steps"),
}  # fmt: skip
NO_HUB_LOOKUP = {"tokenizer-not-made-yet", "model-not-made-yet", "fill-mask-model-not-made-yet"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, corpus_files, bpe_tokenizer_dir) -> dict:
    tmp = tmp_path_factory.mktemp("bad-input")
    tok = bpe_tokenizer_dir
    files = {"tmp": tmp, "tok": tok, "corpus": corpus_files[0]}
    (tmp / "no-mask").mkdir()  # a bare tokenizer.json loads with no mask token
    shutil.copy(tok / "tokenizer.json", tmp / "no-mask")
    files["no_mask_tok"] = tmp / "no-mask"
    texts = {
        "empty": ("empty.txt", b""),
        "blank": ("blank.txt", b"\n  \n\n"),
        "small": (
            "small.txt",
            b"Shall I compare thee?\n\nThou art.\n\nRough winds.\n\nDo shake.\n",
        ),
        "latin1": ("latin1.txt", b"Shall I compare thee\nto a summer's day?\ncaf\xe9 cr\xe8me\n"),
        "bad_jsonl": ("bad.jsonl", b'{"text": "fine"}\n{"text": "caf\xe9"}\n'),
        "typo_yaml": ("typo.yaml", b"learnig_rate: 1.0e-3\n"),
        "model_typo_yaml": ("model.yaml", b"num_hidden_layer: 2\n"),
        "vocab_yaml": ("vocab.yaml", b"vocab_size: 500\n"),
        "a_file": ("a-file.txt", b"not a folder\n"),
    }
    for key, (name, content) in texts.items():
        (tmp / name).write_bytes(content)
        files[key] = tmp / name
    files["hidden"] = tmp / "hidden"  # a folder of dotfiles (and a dot-folder) only
    (files["hidden"] / ".notes").mkdir(parents=True)
    (files["hidden"] / ".a.txt").write_text("Shall I compare thee to a summer's day?\n")
    (files["hidden"] / ".notes" / "b.txt").write_text("Thou art more lovely.\n")
    files["finished"] = tmp / "finished"
    files["finished"].mkdir()
    (files["finished"] / "all_results.json").write_text('{"eval_loss": 5.0}\n')
    (files["finished"] / "model.safetensors").write_bytes(b"weights")
    return files


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket closes


def run_case(case_id: str, files: dict):
    module, args, _ = CASES[case_id]
    args = [a.format(**files) for a in args]
    output_dir = files["tmp"] / "out" / case_id
    env = {}
    if module == PRETRAIN:
        defaults = {
            "--train_files": files["corpus"],
            "--tokenizer_name_or_path": files["tok"],
            "--output_dir": output_dir,
        }
        args = TINY + [x for k, v in defaults.items() if k not in args for x in (k, str(v))] + args
        output_dir = Path(args[args.index("--output_dir") + 1])
        if "--push_to_hub" in args:  # no token anywhere, and no Hub to reach
            hf_home = files["tmp"] / "empty-hf-home"
            hf_home.mkdir(exist_ok=True)
            env = {"HF_HOME": str(hf_home), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
            assert "HF_TOKEN" not in os.environ  # conftest removed it
    elif module == TOKENIZER:
        args += ["--vocab_size", "300"]
        args += [] if "--output_dir" in args else ["--output_dir", str(output_dir)]
        output_dir = Path(args[args.index("--output_dir") + 1])
    elif module == FINETUNE:
        args += ["--train_files", str(files["corpus"]), "--output_dir", str(output_dir)]
    return run_module(module, *args, env=env, timeout=300), output_dir


@pytest.fixture(scope="module")
def results(inputs):
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        futures = {case: pool.submit(run_case, case, inputs) for case in CASES}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_gives_one_clear_message(case_id, results, inputs):
    (proc, output_dir), expected = results[case_id], CASES[case_id][2]
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: "), proc.stderr[-3000:]
    assert re.search(expected, last_line), last_line
    # the checks come before the settings: the error is not found below ~35 lines of them
    assert "settings that differ from the defaults" not in proc.stdout, proc.stdout[-2000:]
    if case_id in NO_HUB_LOOKUP:  # nor after a Hub lookup's advice about the network
        assert "huggingface.co" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
        assert "HF_HUB_OFFLINE" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    if case_id == "finished-output-dir":  # left as it was
        assert sorted(p.name for p in output_dir.iterdir()) == [
            "all_results.json",
            "model.safetensors",
        ]
        assert json.loads((output_dir / "all_results.json").read_text()) == {"eval_loss": 5.0}
    elif output_dir.is_file():  # output-dir-is-a-file: left as it was
        assert output_dir.read_text() == "not a folder\n"
    else:  # a refused run writes nothing: not even run_config.yaml
        assert not output_dir.exists() or not list(output_dir.iterdir()), list(output_dir.iterdir())


def test_undecodable_lines_can_be_skipped_with_a_count(inputs, tmp_path):
    out = tmp_path / "model"
    run = run_module(
        PRETRAIN, *TINY,
        "--train_files", inputs["corpus"], str(inputs["latin1"]), "--on_decode_error", "skip",
        "--tokenizer_name_or_path", str(inputs["tok"]), "--output_dir", str(out),
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "on_decode_error=skip: dropped 1 undecodable line(s) from the train data" in run.stdout
    assert (out / "all_results.json").is_file()


# More mistakes, checked in-process: they leave by the same `exit_on_user_error`.
@pytest.mark.parametrize(
    "command_line, yaml_fields, expected",
    [
        (["--max_steps", "many"], {}, r"invalid int value: 'many' \(on the command line\)"),
        ([], {"max_steps": "lots"}, r"`max_steps: lots` in .*: expected an integer"),
        ([], {"text_sample_by": "lines"}, r"`text_sample_by: lines` .*: choose one of auto, line,"),
    ],
)
def test_config_values_are_checked_as_on_the_command_line(
    tmp_path, command_line, yaml_fields, expected
):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"train_files": ["x.txt"], "tokenizer_name_or_path": "t"}))
    with config.open("a") as fh:
        fh.write("".join(f"{k}: {v}\n" for k, v in yaml_fields.items()))
    with pytest.raises(UserError, match=expected):
        pretrain_mlm.parse_args(["--config", str(config), *command_line])


def test_yaml_exponent_without_a_dot_is_still_a_number(tmp_path):
    config = tmp_path / "c.yaml"  # YAML 1.1 reads 5e-4 as the string "5e-4"
    config.write_text("train_files: [x.txt]\ntokenizer_name_or_path: t\nlearning_rate: 5e-4\n")
    assert pretrain_mlm.parse_args(["--config", str(config)])[3].learning_rate == 5e-4


def test_json_lines_that_are_not_utf8_are_named(inputs):
    args = DataArguments(train_files=[str(inputs["bad_jsonl"])], tokenizer_name_or_path="t")
    with pytest.raises(UserError, match=r"bad\.jsonl line 2 is not valid UTF-8"):
        load_raw_datasets(args)


def test_a_stream_smaller_than_a_block_is_named(inputs):
    args = DataArguments(
        train_files=[str(inputs["small"])], tokenizer_name_or_path="t", streaming=True
    )
    tokenizer = AutoTokenizer.from_pretrained(inputs["tok"])
    raw = load_raw_datasets(args)
    tokenized = tokenize_datasets(raw, tokenizer, args, num_proc=None)
    with pytest.raises(UserError, match=r"train data has 0 tokens.*streaming_validation_ex"):
        check_enough_data(tokenized, raw, tokenizer, args)


def test_a_missing_tokenizer_folder_is_named(tmp_path):
    with pytest.raises(UserError, match=r"`tokenizer_name_or_path: .*/nope` is not a folder"):
        load_tokenizer(str(tmp_path / "nope"), 128)


def test_tokenizer_training_on_blank_text_is_refused(inputs, tmp_path):
    args = TokenizerArguments(vocab_size=300, output_dir=str(tmp_path / "tok"))
    data = DataSourceArguments(train_files=[str(inputs["blank"])])
    with pytest.raises(UserError, match="the training data holds no text"):
        train_tokenizer_function(args, data)
    assert not (tmp_path / "tok").exists()


# ---- Every fix an error message suggests works for the recipe that raised it ----------------
# Each case: the files it needs, the failing arguments, the message (regex), and the arguments
# that apply the suggested fix (a function of the message when it names a number). The fixed
# run must get past the error: a tiny training run that completes.
def _passages(n: int, words: int = 30) -> list[str]:
    pool = "thou art more lovely and temperate rough winds do shake the darling buds of may".split()
    return [
        ". ".join(
            " ".join(pool[(i + j) % len(pool)] for j in range(k, k + 6)).capitalize()
            for k in range(0, words, 6)
        )
        + "."
        for i in range(n)
    ]


def _bert_format(n_docs: int) -> str:
    docs = ["\n".join(_passages(6, words=6)[i % 3 :]) for i in range(n_docs)]  # a sentence a line
    return "\n\n".join(docs) + "\n"


FIX_FILES = {
    "lines.txt": "\n".join(_passages(60)) + "\n",
    "one-line.txt": _passages(1, words=120)[0] + "\n",
    "val.txt": "\n".join(_passages(10)) + "\n",
    "short.txt": "\n".join(_passages(5, words=6)) + "\n",
    "body.jsonl": "".join(json.dumps({"body": t}) + "\n" for t in _passages(60)),
    "mixed/a.txt": "\n".join(_passages(60)) + "\n",
    "mixed/notes.md": "# notes\n",
    "types/a.jsonl": "".join(json.dumps({"text": t}) + "\n" for t in _passages(60)),
    "types/b.txt": "\n".join(_passages(60)) + "\n",
    "bert.txt": _bert_format(30),
    "bert-three.txt": _bert_format(3),
}
FIXES = {
    # id: (recipe, failing arguments, message, fix: extra arguments or message -> arguments)
    "document-reading-of-lines": (
        "mlm", ["--train_files", "{lines.txt}", "--text_sample_by", "document"],
        r"1 example\(s\), too few to hold out.*lines\.txt has 60 lines: set `text_sample_by: auto`",
        ["--text_sample_by", "auto"]),
    "paragraph-reading-of-lines": (
        "mlm", ["--train_files", "{lines.txt}", "--text_sample_by", "paragraph"],
        r"lines\.txt has 60 lines: set `text_sample_by: auto` \(or `line`\)",
        ["--text_sample_by", "line"]),
    "one-example": (
        "mlm", ["--train_files", "{one-line.txt}"],
        r"1 example\(s\), too few.*add text or set `validation_files`",
        ["--validation_files", "{val.txt}"]),
    "smaller-than-a-block-lower-length": (
        "mlm", ["--train_files", "{short.txt}", "--validation_files", "{val.txt}",
                "--max_seq_length", "128"],
        r"train data has \d+ tokens.*lower `max_seq_length` to (\d+) or less",
        lambda m: ["--max_seq_length", m.group(1)]),
    "smaller-than-a-block-line-by-line": (
        "mlm", ["--train_files", "{short.txt}", "--validation_files", "{val.txt}",
                "--max_seq_length", "128"],
        r"or set `line_by_line: true`", ["--line_by_line", "true"]),
    "stream-all-held-out": (
        "mlm", ["--train_files", "{lines.txt}", "--streaming", "true"],
        r"held out for validation and the data has only 60: lower `streaming_validation_"
        r"examples` well below 60", ["--streaming_validation_examples", "10"]),
    "text-column": (
        "mlm", ["--train_files", "{body.jsonl}"],
        r"`text_column: text` is not a column of `train_files` \(.*body\.jsonl\); its columns "
        r"are body: set `text_column: body`", ["--text_column", "body"]),
    "folder-with-other-files": (
        "mlm", ["--train_files", "{mixed}"],
        r"cannot read .*notes\.md: .*e\.g\. a glob such as `(.*)`",
        lambda m: ["--train_files", m.group(1)]),
    "mixed-types": (
        "mlm", ["--train_files", "{types}"],
        r"mixes file types \(\.jsonl, \.txt\); use one, e\.g\. `(.*)`",
        lambda m: ["--train_files", m.group(1)]),
    "bert-format-read-as-one-document": (
        "nsp", ["--train_files", "{bert.txt}", "--text_sample_by", "document"],
        r"bert\.txt has blank lines: set `text_sample_by: auto`", ["--text_sample_by", "auto"]),
    "bert-lines-without-blank-lines": (
        "nsp", ["--train_files", "{lines.txt}"],
        r"lines\.txt is one document: put a blank line between documents .* or set "
        r"`text_sample_by: line` if each line is a document", ["--text_sample_by", "line"]),
    "bert-few-documents": (
        "nsp", ["--train_files", "{bert-three.txt}"],
        r"3 document\(s\), too few.*`validation_holdout: document_ends`",
        ["--validation_holdout", "document_ends"]),
    "bert-sentence-per-line-read-by-line": (
        "nsp", ["--train_files", "{bert.txt}", "--text_sample_by", "line"],
        r"train data: each of the \d+ documents is a single sentence.*`text_sample_by: line` "
        r"makes each line a document; .* set `text_sample_by: auto`",
        ["--text_sample_by", "auto"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def fix_inputs(tmp_path_factory, corpus_files, bpe_tokenizer_dir) -> dict:
    tmp = tmp_path_factory.mktemp("fixes")
    files = {}
    for name, text in FIX_FILES.items():
        (tmp / name).parent.mkdir(exist_ok=True)
        (tmp / name).write_text(text)
        files[name] = tmp / name
    files["mixed"], files["types"] = tmp / "mixed", tmp / "types"
    wordpiece = tmp / "wordpiece"
    train_tokenizer_function(
        TokenizerArguments(tokenizer_type="wordpiece", vocab_size=400, output_dir=str(wordpiece)),
        DataSourceArguments(train_files=corpus_files),
    )
    files["tok"] = {"mlm": bpe_tokenizer_dir, "nsp": wordpiece}
    return files


@pytest.mark.parametrize("case_id", list(FIXES))
def test_each_suggested_fix_gets_past_its_error(case_id, fix_inputs, tmp_path, capsys):
    recipe, args, expected, fix = FIXES[case_id]
    main = {"mlm": pretrain_mlm.main, "nsp": pretrain_bert.main}[recipe]
    config = {"mlm": "roberta-tiny.yaml", "nsp": "bert-tiny-nsp.yaml"}[recipe]
    base = ["--config", f"recipes/configs/{config}", *TINY, "--per_device_eval_batch_size", "8"]
    base += ["--tokenizer_name_or_path", str(fix_inputs["tok"][recipe])]

    def fill(arguments):  # "{lines.txt}" -> its path (str.format would read ".txt" as a field)
        for name, path in fix_inputs.items():
            arguments = [a.replace(f"{{{name}}}", str(path)) for a in arguments]
        return arguments

    args = fill(args)

    with pytest.raises(SystemExit) as exit_:
        main([*base, *args, "--output_dir", str(tmp_path / "broken")])
    assert exit_.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    match = re.search(expected, message)
    assert match, message
    fix_args = fill(fix(match) if callable(fix) else fix)
    # the fix comes last on the command line, so it overrides the failing setting
    metrics = main([*base, *args, *fix_args, "--output_dir", str(tmp_path / "fixed")])
    assert metrics["train_tokens"] > 0, message
