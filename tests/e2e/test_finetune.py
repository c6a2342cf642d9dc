"""Fine-tuning for classification: a tiny RoBERTa pretrained here is fine-tuned on tiny labelled
files (single texts and pairs), next to its random-init control; reloads with pipeline().

A grid killed with SIGKILL, between runs or inside one, and started again skips the runs it
finished and ends with an unbroken command's table and model.

Also: a Hub dataset's code path (`load_dataset(name, config)`) on a local folder with GLUE's
layout and schema (sst2, mrpc), ModernBERT and BERT checkpoints, bad input, the push, and the
First Folio genre task's split (its test text is exactly what pretraining held out).
"""

import csv
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from datasets import ClassLabel, Dataset, Features, Value
from helpers import REPO, run_module, tiny, tiny_shape
from helpers.hub_server import run_hub_server
from safetensors.torch import load_file
from transformers import AutoTokenizer, Trainer, pipeline
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from recipes import finetune_classification as ft
from recipes.data.text import load_raw_datasets
from recipes.errors import UserError
from recipes.finetune import comparison
from recipes.finetune.training import RESULT_FILE, fine_tune, optimizer_with_head_lr
from recipes.models.checkpoints import load_pretrained_parts, pretrained_model
from recipes.models.families import FAMILIES, build_config, build_model
from recipes.tasks import folio

FAST = [
    "--max_seq_length", "32", "--max_train_samples", "1000",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
    "--max_steps", "6", "--logging_steps", "2", "--eval_strategy", "no", "--save_strategy", "no",
    "--disable_tqdm", "true", "--bf16", "false",
]  # fmt: skip
PRETRAIN = [
    "--config", "recipes/configs/roberta-tiny.yaml",
    *tiny(max_steps=6, eval_steps=6, save_steps=6, bf16=False),
]  # fmt: skip


def lines_of(path: str) -> list[str]:
    text = Path(path).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if len(ln.split()) >= 5]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, bpe_tokenizer_dir, corpus_files):
    """A tiny RoBERTa, pretrained for a few steps by the real recipe."""
    from recipes import pretrain_mlm

    out = tmp_path_factory.mktemp("ft") / "roberta"
    pretrain_mlm.main(
        PRETRAIN
        + ["--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir)]
        + ["--output_dir", str(out)]
    )
    assert (out / "all_results.json").is_file()
    return out


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, corpus_files):
    """Lines of Macbeth ("play") and the Sonnets ("sonnet"); 60/36 train, 30/18 held out, so
    the majority label is "play" and always predicting it scores 30/48 = 0.625."""
    root = tmp_path_factory.mktemp("labelled")
    macbeth, sonnets = (lines_of(f) for f in sorted(corpus_files))
    assert "macbeth" in sorted(corpus_files)[0]
    rows = {
        "train": [(t, "play") for t in macbeth[:60]] + [(t, "sonnet") for t in sonnets[:36]],
        "test": [(t, "play") for t in macbeth[60:90]] + [(t, "sonnet") for t in sonnets[36:54]],
    }
    single = {}
    for split, pairs in rows.items():
        path = root / f"{split}.jsonl"
        path.write_text("".join(json.dumps({"line": t, "kind": k}) + "\n" for t, k in pairs))
        single[split] = path
    # pairs: is the second line the one that follows the first in the same text? (1 or 0)
    rng = random.Random(0)
    pair = {}
    for split, (lo, hi) in {"train": (0, 48), "test": (48, 72)}.items():
        pair[split] = root / f"{split}.csv"
        with open(pair[split], "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["sentence1", "sentence2", "label"])
            for i in range(lo, hi):
                follows = i % 3 != 0  # 2 of 3 pairs are true continuations: majority label 1
                second = macbeth[i + 1] if follows else sonnets[rng.randrange(len(sonnets))]
                writer.writerow([macbeth[i], second, int(follows)])
    return single, pair


def finetune(model, data: dict, out: Path, *extra: str) -> dict:
    return ft.main(
        FAST
        + ["--model_name_or_path", str(model), "--output_dir", str(out)]
        + ["--train_files", str(data["train"]), "--test_files", str(data["test"])]
        + list(extra)
    )


# ------------------------------------------------------------------------ single texts, push
GOOD = "hf_finetune_test_token_alice_0123456789"


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, pretrained, labelled):
    """The real entry point in a real process: single texts, the control, push to a fake Hub."""
    single, _ = labelled
    root = tmp_path_factory.mktemp("pushed")
    with run_hub_server(root / "hub", tokens={GOOD: "alice"}) as hub:
        run = run_module(
            "recipes.finetune_classification", *FAST,
            "--model_name_or_path", str(pretrained), "--output_dir", str(root / "genre"),
            "--train_files", str(single["train"]), "--test_files", str(single["test"]),
            "--text_column", "line", "--label_column", "kind", "--from_scratch_control", "true",
            "--push_to_hub", "true",
            env={"HF_ENDPOINT": hub.url, "HF_TOKEN": GOOD, "HF_HOME": str(root / "hf_home"),
                 "NO_PROXY": "127.0.0.1"},
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        yield root / "genre", run, hub.files("alice/genre")


def test_single_texts_report_pretrained_control_and_majority(pushed):
    out, run, _ = pushed
    results = json.loads((out / "all_results.json").read_text())
    [row] = results["learning_curve"]
    for prefix, side in (("", "pretrained"), ("control_", "random init")):
        assert 0.0 <= results[f"{prefix}test_accuracy"] <= 1.0
        assert row[side]["accuracy"] == [results[f"{prefix}test_accuracy"]]  # one seed
        assert "f1" in row[side]  # two classes
    assert results["test_accuracy_difference"] == pytest.approx(
        results["test_accuracy"] - results["control_test_accuracy"]
    )
    assert results["majority_label"] == "play"
    assert results["majority_baseline_accuracy"] == pytest.approx(30 / 48)  # on the test file
    assert results["majority_baseline_f1"] == 0.0  # "play" is label 0: never predicts class 1
    # 96 training rows: a seeded 10% (10) is the validation split, the test file is the test set
    assert (results["train_examples"], results["validation_examples"]) == (86, 10)
    assert results["test_examples"] == 48 and row["labels"] == 86
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("test accuracy 0"))
    assert f"{results['test_accuracy']:.3f} (F1" in line and "(86 labels)" in line
    assert f"{results['control_test_accuracy']:.3f} (F1" in line and "random weights" in line
    assert "0.625 (F1 0.000) for always predicting 'play'" in line
    assert "(one seed: no standard error)" in line


