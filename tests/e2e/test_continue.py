"""Continued pretraining: from a checkpoint a test trains and saves here (and, by its Hub id, from
the fake Hub on 127.0.0.1), with the before/after numbers; vocabulary extension; shape keys.
Nothing touches the real Hub."""

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout

import pytest
import torch
from helpers import REPO, tiny, tiny_shape
from helpers.hub_server import run_hub_server
from huggingface_hub import HfApi
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

from recipes import pretrain_bert, pretrain_mlm
from recipes.errors import UserError
from recipes.models.checkpoints import (
    load_pretrained,
    load_pretrained_parts,
    local_checkpoint,
    weights_checksum,
)
from recipes.models.families import MLM_FAMILIES, build_config, build_model
from recipes.models.vocabulary import extend_vocabulary

# the shape comes from the checkpoint; masking as set here, not the family default (a fresh
# model's), so the base run and the continued one mask the held-out blocks alike
RUN = tiny(shape=False, max_steps=None, mlm_probability=0.15)
TINY_SHAPE = tiny_shape()
WORDS = ["multitudinous", "incarnadine", "the", "Unprofitable", "two words", "---"]
GOOD = "hf_continue_test_token_for_alice_0123"


def run_quietly(main, argv):
    log = io.StringIO()
    with redirect_stdout(log):
        metrics = main(argv)
    return metrics, log.getvalue()


