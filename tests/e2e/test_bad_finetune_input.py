"""Bad fine-tuning input, in real processes: one message naming the file (and the line or row)
and the fix, exit status 2, no traceback, nothing in output_dir that looks finished. And what
is not an error: files of other shapes or formats than each other, empty texts (dropped, with a
count), a test file without the group column, long texts (truncated, and counted).

Also Ctrl-C: one line saying how to resume, exit status 130.

All failing cases start at once (they stop within the imports' few seconds, before training),
then each test checks its own.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import REPO, run_module, tiny, tiny_shape
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from recipes.arguments import DataArguments
from recipes.data.classification import load_classification_data
from recipes.data.text import load_raw_datasets
from recipes.errors import UserError

FINETUNE = "recipes.finetune_classification"
FAST = [
    "--max_seq_length", "32", "--per_device_train_batch_size", "8",
    "--per_device_eval_batch_size", "16", "--max_steps", "2", "--logging_steps", "1",
    "--eval_strategy", "no", "--save_strategy", "no", "--disable_tqdm", "true", "--bf16", "false",
    "--text_column", "line", "--label_column", "kind",
]  # fmt: skip
WORDS = "thou art more lovely and temperate rough winds do shake the darling buds of may".split()


def passage(i: int, words: int = 8) -> str:
    return " ".join(WORDS[(i + j) % len(WORDS)] for j in range(words)) + f" {i}"


def rows(n: int, start: int = 0, **extra) -> list[dict]:
    """`n` short labelled lines, "play" and "sonnet" in turn, with `extra` columns."""
    return [
        {"line": passage(i), "kind": ("play", "sonnet")[i % 2]}
        | {k: v(i) for k, v in extra.items()}
        for i in range(start, start + n)
    ]


def write_jsonl(path: Path, records: list[dict], lines: dict | None = None) -> Path:
    """`records` as JSON Lines; `lines` {line number: raw text} replaces lines as written."""
    text = [json.dumps(r) for r in records]
    for number, raw in (lines or {}).items():
        text[number - 1] = raw
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, bpe_tokenizer_dir) -> dict:
    tmp = tmp_path_factory.mktemp("bad-finetune")
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    model = tmp / "model"  # a tiny masked-LM checkpoint, random weights: nothing here trains long
    ids = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    config = BertConfig(**ids, **tiny_shape(), max_position_embeddings=64)
    BertForMaskedLM(config).save_pretrained(model)
    tok.save_pretrained(model)
    (tmp / "empty-model").mkdir()
    (tmp / "out").mkdir()  # `out/nonexistent` from tmp: the first part exists, so it is local
    unknown = rows(10, 100)
    unknown[6]["kind"] = "sonnet_new"
    no_label = rows(12)
    no_label[4]["kind"] = None
    f = {
        "tmp": tmp,
        "model": model,
        "empty_model": tmp / "empty-model",
        "train": write_jsonl(tmp / "train.jsonl", rows(40)),
        "test": write_jsonl(tmp / "test.jsonl", rows(10, 100)),
        "unknown": write_jsonl(tmp / "unknown.jsonl", unknown),
        "no_kind": write_jsonl(tmp / "no-kind.jsonl", [{"line": r["line"]} for r in rows(10)]),
        "no_label": write_jsonl(tmp / "no-label.jsonl", no_label),
        "malformed": write_jsonl(
            tmp / "malformed.jsonl", rows(100), {10: '{"line": "broken, "kind": "play"}'}
        ),
        "not_object": write_jsonl(tmp / "array.jsonl", rows(5), {3: '["a list", "play"]'}),
        "ragged": tmp / "ragged.csv",
        "unknown_csv": write_csv(tmp / "unknown.csv", unknown),
        "empty_texts": write_jsonl(tmp / "empty-texts.jsonl", [{"line": " ", "kind": "play"}] * 3),
    }
    f["ragged"].write_text("line,kind\nfirst,play\nsecond,sonnet\na, comma,play\nfourth,play\n")
    return f


# id -> (arguments, expected message (regex), cwd (None: the repository));
# {name} is a path from `files`; --train_files/--test_files default to train/test.
CASES = {
    "unknown-test-label": (
        ["--test_files", "{unknown}"],
        r"`test_files`: .*unknown\.jsonl has label\(s\) 'sonnet_new' that the training data "
        r"never has \(`label_column: kind`, the first at line 7\).*Fix those labels"),
    "unknown-label-in-csv": (
        ["--test_files", "{unknown_csv}"],
        r"`test_files`: .*unknown\.csv has label\(s\) 'sonnet_new' .*the first at line 8\)"),
    "unknown-validation-label": (
        ["--validation_files", "{unknown}"],
        r"`validation_files`: .*unknown\.jsonl has label\(s\) 'sonnet_new'"),
    "test-file-without-the-label-column": (
        ["--test_files", "{no_kind}"],
        r"`label_column: kind` is not a column of .*no-kind\.jsonl \(`test_files`\); it has "
        r"\['line'\]"),
    "a-row-without-a-label": (
        ["--test_files", "{no_label}"],
        r"no-label\.jsonl \(`test_files`\): 1 row\(s\) have no `kind` \(`label_column`\), "
        r"the first at line 5"),
    # groups carve validation and test out of the training data: only it needs the column
    "training-data-without-the-group-column": (
        ["--group_column", "page"],
        r"`group_column: page` is not a column of .*train\.jsonl \(`train_files`\).*\(validation "
        r"and test data need no group\)"),
    "malformed-jsonl-line": (
        ["--train_files", "{malformed}"],
        r"`train_files`: .*malformed\.jsonl line 10 is not valid JSON \(.*at column \d+\)\. "
        r"Each line of a \.jsonl file is one JSON object.*fix or delete that line"),
    "jsonl-line-not-an-object": (
        ["--test_files", "{not_object}"],
        r"`test_files`: .*array\.jsonl line 3 is a JSON list, not an object"),
    "csv-row-with-more-fields": (
        ["--test_files", "{ragged}"],
        r"`test_files`: cannot read .*ragged\.csv as csv: .*line 4.*quote the text"),
    "only-empty-texts": (
        ["--test_files", "{empty_texts}"],
        r"empty-texts\.jsonl \(`test_files`\): every text is empty \(`text_column: line`\)"),
    # the model is checked before the data: the malformed training file is never read
    "model-path-with-a-typo": (
        ["--model_name_or_path", "out/nonexistent", "--train_files", "{malformed}"],
        r"`model_name_or_path: out/nonexistent` is not a folder: no such folder \(from .*\)\. "
        r"Pretrain a model first", "{tmp}"),
    "model-folder-that-is-empty": (
        ["--model_name_or_path", "{empty_model}", "--train_files", "{malformed}"],
        r"`model_name_or_path: .*empty-model` has no config\.json"),
}  # fmt: skip


def fill(args: list[str], files: dict) -> list[str]:
    return [a.format(**files) for a in args]


def run_case(case_id: str, files: dict):
    args, _, *cwd = CASES[case_id]
    args = fill(args, files)
    output_dir = files["tmp"] / "runs" / case_id
    defaults = {
        "--model_name_or_path": files["model"],
        "--train_files": files["train"],
        "--test_files": files["test"],
    }
    argv = FAST + ["--output_dir", str(output_dir)] + args
    argv += [x for k, v in defaults.items() if k not in args for x in (k, str(v))]
    cwd = fill(cwd, files)[0] if cwd else REPO
    return run_module(FINETUNE, *argv, cwd=cwd, timeout=300), output_dir


@pytest.fixture(scope="module")
def results(files):
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        futures = {case: pool.submit(run_case, case, files) for case in CASES}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_finetuning_input_gives_one_clear_message(case_id, results):
    proc, output_dir = results[case_id]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), proc.stderr[-3000:]
    assert re.search(CASES[case_id][1], errors[0]), errors[0]
    for name in ["all_results.json", "model.safetensors", "_runs"]:
        assert not (output_dir / name).exists(), name


def test_a_malformed_jsonl_line_in_pretraining_data_is_named(files):
    args = DataArguments(train_files=[str(files["malformed"])], tokenizer_name_or_path="t")
    with pytest.raises(UserError, match=r"malformed\.jsonl line 10 is not valid JSON"):
        load_raw_datasets(args)


# ---- What is not an error ------------------------------------------------------------------
def test_labels_of_mixed_types_read_as_text_across_files_and_formats(tmp_path):
    """jsonl labels `1` and "0" in one file (the json loader keeps them as raw JSON), csv
    labels 0 and 1 read as numbers: all are the labels "0" and "1"."""
    train = [{"line": passage(i), "kind": 1 if i % 2 else "0", "id": i} for i in range(20)]
    test = [{"kind": i % 2, "line": passage(i)} for i in range(6)]
    args = types.SimpleNamespace(
        train_files=[str(write_jsonl(tmp_path / "train.jsonl", train))], validation_files=None,
        test_files=[str(write_csv(tmp_path / "test.csv", test))],
        dataset_name=None, text_column="line", text_pair_column=None, label_column="kind",
        group_column=None, validation_split_percentage=10.0, test_split_percentage=10.0,
        max_train_samples=None, max_eval_samples=None,
    )  # fmt: skip
    raw, names = load_classification_data(args, seed=0)
    assert names == ["0", "1"]
    assert raw["test"]["label"] == [0, 1, 0, 1, 0, 1]
    assert raw["train"].column_names == ["text", "label"]


def test_splits_of_other_shapes_and_formats_empty_texts_and_truncation(files, tmp_path):
    """csv training data with an `id` and a `page` (group) column and empty and "NaN" texts;
    jsonl test data without either column, its texts longer than max_seq_length: it trains,
    says what it dropped and what it cut, and records the cuts in all_results.json."""
    train = rows(40, id=lambda i: 1000 + i, page=lambda i: f"page{i // 4}")
    for i in (3, 17, 25):
        train[i]["line"] = "  " if i != 17 else ""  # whitespace-only or empty cells
    train[8]["line"] = "NaN"  # a text, not a missing value
    write_csv(tmp_path / "train.csv", train)
    long = rows(10, 200)
    for i, r in enumerate(long[:7]):  # 7 of 10 longer than 32 tokens: most of the split
        r["line"] = passage(i, words=40 + 10 * i)
    write_jsonl(tmp_path / "test.jsonl", long)
    out = tmp_path / "out"
    run = run_module(
        FINETUNE, *FAST, "--model_name_or_path", str(files["model"]), "--output_dir", str(out),
        "--train_files", str(tmp_path / "train.csv"), "--test_files", str(tmp_path / "test.jsonl"),
        "--group_column", "page", env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(
        r"^dropped 3 empty text\(s\) in .*train\.csv \(`train_files`\)$", run.stdout, re.M
    ), run.stdout
    results = json.loads((out / "all_results.json").read_text())
    # 40 rows - 3 empty = 37, "NaN" among them; validation: whole pages held out of train
    assert results["train_examples"] + results["validation_examples"] == 37
    assert results["test_examples"] == 10
    tok = AutoTokenizer.from_pretrained(files["model"])
    lost = sorted(len(tok(r["line"])["input_ids"]) - 32 for r in long[:7])
    assert min(lost) > 0
    assert results["test_truncated_examples"] == 7
    assert results["test_truncated_median_tokens_lost"] == lost[3]
    assert results["train_truncated_examples"] == 0
    assert results["train_truncated_median_tokens_lost"] == 0
    assert results["validation_truncated_examples"] == 0
    assert f"test: 7 of 10 examples truncated to max_seq_length=32 (median {lost[3]} " in run.stdout
    assert "warning: most test examples (70%) are longer than max_seq_length=32" in run.stderr


# ---- Ctrl-C --------------------------------------------------------------------------------
def interrupt_when(argv: list[str], module: str, ready, timeout: float = 300):
    """Start `module` in a process of its own, send it SIGINT (Ctrl-C) once `ready()` holds;
    return (exit status, stdout + stderr). The output goes to files, not pipes: nothing reads a
    pipe until the interrupt, and a child whose progress bars fill one (64 kB) would block
    before it ever got ready."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *argv], cwd=REPO, env=env, text=True,
            stdout=out, stderr=err, start_new_session=True,
            # a shell without job control starts background commands with SIGINT ignored, and
            # a child inherits that: give this one Ctrl-C's usual meaning, as a terminal would
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        try:
            while not ready():
                if proc.poll() is not None:
                    err.seek(0)
                    pytest.fail(f"ended before it was interrupted:\n{err.read()[-3000:]}")
                if time.monotonic() >= deadline:
                    err.seek(0)
                    pytest.fail(f"not ready after {timeout}s; its output:\n{err.read()[-3000:]}")
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.seek(0), err.seek(0)
        return proc.returncode, out.read(), err.read()