def test_saved_classifier_reloads_with_pipeline(pushed, pretrained):
    out, _, _ = pushed
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["RobertaForSequenceClassification"]
    assert config["id2label"] == {"0": "play", "1": "sonnet"}
    assert not list(out.glob("*.bin")) or list(out.glob("*.bin")) == [out / "training_args.bin"]
    classify = pipeline("text-classification", model=str(out))
    [prediction] = classify("When shall we three meet again?")
    assert prediction["label"] in {"play", "sonnet"} and 0.0 <= prediction["score"] <= 1.0
    # the encoder started from the pretrained checkpoint: fine-tuning moved it, but not far;
    # the token embeddings stay as pretraining left them (freeze_embeddings, the default)
    tuned, base = load_file(out / "model.safetensors"), load_file(pretrained / "model.safetensors")
    name = "roberta.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(tuned[name], base[name])
    assert (tuned[name] - base[name]).abs().max() < 0.05
    name = "roberta.embeddings.word_embeddings.weight"
    assert torch.equal(tuned[name], base[name])


def test_card_and_push(pushed, pretrained):
    out, run, files = pushed
    assert "Pushed to " in run.stdout and GOOD not in run.stdout + run.stderr
    assert {"model.safetensors", "config.json", "README.md", "all_results.json"} <= set(files)
    assert "loss_curve.png" in files and "tokenizer.json" in files
    assert not [name for name in files if name.startswith(("_control", "checkpoint-"))]
    card = files["README.md"].decode()
    assert "pipeline_tag: text-classification" in card
    assert f"## Fine-tuned from\n\nFine-tuned from `{pretrained}`" in card
    assert "masked-token accuracy" in card  # from the base model's own all_results.json
    assert "as the control, from random weights (same architecture)" in card
    assert "Always 'play' (the most frequent training label) scores 0.625." in card
    assert "learning_curve.png" in files and "![Learning curve](learning_curve.png)" in card
    assert "| token_embeddings | frozen, as pretrained |" in card


