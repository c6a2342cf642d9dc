"""Your own data, in the shapes people bring it: each row of the README's "Your own data" table,
run through the recipe's own entry point on a tiny file of that shape (a few training steps).
"""

import bz2
import csv
import gzip
import json
import lzma
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import tiny
from transformers import AutoTokenizer

from recipes import pretrain_bert, pretrain_mlm
from recipes.arguments import DataArguments, DataSourceArguments
from recipes.data.nsp import split_sentences
from recipes.data.text import load_raw_datasets, text_batches
from recipes.tasks.shakespeare import write_one_document_per_file
from tokenizer_training.train_tokenizer import TokenizerArguments, train_tokenizer

TINY = tiny(
    num_hidden_layers=1,
    per_device_train_batch_size=4,
    per_device_eval_batch_size=8,
    max_steps=2,
    eval_steps=100,
    save_steps=100,
    logging_steps=1,
)
WORDS = "the of and to in a is that for it as was with be by on not he this are or his".split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))).capitalize() + "."


def passages(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{sentence(rng)} {sentence(rng)} {sentence(rng)}" for _ in range(n)]


def bert_documents(n: int, seed: int = 0) -> str:
    """BERT's create_pretraining_data format: a sentence per line, a blank line between documents."""
    rng = random.Random(seed)
    docs = ["\n".join(sentence(rng) for _ in range(rng.randint(4, 10))) for _ in range(n)]
    return "\n\n".join(docs) + "\n"


@pytest.fixture(scope="module")
def wordpiece_dir(tmp_path_factory, corpus_files):
    out = tmp_path_factory.mktemp("shapes-wordpiece")
    args = TokenizerArguments(tokenizer_type="wordpiece", vocab_size=800, output_dir=str(out))
    train_tokenizer(args, DataSourceArguments(train_files=corpus_files))
    return out


def train_mlm(tmp_path, bpe_tokenizer_dir, *args: str) -> dict:
    """python -m recipes.pretrain_mlm --config recipes/configs/modernbert-tiny.yaml ARGS (tiny)."""
    return pretrain_mlm.main(
        ["--config", "recipes/configs/modernbert-tiny.yaml", *TINY, *args]
        + ["--tokenizer_name_or_path", str(bpe_tokenizer_dir)]
        + ["--output_dir", str(tmp_path / "out")]
    )


def rows(*train_files: str, **kw) -> dict:
    args = DataArguments(train_files=list(train_files), tokenizer_name_or_path="unused", **kw)
    raw = load_raw_datasets(args)
    return {split: [e["text"] for e in ds] for split, ds in raw.items()}


# ---- One passage per line, no blank lines (the tutorial's file, most dumps) -----------------


def test_one_passage_per_line_is_read_by_line_and_trains(tmp_path, bpe_tokenizer_dir, capsys):
    lines = passages(80)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n\n")  # a trailing empty line separates nothing
    read = rows(str(corpus))
    assert [t for t in read["validation"] + read["train"] if t] == lines
    assert "1 file(s) as one passage per line (corpus.txt)" in capsys.readouterr().out
    metrics = train_mlm(tmp_path, bpe_tokenizer_dir, "--train_files", str(corpus))
    assert metrics["train_tokens"] > 0
    out = capsys.readouterr()
    # Packing encodes whole passages, then cuts blocks: nothing to warn about
    assert "Token indices sequence length" not in out.out + out.err


def test_explicit_text_sample_by_is_taken_as_given(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(passages(10)) + "\n")
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("\n".join(passages(3)) + "\n")
    read = rows(str(corpus), text_sample_by="paragraph", validation_files=[str(held_out)])
    assert len(read["train"]) == 1


def test_blank_line_paragraphs_are_read_by_paragraph(tmp_path, bpe_tokenizer_dir, capsys):
    paragraphs = ["\n".join(passages(3, seed)) for seed in range(30)]
    corpus = tmp_path / "paragraphs.txt"
    corpus.write_text("\n\n".join(paragraphs) + "\n")
    read = rows(str(corpus))
    assert [t.strip() for t in read["validation"] + read["train"]] == paragraphs
    assert "1 file(s) as blank-line paragraphs (paragraphs.txt)" in capsys.readouterr().out
    assert train_mlm(tmp_path, bpe_tokenizer_dir, "--train_files", str(corpus))["train_tokens"]


def test_tokenizer_training_reads_passages_by_line(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(passages(50)) + "\n")
    data = DataSourceArguments(train_files=[str(corpus)])
    batches = list(text_batches(load_raw_datasets(data, split_validation=False)["train"]))
    assert [len(b) for b in batches] == [50]  # 50 texts, not one giant string
    args = TokenizerArguments(vocab_size=300, output_dir=str(tmp_path / "tok"))
    train_tokenizer(args, data)
    assert "one passage per line (corpus.txt)" in capsys.readouterr().out
    assert len(AutoTokenizer.from_pretrained(tmp_path / "tok")) == 300


# ---- A folder of many small files, one document each ----------------------------------------


def test_a_folder_of_small_files(tmp_path, bpe_tokenizer_dir, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(40):
        (folder / f"doc{i:02}.txt").write_text("\n".join(passages(2, i)) + "\n")
    (folder / ".hidden.txt").write_text("not read\n")
    read = rows(str(folder))
    assert len(read["train"]) + len(read["validation"]) == 80
    assert "40 file(s) as one passage per line (doc00.txt, doc01.txt, doc02.txt and 37 more)" in (
        capsys.readouterr().out
    )
    assert train_mlm(tmp_path, bpe_tokenizer_dir, "--train_files", str(folder))["train_tokens"]


# ---- Windows files: CRLF line ends and a byte-order mark ------------------------------------


def test_crlf_and_bom(tmp_path, bpe_tokenizer_dir):
    lines = passages(40)
    corpus = tmp_path / "windows.txt"
    corpus.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    read = rows(str(corpus))
    assert read["validation"] + read["train"] == lines  # no "\r", no "\ufeff" in the text
    paragraphs = tmp_path / "windows-paragraphs.txt"
    paragraphs.write_bytes(b"\xef\xbb\xbf" + "\r\n\r\n".join(lines).encode() + b"\r\n")
    read = rows(str(paragraphs))
    assert [t.strip() for t in read["validation"] + read["train"]] == lines  # CRLF blank lines
    assert train_mlm(tmp_path, bpe_tokenizer_dir, "--train_files", str(corpus))["train_tokens"]


# ---- JSON lines, parquet, compressed ------------------------------------------------------


def test_jsonl_with_another_text_column(tmp_path, bpe_tokenizer_dir):
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"id": i, "body": p}) + "\n" for i, p in enumerate(passages(40)))
    )
    assert rows(str(data), text_column="body")["train"][0] == passages(40)[2]
    metrics = train_mlm(
        tmp_path, bpe_tokenizer_dir, "--train_files", str(data), "--text_column", "body"
    )
    assert metrics["train_tokens"] > 0