def test_ctrl_c_during_pretraining_says_how_to_resume(tmp_path, corpus_files, bpe_tokenizer_dir):
    out = tmp_path / "run"
    argv = [
        "--config", "recipes/configs/roberta-tiny.yaml",
        *tiny(max_steps=10_000, save_steps=2, eval_steps=10_000, logging_steps=1, bf16=False),
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir),
        "--output_dir", str(out),
    ]  # fmt: skip
    status, stdout, stderr = interrupt_when(
        argv,
        "recipes.pretrain_mlm",
        # any checkpoint: with save_total_limit 2 and steps of milliseconds, checkpoint-2 can
        # be deleted before a poll sees it
        lambda: any(out.glob("checkpoint-*/trainer_state.json")),
    )
    assert status == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    match = re.fullmatch(
        r"interrupted: rerun the same command to resume from (checkpoint-\d+) \(.*\)\.", last
    )
    assert match, last
    assert (out / match.group(1) / "trainer_state.json").is_file()
    assert not (out / "all_results.json").exists()


def test_ctrl_c_during_fine_tuning_says_finished_runs_are_kept(files, tmp_path):
    out = tmp_path / "grid"
    argv = [
        *FAST, "--max_steps", "10000", "--model_name_or_path", str(files["model"]),
        "--output_dir", str(out), "--train_files", str(files["train"]),
        "--test_files", str(files["test"]),
    ]  # fmt: skip
    status, stdout, stderr = interrupt_when(argv, FINETUNE, lambda: (out / "_runs").is_dir())
    assert status == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last == "interrupted: rerun the same command to resume; finished runs are kept.", last
    assert not (out / "all_results.json").exists()
