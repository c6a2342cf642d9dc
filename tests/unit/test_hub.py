"""Hub publishing against a fake Hub on 127.0.0.1: access checks, model card, push, reload."""

import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.hub_server import run_hub_server
from huggingface_hub import ModelCard, constants

from recipes.errors import UserError
from recipes.runs.card import build_model_card, pretraining_sections
from recipes.runs.hub import check_hub_access, move_token_to_env, push_folder

GOOD = "hf_good_token_for_alice"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    # No real token may leak in from the environment or ~/.cache/huggingface.
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token_here"))
    # Building request headers otherwise fetches {constants.ENDPOINT}/api/agent-harnesses, and
    # constants.ENDPOINT (read at import) is the public Hub, not this server.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    with run_hub_server(
        tmp_path,
        tokens={GOOD: "alice", "hf_read_only": "alice", "hf_fine_grained": "alice"},
        orgs={"alice": {"acme": "write", "lookers": "read"}},
        token_roles={"hf_read_only": "read", "hf_fine_grained": "fineGrained"},
    ) as server:
        # recipes.runs.hub reads HF_ENDPOINT per call; huggingface_hub itself read it at import.
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server
    assert not [t for t in threading.enumerate() if t.name == "fake-hub"]
    assert server.unhandled == [], "a client used a route the fake Hub does not implement"


# --------------------------------------------------------------------------- access check
def test_check_hub_access_creates_repo_and_resolves_namespace(hub):
    assert check_hub_access("tiny-roberta", token=GOOD) == "alice/tiny-roberta"
    assert check_hub_access("alice/tiny-roberta", token=GOOD) == "alice/tiny-roberta"  # exists
    assert check_hub_access("acme/tiny-bert", token=GOOD, private=True) == "acme/tiny-bert"
    assert set(hub.repos) == {"alice/tiny-roberta", "acme/tiny-bert"}
    assert hub.repos["acme/tiny-bert"].private


def test_bad_token_fails_fast_and_never_shows_the_token(hub):
    secret = "hf_this_is_a_wrong_secret"
    start = time.monotonic()
    with pytest.raises(UserError, match="hf auth login") as err:
        check_hub_access("tiny", token=secret)
    assert time.monotonic() - start < 5
    assert secret not in str(err.value)
    assert hub.repos == {}


def test_missing_token_says_how_to_log_in(hub):
    with pytest.raises(UserError, match="HF_TOKEN"):
        check_hub_access("tiny")


@pytest.mark.parametrize(
    ("repo_id", "token", "expected"),
    [
        ("bob/tiny", GOOD, r"cannot write to 'bob/tiny'.*alice, acme"),
        ("lookers/tiny", GOOD, r"cannot write to 'lookers/tiny'"),
        ("tiny", "hf_read_only", r"read-only"),
        # Fine-grained tokens skip the whoami check: the server's 403 must still be caught.
        ("bob/tiny", "hf_fine_grained", r"cannot write to 'bob/tiny'"),
    ],
)
def test_unwritable_repo_is_a_user_error(hub, repo_id, token, expected):
    with pytest.raises(UserError, match=expected) as err:
        check_hub_access(repo_id, token=token)
    assert token not in str(err.value)
    assert hub.repos == {}


def test_invalid_repo_id_is_a_user_error(hub):
    with pytest.raises(UserError, match="hub_model_id"):
        check_hub_access("a/b/c", token=GOOD)
    assert hub.requests == []  # rejected before any network call


def test_token_moved_to_env_still_authenticates_and_is_not_pickled(hub, tmp_path, monkeypatch):
    import torch
    from transformers import TrainingArguments

    monkeypatch.setenv("HF_TOKEN", "hf_placeholder_restored_after_the_test")
    args = TrainingArguments(str(tmp_path / "run"), hub_token=GOOD, report_to="none")
    move_token_to_env(args)
    assert args.hub_token is None and os.environ["HF_TOKEN"] == GOOD
    torch.save(args, tmp_path / "training_args.bin")  # what Trainer writes into every checkpoint
    assert GOOD.encode() not in (tmp_path / "training_args.bin").read_bytes()
    assert check_hub_access("tiny") == "alice/tiny"  # HF_TOKEN is read at request time