@pytest.mark.parametrize(
    "name", ["corpus.txt.gz", "data.jsonl.gz", "corpus.txt.bz2", "corpus.txt.xz"]
)
def test_compressed(tmp_path, bpe_tokenizer_dir, name):
    lines = passages(40)
    text = (
        "\n".join(json.dumps({"text": p}) for p in lines) if "jsonl" in name else "\n".join(lines)
    )
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[Path(name).suffix]
    with opener(tmp_path / name, "wt", encoding="utf-8") as fh:
        fh.write(text + "\n")
    read = rows(str(tmp_path / name))
    assert read["validation"] + read["train"] == lines
    assert train_mlm(tmp_path, bpe_tokenizer_dir, "--train_files", str(tmp_path / name))


def test_parquet(tmp_path, bpe_tokenizer_dir):
    table = pa.table({"content": passages(40), "n": list(range(40))})
    pq.write_table(table, tmp_path / "data.parquet")
    read = rows(str(tmp_path / "data.parquet"), text_column="content")
    assert read["validation"] + read["train"] == passages(40)
    metrics = train_mlm(
        tmp_path, bpe_tokenizer_dir, "--train_files", str(tmp_path / "data.parquet"),
        "--text_column", "content",
    )  # fmt: skip
    assert metrics["train_tokens"] > 0