# ------------------------------------------------------------------------ pairs, the control
def test_pairs_and_the_control_is_the_same_run_from_random_weights(
    pretrained, labelled, tmp_path, monkeypatch
):
    _, pair = labelled
    runs = []
    original = fine_tune

    def spy(model, training_args, datasets, *args, **kwargs):
        runs.append((model, training_args, datasets))
        return original(model, training_args, datasets, *args, **kwargs)

    monkeypatch.setattr(comparison, "fine_tune", spy)  # where the grid calls it
    results = finetune(
        pretrained, pair, tmp_path / "pairs", "--text_column", "sentence1",
        "--text_pair_column", "sentence2", "--from_scratch_control", "true",
        "--learning_rate", "0",
    )  # fmt: skip
    (model, args, data), (control, control_args, control_data) = runs
    assert type(control) is type(model)
    same = {k: v for k, v in model.config.to_dict().items() if k != "architectures"}
    assert {k: control.config.to_dict()[k] for k in same} == same  # (saving set architectures)
    assert control_data is data and control_args.seed == args.seed
    fields = [f.name for f in dataclasses.fields(args) if f.init]
    differ = {k for k in fields if getattr(args, k) != getattr(control_args, k)}
    assert differ <= {"output_dir", "save_strategy", "push_to_hub"}
    # pairs are encoded as pairs: <s> A </s></s> B </s>
    tok = AutoTokenizer.from_pretrained(pretrained)
    assert (torch.tensor(data["validation"][0]["input_ids"]) == tok.sep_token_id).sum() == 3
    # learning rate 0: the pretrained run keeps the checkpoint's encoder, the control does not
    base = load_file(pretrained / "model.safetensors")
    name = "roberta.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(model.state_dict()[name], base[name])
    assert not torch.allclose(control.state_dict()[name], base[name])
    assert results["majority_label"] == "1"
    assert results["majority_baseline_accuracy"] == pytest.approx(16 / 24)
    assert results["majority_baseline_f1"] == pytest.approx(0.8)  # precision 2/3, recall 1
    classify = pipeline("text-classification", model=str(tmp_path / "pairs"))
    pred = classify({"text": "Fair is foul, and foul is fair:", "text_pair": "Hover through"})
    assert pred["label"] in {"0", "1"}


# ------------------------------------------------------------------------ a Hub dataset's layout
def glue_like(root: Path) -> Path:
    """A local dataset repo laid out like nyu-mll/glue: parquet per config, README configs."""
    sentiment = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"]), "idx": Value("int32")})  # fmt: skip
    paraphrase = Features({"sentence1": Value("string"), "sentence2": Value("string"), "label": ClassLabel(names=["not_equivalent", "equivalent"]), "idx": Value("int32")})  # fmt: skip
    good, bad = ["a fine and noble play", "sweet and gentle"], ["a foul and bloody deed", "vile"]
    for name in ("sst2", "mrpc"):
        (root / name).mkdir(parents=True)
    for split, n in [("train", 24), ("validation", 8)]:
        rows = [{"sentence": f"{(good if i % 2 else bad)[i % 4 // 2]} {i}", "label": i % 2, "idx": i} for i in range(n)]  # fmt: skip
        Dataset.from_list(rows, features=sentiment).to_parquet(root / "sst2" / f"{split}-00000-of-00001.parquet")  # fmt: skip
        rows = [{"sentence1": f"the king is dead {i}", "sentence2": f"the king is dead {i}" if i % 2 else f"long live {i}", "label": i % 2, "idx": i} for i in range(n)]  # fmt: skip
        Dataset.from_list(rows, features=paraphrase).to_parquet(root / "mrpc" / f"{split}-00000-of-00001.parquet")  # fmt: skip
    configs = [
        {
            "config_name": name,
            "data_files": [{"split": s, "path": f"{name}/{s}-*"} for s in ("train", "validation")],
        }  # fmt: skip
        for name in ("sst2", "mrpc")
    ]
    (root / "README.md").write_text("---\n" + yaml.safe_dump({"configs": configs}) + "---\n")
    return root


def random_checkpoint(family: str, tokenizer_dir: Path, out: Path) -> Path:
    """A pretraining recipe's output as the family's record builds it, from random weights."""
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = build_model(family, build_config(family, tok, 64, tiny_shape()), False)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


GLUE_COLUMNS = {
    "sst2": ["--text_column", "sentence"],
    "mrpc": ["--text_column", "sentence1", "--text_pair_column", "sentence2"],
}