# --------------------------------------------------------------------------- model card
METRICS = {"eval_loss": 2.5, "perplexity": 12.1825, "eval_accuracy": 0.4123, "eval_runtime": 3.2}


def fill_mask_card(
    model_type: str,
    mask_token: str,
    loss_curve_file: str | None = "loss_curve.png",
    run_config_file: str | None = None,
    **overrides,
) -> ModelCard:
    """A pretraining run's card: its sections (`overrides` replace some) through the builder."""
    sections = dict(
        model_type=model_type,
        language="fa",
        license="apache-2.0",
        datasets=["Salesforce/wikitext"],
        train_data_description="WikiText-103 (raw), 103M words of Wikipedia articles.",
        mask_token=mask_token,
        widget_text=f"Paris is the {mask_token} of France.",
        metrics=METRICS,
    )
    return build_model_card(
        repo_id="alice/tiny",
        **pretraining_sections(**sections | overrides),
        hyperparameters={"learning_rate": 6e-4, "per_device_train_batch_size": 32, "max_steps": 10},
        loss_curve_file=loss_curve_file,
        run_config_file=run_config_file,
    )


@pytest.mark.parametrize(
    ("model_type", "mask_token", "other_mask"),
    [("roberta", "<mask>", "[MASK]"), ("bert", "[MASK]", "<mask>")],
)
def test_model_card_metadata_round_trips(tmp_path, model_type, mask_token, other_mask):
    path = tmp_path / "README.md"
    fill_mask_card(model_type, mask_token).save(path)
    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "fill-mask"
    assert data.language == "fa"
    assert data.license == "apache-2.0"
    assert data.datasets == ["Salesforce/wikitext"]
    assert {"fill-mask", "masked-lm", model_type, "pretrained-from-scratch"} <= set(data.tags)
    [widget] = data.widget
    assert mask_token in widget["text"] and other_mask not in widget["text"]
    results = {r.metric_name: r for r in data.eval_results}
    assert results["MLM loss"].metric_value == pytest.approx(2.5)
    assert results["Perplexity"].metric_value == pytest.approx(12.1825)
    assert results["Masked-token accuracy"].metric_value == pytest.approx(0.4123)
    assert {r.task_type for r in data.eval_results} == {"fill-mask"}
    assert "Next-sentence accuracy" not in results  # no NSP metric given
    body = card.text
    assert 'pipeline("fill-mask", model="alice/tiny")' in body
    assert "![Training and evaluation loss](loss_curve.png)" in body
    assert "| learning_rate | 0.0006 |" in body


def test_model_card_reports_nsp_and_fixes_foreign_mask_token():
    card = fill_mask_card(
        "bert", "[MASK]",
        widget_text="Paris is the <mask> of France.",
        metrics={**METRICS, "eval_nsp_accuracy": 0.9},
        loss_curve_file=None,
    )  # fmt: skip
    assert card.data.widget == [{"text": "Paris is the [MASK] of France."}]
    assert {r.metric_name: r.metric_value for r in card.data.eval_results}[
        "Next-sentence accuracy"
    ] == pytest.approx(0.9)
    assert "next-sentence prediction" in card.text
    assert "## Loss curve" not in card.text  # no plot given, no broken image link
    assert "## Reproduce" not in card.text  # no run_config.yaml given, no broken link