def test_csv(tmp_path, bpe_tokenizer_dir):
    data = tmp_path / "data.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "body"])
        writer.writerows(enumerate(passages(40)))
    read = rows(str(data), text_column="body")
    assert read["validation"] + read["train"] == passages(40)
    metrics = train_mlm(
        tmp_path, bpe_tokenizer_dir, "--train_files", str(data), "--text_column", "body"
    )
    assert metrics["train_tokens"] > 0


def test_a_dataset_by_name(tmp_path, bpe_tokenizer_dir):
    """The Hub dataset row, without a network: `dataset_name` naming a dataset folder goes
    through the same `load_dataset(dataset_name, dataset_config_name)` call as a Hub id."""
    folder = tmp_path / "my-dataset"
    folder.mkdir()
    pq.write_table(pa.table({"text": passages(60)}), folder / "train.parquet")
    metrics = train_mlm(tmp_path, bpe_tokenizer_dir, "--dataset_name", str(folder))
    assert metrics["train_tokens"] > 0


def test_streaming_one_passage_per_line(tmp_path, bpe_tokenizer_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(passages(200)) + "\n")
    metrics = train_mlm(
        tmp_path, bpe_tokenizer_dir, "--train_files", str(corpus), "--streaming", "true",
        "--streaming_validation_examples", "20",
    )  # fmt: skip
    assert metrics["train_tokens"] == 2 * 4 * 32


# ---- BERT: its own input format, in one file or many; one play per file -----------------------


BERT_DEMO = ["--config", "recipes/configs/bert-tiny-nsp.yaml"]


def train_bert(tmp_path, wordpiece_dir, *args: str) -> dict:
    return pretrain_bert.main(
        [*BERT_DEMO, *TINY, *args]
        + ["--tokenizer_name_or_path", str(wordpiece_dir), "--output_dir", str(tmp_path / "out")]
    )


@pytest.mark.parametrize("n_files", [1, 3])
def test_bert_format_trains_the_bert_recipe(tmp_path, wordpiece_dir, capsys, n_files):
    for i in range(n_files):
        (tmp_path / f"shard{i}.txt").write_text(bert_documents(30 // n_files, seed=i))
    files = [str(tmp_path / f"shard{i}.txt") for i in range(n_files)]
    metrics = train_bert(tmp_path, wordpiece_dir, "--train_files", *files)  # the demo's YAML
    out = capsys.readouterr().out
    assert f"{n_files} file(s) as documents separated by blank lines (BERT's format)" in out
    assert "NSP pairs:" in out and 0 <= metrics["eval_nsp_accuracy"] <= 1
    argv = [*BERT_DEMO, "--train_files", *files, "--tokenizer_name_or_path", "t"]
    docs = pretrain_bert.load_documents(*pretrain_bert.parse_args(argv)[:2])
    assert len(docs["train"]) + len(docs["validation"]) == 30 // n_files * n_files  # not n_files


def test_one_document_per_file_as_the_demo(tmp_path, wordpiece_dir, capsys):
    """The demo's works have blank lines between speeches; recipes/tasks/shakespeare.py writes them without
    (data/shakespeare-plays/), and the one rule then reads each work as one document with the
    same sentences as `text_sample_by: document` reads the original."""
    (tmp_path / "works").mkdir()
    for i in range(5):  # plays: speeches separated by blank lines, one play per file
        speeches = ["SPEAKER.\n" + "\n".join(passages(2, 10 * i + j)) for j in range(12)]
        (tmp_path / "works" / f"play{i}.txt").write_text("\n\n".join(speeches) + "\n")
    works = sorted((tmp_path / "works").glob("*.txt"))
    plays = [str(p) for p in write_one_document_per_file(works, tmp_path / "plays")]

    def documents(*args):
        argv = [*BERT_DEMO, "--tokenizer_name_or_path", "t", *args]
        docs = pretrain_bert.load_documents(*pretrain_bert.parse_args(argv)[:2])
        return {split: [split_sentences(d["document"]) for d in docs[split]] for split in docs}

    as_demo = documents("--train_files", *plays)
    assert "5 file(s) as one document per file (no blank lines)" in capsys.readouterr().out
    assert (len(as_demo["train"]), len(as_demo["validation"])) == (3, 2)  # whole plays
    assert as_demo == documents("--train_files", *map(str, works), "--text_sample_by", "document")
    metrics = train_bert(tmp_path, wordpiece_dir, "--train_files", *plays)
    assert metrics["train_tokens"] > 0