@pytest.fixture(scope="module")
def base(tmp_path_factory, bpe_tokenizer_dir, corpus_files):
    """A tiny RoBERTa trained from scratch and saved: the checkpoint the other tests continue."""
    out = tmp_path_factory.mktemp("continue") / "base"
    metrics, _ = run_quietly(
        pretrain_mlm.main,
        ["--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir)]
        + ["--output_dir", str(out), "--max_steps", "8", "--learning_rate", "2e-3"]
        + ["--model_type", "roberta"]  # not the default family: the tests below are RoBERTa's
        + tiny(max_steps=None, mlm_probability=0.15),  # the base: a model shape of its own
    )
    return out, metrics


@pytest.fixture(scope="module")
def continued(base, corpus_files):
    """Continue it on the same text: its held-out masks are then the base run's."""
    out = base[0].parent / "continued"
    argv = ["--train_files", *corpus_files, "--model_name_or_path", str(base[0])]
    argv += ["--output_dir", str(out), "--max_steps", "4", "--hidden_dropout_prob", "0.0", *RUN]
    metrics, log = run_quietly(pretrain_mlm.main, argv)
    return out, metrics, log


def test_the_run_starts_from_the_checkpoint_weights(base, continued):
    (start, base_metrics), (_, metrics, log) = base, continued
    saved = AutoModelForMaskedLM.from_pretrained(start)
    assert f"weights checksum {weights_checksum(saved)}" in log.split("starting from")[1]
    # the same model on the same held-out blocks with the same (seed, batch) masks
    assert metrics["eval_before_loss"] == pytest.approx(base_metrics["eval_loss"], rel=1e-4)
    assert metrics["eval_before_accuracy"] == pytest.approx(base_metrics["eval_accuracy"])


def test_before_and_after_are_in_results_card_and_log(continued):
    out, metrics, log = continued
    results = json.loads((out / "all_results.json").read_text())
    for key in ["eval_before_loss", "eval_before_accuracy", "perplexity_before"]:
        assert results[key] == pytest.approx(metrics[key]), key
    assert results["perplexity"] < results["perplexity_before"]  # 4 steps more of the same text
    card = (out / "README.md").read_text()
    assert "eval_before_accuracy" in card and "perplexity_before" in card
    assert "A RoBERTa model" in card  # the family's display name
    # the card says where it started (a local folder that was never pushed: no Hub base_model)
    assert "pretrained from scratch" not in card and "pretrained-from-scratch" not in card
    assert "continued from `" in card and "continued-pretraining" in card
    # checkpoints carry the numbers, so a resumed run (which skips this evaluation) has them
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["log_history"][0]["eval_before_loss"] == metrics["eval_before_loss"]
    line = next(x for x in log.splitlines() if x.startswith("held-out masked-token accuracy"))
    assert f"({metrics['eval_before_accuracy']:.3f} before training)" in line
    assert f"({metrics['perplexity_before']:.1f} before)" in line


def test_the_output_is_a_stock_checkpoint_that_fill_mask_loads(base, continued):
    out, _, _ = continued
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["RobertaForMaskedLM"] and config["hidden_size"] == 32
    assert config["hidden_dropout_prob"] == 0.0  # a dropout key may differ from the checkpoint
    before, after = (AutoModelForMaskedLM.from_pretrained(p) for p in (base[0], out))
    assert weights_checksum(before) != weights_checksum(after)  # it trained
    fill = pipeline("fill-mask", model=str(out), top_k=3)
    assert len(fill("Shall I compare thee to a summer's <mask>?")) == 3


def test_a_shape_key_that_contradicts_the_checkpoint_is_an_error_naming_it(base, corpus_files):
    for overrides in [{"hidden_size": 64}, {"num_hidden_layers": 3}]:
        with pytest.raises(UserError, match=f"`{next(iter(overrides))}: "):
            load_pretrained(str(base[0]), ["roberta"], overrides, 32, True)
    with pytest.raises(UserError, match="max_seq_length: 64"):  # 32 + 2 position rows saved
        load_pretrained(str(base[0]), ["roberta"], {}, 64, True)
    with pytest.raises(UserError, match="`roberta` model"):
        load_pretrained(str(base[0]), ["bert"], {}, 32, True)
    _, model, missing = load_pretrained(
        str(base[0]),
        ["roberta"],
        {"attention_probs_dropout_prob": 0.2, "hidden_size": 32},
        32,
        True,
    )
    assert model.config.attention_probs_dropout_prob == 0.2 and missing == []


def test_pickled_weights_are_refused(tmp_path, base):
    (tmp_path / "config.json").write_text((base[0] / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(UserError, match="no safetensors weights"):
        local_checkpoint(str(tmp_path))
    with pytest.raises(UserError, match="no safetensors weights"):  # fine-tuning's loader too
        load_pretrained_parts(str(tmp_path), ["a", "b"], 32, "sdpa")


def test_a_checkpoint_of_another_family_than_asked_is_refused(base, corpus_files, capsys):
    argv = ["--train_files", *corpus_files, "--model_name_or_path", str(base[0])]
    argv += ["--output_dir", str(base[0].parent / "refused")]
    for main, extra, message in [
        (pretrain_mlm.main, ["--model_type", "modernbert"], "`model_type: modernbert`, but "),
        (pretrain_bert.main, [], "is a `roberta` model; this recipe continues bert checkpoints"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(argv + extra)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_fine_tuning_checks_a_checkpoint_as_continued_pretraining_does(base):
    # the same position count: RoBERTa's start after the pad id, 32 + 1 + 1 rows saved
    message = r"`max_seq_length: 64` needs 66 positions \(RoBERTa .*max_position_embeddings=34"
    with pytest.raises(UserError, match=message):
        load_pretrained_parts(str(base[0]), ["a", "b"], 64, "sdpa")
    with pytest.raises(UserError, match=message):
        load_pretrained(str(base[0]), ["roberta"], {}, 64, True)
    tokenizer, config = load_pretrained_parts(str(base[0]), ["a", "b"], 32, "sdpa")
    assert config.num_labels == 2 and len(tokenizer) == config.vocab_size


def test_a_modernbert_checkpoint_keeps_its_native_sparse_head(tmp_path, bpe_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    saved = build_model("modernbert", build_config("modernbert", tokenizer, 32, TINY_SHAPE), False)
    saved.save_pretrained(tmp_path)
    family, model, _ = load_pretrained(str(tmp_path), MLM_FAMILIES, {}, 32, True)
    assert family == "modernbert" and type(model).__name__ == "ModernBertForMaskedLM"
    assert model.sparse_prediction is True and model.config.sparse_prediction is False
    assert weights_checksum(model) == weights_checksum(saved)


def test_a_new_token_starts_at_the_mean_of_its_old_pieces(base, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(base[0])
    model = AutoModelForMaskedLM.from_pretrained(base[0])
    old = model.get_input_embeddings().weight.detach().clone()
    old_bias = model.get_output_embeddings().bias.detach().clone()  # the head's, tied
    pieces = tokenizer(" incarnadine", add_special_tokens=False)["input_ids"]
    assert len(pieces) >= 3
    (tmp_path / "words.txt").write_text("\n".join(WORDS) + "\n")
    added = extend_vocabulary(tokenizer, model, str(tmp_path / "words.txt"), limit=10)
    # " the" is one token already, "two words" is not a word, "---" has no letter
    assert added == [" multitudinous", " incarnadine", " Unprofitable"]
    new_id = tokenizer.convert_tokens_to_ids(" incarnadine")
    embeddings = model.get_input_embeddings().weight
    assert embeddings.shape[0] == len(tokenizer) == len(old) + 3
    assert torch.allclose(embeddings[new_id], old[pieces].mean(dim=0))
    assert torch.equal(embeddings[: len(old)], old)  # the old rows are untouched
    assert float(model.get_output_embeddings().bias[new_id].detach()) == pytest.approx(
        float(old_bias[pieces].mean())
    )
    assert model.get_output_embeddings().weight[new_id].equal(embeddings[new_id])  # tied
    # saved and reloaded, the tokenizer keeps the words as one token each
    tokenizer.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    ids = reloaded("the seas incarnadine, multitudinous")["input_ids"]
    assert new_id in ids and reloaded.convert_tokens_to_ids(" multitudinous") in ids
    assert reloaded.decode(ids, skip_special_tokens=True) == "the seas incarnadine, multitudinous"


def test_words_come_from_a_domain_tokenizer_most_frequent_first(base, tmp_path):
    from helpers.corpora import docstring_passages

    from tokenizer_training.train_tokenizer import main as train_tokenizer

    text = docstring_passages(tmp_path / "docs.txt", max_bytes=150_000)
    train_tokenizer(
        ["--config", "tokenizer_training/configs/bytelevel-bpe.yaml", "--vocab_size", "1200"]
        + ["--train_files", str(text), "--output_dir", str(tmp_path / "domain")]
    )
    tokenizer = AutoTokenizer.from_pretrained(base[0])
    model = AutoModelForMaskedLM.from_pretrained(base[0])
    added = extend_vocabulary(tokenizer, model, str(tmp_path / "domain"), limit=25)
    assert len(added) == 25 and all(t.startswith(" ") and t[1:].isalnum() for t in added)
    assert " function" in added or " object" in added or " return" in added, added


def test_bert_recipe_continues_a_bert_checkpoint(tmp_path, corpus_files, train_wordpiece_tokenizer):
    shutil.copytree(train_wordpiece_tokenizer(800), tmp_path / "bert")  # the model goes beside it
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "bert")
    config = build_config("bert", tokenizer, 32, TINY_SHAPE)
    build_model("bert", config, False).save_pretrained(tmp_path / "bert")
    argv = ["--train_files", *corpus_files, "--model_name_or_path", str(tmp_path / "bert")]
    argv += ["--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--whole_word_mask", "true"]
    argv += ["--text_sample_by", "paragraph", *RUN]
    metrics, log = run_quietly(pretrain_bert.main, argv)
    assert {"eval_before_accuracy", "eval_before_nsp_accuracy", "perplexity_before"} <= set(metrics)
    assert "before training" in log
    assert json.loads((tmp_path / "out" / "config.json").read_text())["hidden_size"] == 32


# ---- From the Hub, by id: the fake Hub on 127.0.0.1 ----------------------------------------


def test_continue_a_hub_checkpoint_with_added_words_and_whole_word_masking(
    base, tmp_path, corpus_files
):
    with run_hub_server(tmp_path / "hub", tokens={GOOD: "alice"}) as hub:
        api = HfApi(endpoint=hub.url, token=GOOD)
        api.create_repo("alice/base")
        api.upload_folder(repo_id="alice/base", folder_path=str(base[0]))
        (tmp_path / "words.txt").write_text("\n".join(WORDS) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        env |= {
            "PYTHONPATH": str(REPO),
            "HF_ENDPOINT": hub.url,  # read by huggingface_hub at import time
            "HF_HOME": str(tmp_path / "hf_home"),
            "HF_HUB_DISABLE_XET": "1",
            "HF_DATASETS_OFFLINE": "1",
            "NO_PROXY": "127.0.0.1",
        }
        out = tmp_path / "out"
        (tmp_path / "work").mkdir()  # an empty folder: the Hub id is not a local path
        argv = ["--train_files", *corpus_files, "--model_name_or_path", "alice/base"]
        argv += ["--add_tokens_from", str(tmp_path / "words.txt"), "--whole_word_mask", "true"]
        argv += ["--output_dir", str(out), "--max_steps", "2", *RUN]
        result = subprocess.run(
            [sys.executable, "-m", "recipes.pretrain_mlm", *argv],
            cwd=tmp_path / "work", env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        downloads = [r for r in hub.requests if r.startswith("GET /alice/base/resolve/")]
    assert [r for r in downloads if r.endswith("/model.safetensors")]
    assert not [r for r in downloads if r.endswith(".bin")]
    saved = AutoModelForMaskedLM.from_pretrained(base[0])
    assert f"weights checksum {weights_checksum(saved)}" in result.stdout
    assert "3 tokens added" in result.stdout
    results = json.loads((out / "all_results.json").read_text())
    assert {"eval_before_accuracy", "perplexity_before", "eval_accuracy"} <= set(results)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == json.loads((out / "config.json").read_text())["vocab_size"]
    assert tokenizer.convert_tokens_to_ids(" incarnadine") != tokenizer.unk_token_id
    fill = pipeline("fill-mask", model=str(out), top_k=3)
    assert len(fill("The multitudinous seas <mask>.")) == 3