def test_bert_card_names_its_loss_mlm_plus_nsp_and_perplexity_from_the_mlm_part():
    metrics = {**METRICS, "eval_loss": 3.3, "eval_mlm_loss": 2.5, "eval_nsp_accuracy": 0.6}
    card = fill_mask_card("bert", "[MASK]", metrics=metrics)
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results["MLM + NSP loss"] == pytest.approx(3.3)
    assert results["MLM loss"] == pytest.approx(2.5)
    assert math.exp(results["MLM loss"]) == pytest.approx(results["Perplexity"], rel=1e-3)
    assert "| MLM + NSP loss | 3.3 |" in card.text and "| MLM loss | 2.5 |" in card.text
    assert "Perplexity is exp(MLM loss)" in card.text and "next-sentence loss" in card.text
    # RoBERTa: eval_loss is the masked-LM loss, and perplexity is its exp
    roberta = fill_mask_card("roberta", "<mask>")
    results = {r.metric_name: r.metric_value for r in roberta.data.eval_results}
    assert set(results) == {"MLM loss", "Perplexity", "Masked-token accuracy"}
    assert math.exp(results["MLM loss"]) == pytest.approx(results["Perplexity"], rel=1e-3)
    assert "MLM + NSP" not in roberta.text


def test_card_links_run_config_to_reproduce():
    card = fill_mask_card("roberta", "<mask>", run_config_file="run_config.yaml")
    assert "## Reproduce" in card.text
    assert "Reproduce: [run_config.yaml](run_config.yaml)" in card.text


def test_widget_without_mask_token_is_a_user_error():
    with pytest.raises(UserError, match=r"<mask>"):
        fill_mask_card("roberta", "<mask>", widget_text="No mask here.")


# --------------------------------------------------------------------------- push + reload
def save_tiny_roberta(output_dir: Path) -> float:
    """Save a tiny RoBERTa and its byte-level BPE tokenizer; return a logits checksum."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    corpus = ["the cat sat on the mat", "a dog ate the bone", "hello world, the end"] * 10
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(corpus, vocab_size=300, special_tokens=special, show_progress=False)
    bpe_dir = output_dir.parent / "bpe"
    bpe_dir.mkdir()
    vocab, merges = bpe.save_model(str(bpe_dir))
    tokenizer = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=32)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32 + tokenizer.pad_token_id + 1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = RobertaForMaskedLM(config).eval()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    with torch.no_grad():
        inputs = tokenizer("the cat sat on the <mask>", return_tensors="pt")
        return model(**inputs).logits.sum().item()


RELOAD = """
import json, sys, torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline
repo = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(repo)
model = AutoModelForMaskedLM.from_pretrained(repo)
text = f"the cat sat on the {tokenizer.mask_token}"
with torch.no_grad():
    checksum = model(**tokenizer(text, return_tensors="pt")).logits.sum().item()