@pytest.mark.parametrize("task", list(GLUE_COLUMNS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_hub_dataset_glue_schema_with_every_family(task, family, tmp_path, bpe_tokenizer_dir):
    """Each family's checkpoint fine-tunes on single texts and on pairs."""
    columns = GLUE_COLUMNS[task]
    glue = glue_like(tmp_path / "glue")
    model = random_checkpoint(family, bpe_tokenizer_dir, tmp_path / family)
    out = tmp_path / "out"
    results = ft.main(
        FAST + columns
        + ["--model_name_or_path", str(model), "--output_dir", str(out)]
        + ["--dataset_name", str(glue), "--dataset_config_name", task, "--test_split", "validation"]
    )  # fmt: skip
    # GLUE's validation split is the test set (its test labels are hidden); validation is a
    # seeded 10% of train: 24 -> 2 held out, 22 trained on
    assert results["test_examples"] == 8 and results["train_examples"] == 22
    assert "test_f1" in results and 0 <= results["test_accuracy"] <= 1
    config = json.loads((out / "config.json").read_text())
    names = ["negative", "positive"] if task == "sst2" else ["not_equivalent", "equivalent"]
    assert config["id2label"] == {"0": names[0], "1": names[1]}
    classifier = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[FAMILIES[family].config_class]
    assert config["architectures"] == [classifier.__name__]
    classify = pipeline("text-classification", model=str(out))
    assert classify("the king is dead")[0]["label"] in names


# ------------------------------------------------------------------------ bad input
@pytest.fixture
def bad(tmp_path, labelled, bpe_tokenizer_dir):
    single, _ = labelled

    checkpoint = random_checkpoint("bert", bpe_tokenizer_dir, tmp_path / "bert")  # checked first

    def run(*extra, train=None, model=checkpoint):
        argv = FAST + ["--model_name_or_path", str(model), "--output_dir", str(tmp_path / "o")]
        argv += ["--train_files", str(train or single["train"])]
        argv += ["--test_files", str(single["test"])] if train is None else []
        with pytest.raises(UserError) as err:
            ft.main.__wrapped__(argv + ["--text_column", "line", "--label_column", "kind", *extra])
        return str(err.value)

    return run


def test_missing_column_names_the_field_the_file_and_the_columns(bad):
    message = bad("--text_column", "sentence")
    assert "`text_column: sentence` is not a column" in message
    assert "train.jsonl" in message and "['line', 'kind']" in message


def test_a_label_column_with_one_class(bad, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("line,kind\nfirst line here,play\nsecond line here,play\nthird,play\n")
    message = bad(train=one)
    assert "`label_column: kind` has a single class ('play')" in message


def test_files_that_match_nothing_and_plain_text(bad, tmp_path, corpus_files):
    assert "nothing/*.csv matches no file" in bad(train=tmp_path / "nothing/*.csv")
    assert "plain text, which has no label column" in bad(train=corpus_files[0])


def test_a_model_folder_that_does_not_exist(bad, tmp_path):
    assert "is not a folder" in bad(model=tmp_path / "no-such-model")


def test_overwrite_output_dir_forgets_the_runs_a_killed_command_finished(bad, labelled, tmp_path):
    finished = tmp_path / "o" / comparison.RUNS_FOLDER / "pretrained-1-0.5-7"  # no real run's
    finished.mkdir(parents=True)
    (finished / RESULT_FILE).write_text("{}")
    bad("--text_column", "sentence", "--overwrite_output_dir", "true")  # stops after the start
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [comparison.RUNS_FOLDER]
    assert finished.is_dir()  # a refused run leaves output_dir as it was
    single, _ = labelled
    ft.main.__wrapped__(
        FAST + ["--model_name_or_path", str(tmp_path / "bert"), "--output_dir", str(tmp_path / "o")]
        + ["--train_files", str(single["train"]), "--test_files", str(single["test"])]
        + ["--text_column", "line", "--label_column", "kind", "--overwrite_output_dir", "true"]
    )  # fmt: skip
    assert not finished.exists()  # a run that went ahead forgot it


def test_a_hub_split_that_does_not_exist(tmp_path, bpe_tokenizer_dir):
    glue = glue_like(tmp_path / "glue")
    model = random_checkpoint("bert", bpe_tokenizer_dir, tmp_path / "bert")
    with pytest.raises(UserError, match="has no split `validation_split: validation_matched`"):
        ft.main.__wrapped__(
            FAST + ["--model_name_or_path", str(model), "--output_dir", str(tmp_path)]
            + ["--dataset_name", str(glue), "--dataset_config_name", "sst2"]
            + ["--validation_split", "validation_matched", "--text_column", "sentence"]
        )  # fmt: skip


# ------------------------------------------------------------------------ configs
@pytest.mark.parametrize(
    "path", sorted((REPO / "recipes/configs/finetune").glob("*.yaml")), ids=str
)
def test_every_finetune_config_parses(path):
    assert path.read_text().startswith("#"), "configs open with a comment"
    data, model, grid, training = ft.parse_args(
        ["--config", str(path), "--model_name_or_path", "m"]
    )
    assert data.label_column and training.learning_rate > 0 and grid.seeds >= 1


# ------------------------------------------------------------------------ the Folio genre task
def test_folio_table_is_the_first_folio():
    kinds = list(folio.FOLIO_KIND.values())
    assert (kinds.count("comedy"), kinds.count("history"), kinds.count("tragedy")) == (14, 10, 12)
    assert not set(folio.FOLIO_KIND) & set(folio.NOT_IN_FOLIO)
    assert "pericles" in folio.NOT_IN_FOLIO and "sonnets" in folio.NOT_IN_FOLIO


def fake_play(title: str, n: int) -> str:
    front = f"{title}\n\nby William Shakespeare\n\n\n\nPERSONS REPRESENTED.\n\nA KING.\n\n"
    speeches = [f"SPEAKER.\n{title.split()[-1].lower()} speech {i} " + "word " * 20 for i in range(n)]  # fmt: skip
    act = f"ACT I. ({title.lower()})"  # every paragraph unique, so sets can tell them apart
    return front + act + "\n\n" + "\n\n".join(speeches) + "\n\nTHE END\n"


def test_folio_test_passages_are_exactly_what_pretraining_held_out(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    plays = {
        "alls_well_that_ends_well": "ALL'S WELL THAT ENDS WELL",
        "antony_and_cleopatra": "THE TRAGEDY OF ANTONY",
        "hamlet": "THE TRAGEDY OF HAMLET",
        "henry_v": "THE LIFE OF KING HENRY",
        "richard_ii": "THE TRAGEDY OF KING RICHARD THE SECOND",
        "twelfth_night": "TWELFTH NIGHT",
        "sonnets": "THE SONNETS",
    }
    for name, title in plays.items():
        (corpus / f"{name}_gut.txt").write_text(fake_play(title, 40))
    held_out = ["alls_well_that_ends_well", "henry_v", "hamlet"]
    config = tmp_path / "pretrain.yaml"  # as the demo configs name them
    config.write_text(
        "validation_files:\n" + "".join(f"  - {corpus}/{w}_gut.txt\n" for w in held_out)
    )
    counts = folio.build_genre_task(corpus, tmp_path / "task", folio.held_out_works(config), 40)
    # pretraining's own split of the same files: recipes/data/text.py, as `make demo` runs it
    args = types.SimpleNamespace(
        train_files=[str(corpus / "*.txt")], dataset_name=None, text_sample_by="paragraph",
        validation_files=[f"{corpus}/{w}_gut.txt" for w in held_out], on_decode_error="error",
        text_column="text", streaming=False, validation_split_percentage=5,
    )  # fmt: skip
    raw = load_raw_datasets(args)
    held_out_text = {p.strip("\n") for p in raw["validation"]["text"]}
    seen = {p.strip("\n") for p in raw["train"]["text"]}
    rows = {s: [json.loads(ln) for ln in open(tmp_path / "task" / f"{s}.jsonl")] for s in ("train", "test")}  # fmt: skip
    test_paragraphs = {p for row in rows["test"] for p in row["text"].split("\n\n")}
    assert test_paragraphs and test_paragraphs <= held_out_text and not test_paragraphs & seen
    assert counts["test_plays"] == sorted(held_out)
    assert {row["play"] for row in rows["test"]} == set(held_out)
    assert {row["play"] for row in rows["train"]} == {
        "antony_and_cleopatra",
        "richard_ii",
        "twelfth_night",
    }
    assert {row["label"] for row in rows["test"]} == {"comedy", "history", "tragedy"}
    everything = "".join(row["text"] for split in rows.values() for row in split)
    assert "TRAGEDY" not in everything and "THE END" not in everything  # titles give it away
    assert "sonnets" not in everything  # not in the Folio


def test_the_demo_holds_out_two_folio_plays_of_each_kind_in_both_demo_configs():
    works = folio.held_out_works(folio.DEMO_CONFIG)
    assert works == folio.held_out_works(REPO / "recipes/configs/roberta-tiny.yaml")
    assert (
        sorted(folio.FOLIO_KIND[w] for w in works)
        == ["comedy"] * 2 + ["history"] * 2 + ["tragedy"] * 2
    )


def test_a_pretraining_config_without_held_out_works_is_refused(tmp_path):
    config = tmp_path / "pretrain.yaml"
    config.write_text("train_files: [a.txt]\n")
    with pytest.raises(UserError, match="has no `validation_files`"):
        folio.held_out_works(config)


def test_folio_refuses_a_work_it_does_not_know(tmp_path):
    (tmp_path / "edward_iii_gut.txt").write_text(fake_play("KING EDWARD III", 3))
    with pytest.raises(UserError, match="edward_iii_gut.txt"):
        folio.build_genre_task(tmp_path, tmp_path / "task", ["edward_iii"])


def test_classifier_pooling_is_mean_for_modernbert_and_refused_where_there_is_none():
    from transformers import BertConfig, ModernBertConfig, RobertaConfig

    from recipes.finetune.training import set_classifier_pooling

    for requested, expected in [("auto", "mean"), ("cls", "cls"), ("mean", "mean")]:
        config = ModernBertConfig()
        set_classifier_pooling(config, requested)
        assert config.classifier_pooling == expected
    for config in (RobertaConfig(), BertConfig()):
        set_classifier_pooling(config, "auto")  # the first-token head, as it is
        with pytest.raises(UserError, match="Leave `classifier_pooling` at auto"):
            set_classifier_pooling(config, "mean")


# ------------------------------------------------------------------------ pretrained vs control
@pytest.fixture(scope="module")
def pretrained_modernbert(tmp_path_factory, bpe_tokenizer_dir, corpus_files):
    """A tiny ModernBERT, pretrained for a few steps by the real recipe."""
    from recipes import pretrain_mlm

    out = tmp_path_factory.mktemp("ft") / "modernbert"
    pretrain_mlm.main(
        ["--config", "recipes/configs/modernbert-tiny.yaml"]
        + tiny(max_steps=6, eval_steps=6, save_steps=6, bf16=False)
        + ["--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir)]
        + ["--output_dir", str(out)]
    )
    return out


def spy_on_runs(monkeypatch) -> list[dict]:
    """Record each fine-tuning run as the recipe starts it: its arguments, its training data,
    the name of its token embeddings and a copy of its weights before the first step and after
    the last ("after")."""
    runs, original = [], fine_tune

    def copy(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def spy(model, args, datasets, *rest, **kwargs):
        tokens = model.get_input_embeddings().weight
        run = {
            "args": args, "train": datasets["train"], "prefix": model.base_model_prefix,
            "weights": copy(model),
            "embeddings": next(k for k, p in model.named_parameters() if p is tokens),
        }  # fmt: skip
        runs.append(run)
        trainer, metrics = original(model, args, datasets, *rest, **kwargs)
        run["after"] = copy(trainer.model)
        return trainer, metrics

    monkeypatch.setattr(comparison, "fine_tune", spy)  # where the grid calls it
    return runs


@pytest.mark.parametrize("checkpoint", ["pretrained", "pretrained_modernbert"])
def test_the_pretrained_encoder_reaches_the_classifier_and_the_control_shares_none(
    checkpoint, request, labelled, tmp_path, monkeypatch
):
    path = request.getfixturevalue(checkpoint)
    runs = spy_on_runs(monkeypatch)
    single, _ = labelled
    finetune(path, single, tmp_path / "ft", "--text_column", "line", "--label_column", "kind",
             "--from_scratch_control", "true")  # fmt: skip
    (pre, control) = runs
    assert "random-init" in control["args"].output_dir
    base = load_file(path / "model.safetensors")
    prefix = pre["prefix"] + "."
    encoder = {k for k in pre["weights"] if k.startswith(prefix)}
    # every encoder tensor of the checkpoint, and nothing else, is what the classifier starts from
    assert encoder == {k for k in base if k.startswith(prefix)} and len(encoder) > 10
    assert [k for k in encoder if not torch.equal(pre["weights"][k], base[k])] == []
    assert [k for k in encoder if torch.equal(control["weights"][k], base[k])] == []
    # freeze_embeddings (the default): the pretrained token embeddings leave fine-tuning as they
    # came, while the rest of the encoder learns; the control trains its own embeddings
    embeddings = pre["embeddings"]
    assert embeddings in encoder
    assert torch.equal(pre["after"][embeddings], base[embeddings])
    moved = [k for k in encoder if not torch.equal(pre["after"][k], base[k])]
    assert len(moved) > len(encoder) // 2, moved
    assert not torch.equal(control["after"][embeddings], control["weights"][embeddings])


def test_seeds_label_counts_and_a_sweep_choose_on_validation_and_report_test(
    pretrained, labelled, tmp_path, monkeypatch
):
    single, _ = labelled
    runs = spy_on_runs(monkeypatch)
    out = tmp_path / "curve"
    results = finetune(
        pretrained, single, out, "--text_column", "line", "--label_column", "kind",
        "--from_scratch_control", "true", "--label_counts", "8", "40", "--seeds", "2",
        "--sweep_learning_rates", "0", "3e-3", "--eval_strategy", "steps",
        "--evaluations_per_run", "2", "--classifier_learning_rate", "1e-2",
        "--freeze_embeddings", "false",
    )  # fmt: skip
    assert len(runs) == len(results["runs"]) == 2 * 2 * 2 * 2  # counts x seeds x sides x rates
    # freeze_embeddings false: the pretrained token embeddings learn too (at rate 3e-3, not 0)
    for r in runs:
        moved = not torch.equal(r["after"][r["embeddings"]], r["weights"][r["embeddings"]])
        assert moved == (r["args"].learning_rate > 0), (r["args"].output_dir, moved)
    # every run keeps its best validation checkpoint; validation is never the test file
    assert all(r["args"].load_best_model_at_end for r in runs)
    assert {r["args"].metric_for_best_model for r in runs} == {"accuracy"}
    # the same examples for both sides and both rates at one seed; another draw per seed
    draws = {}
    for r in runs:
        seed, n = r["args"].seed, len(r["train"])
        draws.setdefault((n, seed), set()).add(tuple(map(tuple, r["train"]["input_ids"])))
    assert sorted(draws) == [(8, 42), (8, 43), (40, 42), (40, 43)]
    assert all(len(d) == 1 for d in draws.values())
    assert draws[(8, 42)] != draws[(8, 43)]
    rows = results["learning_curve"]
    assert [row["labels"] for row in rows] == [8, 40]
    for row in rows:
        for side in ("pretrained", "random init"):
            mine = [
                r for r in results["runs"] if r["labels"] == row["labels"] and r["side"] == side
            ]
            by_rate = {lr: [r for r in mine if r["learning_rate"] == lr] for lr in (0.0, 3e-3)}
            best = max(by_rate, key=lambda lr: np.mean([r["validation_accuracy"] for r in by_rate[lr]]))  # fmt: skip
            kept = row[side]
            assert kept["learning_rate"] == best  # chosen on validation, not on test
            assert kept["accuracy"] == [r["test_accuracy"] for r in by_rate[best]]
            assert kept["std"] == pytest.approx(np.std(kept["accuracy"], ddof=1))
        p, c = row["pretrained"], row["random init"]
        assert row["difference"] == pytest.approx(p["mean"] - c["mean"])
        assert row["difference_se"] == pytest.approx(np.sqrt((p["std"] ** 2 + c["std"] ** 2) / 2))
    assert results["test_accuracy"] == rows[-1]["pretrained"]["mean"]
    assert (out / "learning_curve.png").stat().st_size > 10_000
    assert not (out / "_runs").exists()
    card = (out / "README.md").read_text()
    assert "| labels | pretrained (mean ± sd over 2 seeds) |" in card
    assert "| token_embeddings | trained |" in card
    assert "![Learning curve](learning_curve.png)" in card
    [prediction] = pipeline("text-classification", model=str(out))("When shall we three meet?")
    assert prediction["label"] in {"play", "sonnet"}


def test_the_head_learns_at_its_own_rate_and_the_encoder_at_learning_rate(
    pretrained, labelled, tmp_path
):
    single, _ = labelled
    data, model_args, _, training = ft.parse_args(
        FAST + ["--model_name_or_path", str(pretrained), "--output_dir", str(tmp_path)]
        + ["--train_files", str(single["train"]), "--learning_rate", "1e-4"]
    )  # fmt: skip
    tokenizer, config = load_pretrained_parts(str(pretrained), ["a", "b"], 32, "sdpa")
    model = pretrained_model(str(pretrained), config)
    trainer = Trainer(model=model, args=training)
    optimizer = optimizer_with_head_lr(trainer, 3e-3)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        assert rate[id(param)] == (1e-4 if name.startswith("roberta.") else 3e-3), name
        assert decay[id(param)] == (0.0 if "bias" in name or "LayerNorm" in name else 0.1), name
    assert len(rate) == len(list(model.parameters()))
    # a frozen tensor (freeze_embeddings) is left out of the optimizer altogether
    frozen = model.get_input_embeddings().weight.requires_grad_(False)
    kept = [p for g in optimizer_with_head_lr(trainer, 3e-3).param_groups for p in g["params"]]
    assert all(p is not frozen for p in kept) and len(kept) == len(rate) - 1


# ------------------------------------------------------------------------ a killed grid resumes
# Two seeds, pretrained and control: 4 runs, each evaluated (and checkpointed) every 2 steps.
GRID = [
    "--text_column", "line", "--label_column", "kind", "--from_scratch_control", "true",
    "--seeds", "2", "--eval_strategy", "steps", "--evaluations_per_run", "3",
]  # fmt: skip
# One thread: every command of a comparison the same, and no OpenMP threads waiting for each other
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TIMINGS = re.compile(r"runtime|per_second")
TRAINED = re.compile(r"^(pretrained|random init): [\d,]+ labels, lr ", re.M)


def grid_command(model, data: dict, out: Path) -> list[str]:
    return [
        *FAST, *GRID, "--model_name_or_path", str(model), "--output_dir", str(out),
        "--train_files", str(data["train"]), "--test_files", str(data["test"]),
    ]  # fmt: skip


def finished_runs(out: Path) -> list[str]:
    return sorted(p.parent.name for p in (out / comparison.RUNS_FOLDER).glob(f"*/{RESULT_FILE}"))


def runs_in_progress(out: Path) -> list[str]:
    """Run folders with a checkpoint and no result yet: killed now, a run dies mid-training."""
    folders = (out / comparison.RUNS_FOLDER).glob("*")
    return [p.name for p in folders if list(p.glob("checkpoint-*")) and not (p / RESULT_FILE).exists()]  # fmt: skip


def kill_when(argv: list[str], ready, log: Path, timeout: float = 300) -> None:
    """Start the recipe in a process of its own, SIGKILL it once `ready()` holds."""
    env = dict(os.environ, PYTHONPATH=str(REPO), **ONE_THREAD)
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recipes.finetune_classification", *argv],
            cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"ended before it was killed:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready after {timeout}s"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def same_as_unbroken(out: Path, whole: Path) -> None:
    """The same table and runs (timings aside), the same saved model and loss curves."""
    results, expected = (json.loads((p / "all_results.json").read_text()) for p in (out, whole))
    assert results["learning_curve"] == expected["learning_curve"]

    def untimed(entries):
        return [{k: v for k, v in e.items() if not TIMINGS.search(k)} for e in entries]

    assert untimed(results["runs"]) == untimed(expected["runs"])
    untimed_results = {k: v for k, v in results.items() if k != "runs" and not TIMINGS.search(k)}
    assert untimed_results == {k: v for k, v in expected.items() if k != "runs" and not TIMINGS.search(k)}  # fmt: skip
    assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    states = [json.loads((p / "trainer_state.json").read_text()) for p in (out, whole)]
    assert untimed(states[0]["log_history"]) == untimed(states[1]["log_history"])
    assert not (out / comparison.RUNS_FOLDER).exists()


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, pretrained, labelled):
    """The grid run once, never interrupted, as a real process: the reference."""
    out = tmp_path_factory.mktemp("unbroken") / "grid"
    run = run_module(
        "recipes.finetune_classification", *grid_command(pretrained, labelled[0], out),
        env=ONE_THREAD,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(TRAINED.findall(run.stdout)) == 4 and "skipping" not in run.stdout
    return out


def test_a_grid_killed_between_runs_skips_the_finished_ones(
    unbroken, pretrained, labelled, tmp_path
):
    out = tmp_path / "grid"
    argv = grid_command(pretrained, labelled[0], out)
    kill_when(argv, lambda: finished_runs(out), tmp_path / "killed.log")
    done = finished_runs(out)
    # the first run is the pretrained one whose model the command saves: it is kept on disk
    assert "pretrained-86-0.0001-42" in done and len(done) < 4
    assert not (out / "all_results.json").exists()
    rerun = run_module("recipes.finetune_classification", *argv, env=ONE_THREAD)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"skipping {len(done)} finished run" in rerun.stdout
    assert len(TRAINED.findall(rerun.stdout)) == 4 - len(done)
    same_as_unbroken(out, unbroken)


def test_a_grid_killed_inside_a_run_trains_that_run_again(unbroken, pretrained, labelled, tmp_path):
    out = tmp_path / "grid"
    argv = grid_command(pretrained, labelled[0], out)
    kill_when(argv, lambda: finished_runs(out) and runs_in_progress(out), tmp_path / "killed.log")
    done, cut_short = finished_runs(out), runs_in_progress(out)
    assert done and cut_short and len(done) + len(cut_short) < 4
    rerun = run_module("recipes.finetune_classification", *argv, env=ONE_THREAD)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"skipping {len(done)} finished run" in rerun.stdout
    assert len(TRAINED.findall(rerun.stdout)) == 4 - len(done)  # the cut-short one from scratch
    same_as_unbroken(out, unbroken)