predictions = pipeline("fill-mask", model=repo)(text)
print(json.dumps({"mask": tokenizer.mask_token, "checksum": checksum, "n": len(predictions)}))
"""


def test_push_uploads_only_publishable_files_and_reloads_with_transformers(
    hub, tmp_path, caplog, capfd
):
    caplog.set_level(logging.DEBUG)  # the token must not show up even in debug logs
    out = tmp_path / "run"
    checksum = save_tiny_roberta(out)
    fill_mask_card("roberta", "<mask>").save(out / "README.md")
    (out / "all_results.json").write_text(json.dumps(METRICS))
    (out / "loss_curve.png").write_bytes(b"\x89PNG\r\n\x1a\n fake png")
    (out / "training_args.bin").write_bytes(b"pickled TrainingArguments")
    (out / "checkpoint-1").mkdir()
    (out / "checkpoint-1" / "optimizer.pt").write_bytes(b"optimizer state")
    (out / "runs").mkdir()
    (out / "runs" / "events.out.tfevents").write_bytes(b"tensorboard")
    (out / "_scratch.txt").write_text("temporary")
    (out / "run_config.yaml").write_text("max_steps: 10  # command line\n")

    repo_id = check_hub_access("tiny", token=GOOD)
    url = push_folder(out, repo_id, token=GOOD)

    assert url.startswith(f"{hub.url}/alice/tiny/commit/")
    files = hub.files("alice/tiny")
    assert set(files) == {
        "README.md", "all_results.json", "loss_curve.png", "config.json", "model.safetensors",
        "tokenizer.json", "tokenizer_config.json", "run_config.yaml",
    }  # fmt: skip
    assert not [name for name, data in files.items() if GOOD.encode() in data]
    assert GOOD not in caplog.text and GOOD not in "".join(capfd.readouterr())
    assert ModelCard(files["README.md"].decode()).data.widget == [
        {"text": "Paris is the <mask> of France."}
    ]

    # Stock transformers, in a fresh process: HF_ENDPOINT is only read at import time.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))
    }
    env |= {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "NO_PROXY": "127.0.0.1",
    }
    workdir = tmp_path / "elsewhere"  # so "alice/tiny" cannot resolve to a local folder
    workdir.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, repo_id], env=env, cwd=workdir,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert reloaded["mask"] == "<mask>"
    assert reloaded["checksum"] == pytest.approx(checksum, rel=1e-5)
    assert reloaded["n"] == 5
    assert any(r.startswith("GET /alice/tiny/resolve/") for r in hub.requests)


def test_push_refuses_a_folder_that_contains_the_token(hub, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "run_config.yaml").write_text(f"hub_token: {GOOD}\n")
    (out / "checkpoint-1").mkdir()
    (out / "checkpoint-1" / "ok.yaml").write_text(f"hub_token: {GOOD}\n")  # never pushed
    repo_id = check_hub_access("tiny", token=GOOD)
    with pytest.raises(UserError, match="run_config.yaml") as err:
        push_folder(out, repo_id, token=GOOD)
    assert GOOD not in str(err.value)
    assert hub.files(repo_id) == {}


@pytest.mark.parametrize(
    ("start", "hub_id"),
    [("FacebookAI/roberta-base", "FacebookAI/roberta-base"), ("outputs/never-pushed", None)],
)
def test_a_continued_model_card_names_its_base_model(start, hub_id):
    card = fill_mask_card("roberta", "<mask>", base_model=start, base_model_hub_id=hub_id)
    assert card.data.base_model == hub_id  # Hub convention: a repo id, or nothing
    assert "continued-pretraining" in card.data.tags
    assert "pretrained-from-scratch" not in card.data.tags
    assert f"continued from [{start}]" in card.text or f"continued from `{start}`" in card.text
    assert "from scratch" not in card.text
    scratch = fill_mask_card("roberta", "<mask>")
    assert scratch.data.base_model is None and "pretrained from scratch" in scratch.text


def test_a_local_checkpoint_that_was_pushed_is_cited_by_its_repo_id(tmp_path):
    from recipes.runs.finish import published_id

    (tmp_path / "run_config.yaml").write_text("push_to_hub: true\nhub_model_id: alice/tiny\n")
    assert published_id(str(tmp_path)) == "alice/tiny"
    (tmp_path / "run_config.yaml").write_text("hub_model_id: alice/tiny\n")  # never pushed
    assert published_id(str(tmp_path)) is None
    assert published_id("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"


def test_the_builder_names_unset_metadata_only_where_the_recipe_has_the_field():
    card = fill_mask_card("roberta", "<mask>", language=None)
    assert card.data.language is None
    assert "**language: not set** (set `language` in the config: ISO code(s)" in card.text
    assert "license: not set" not in card.text
    classifier = build_model_card(
        repo_id="alice/clf", metadata={"pipeline_tag": "text-classification"},
        summary="A classifier.", sections=[], hyperparameters={}, usage_input='"..."',
    )  # fmt: skip
    assert "not set" not in classifier.text  # fine-tuning has no language or license to set
    assert 'text_classification = pipeline("text-classification", model="alice/clf")' in (
        classifier.text
    )
