"""ModernBERT end to end in a real process: trains, evaluates, saves a stock model that fills masks."""

import json

import pytest
from helpers import run_module, tiny
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

TINY_MODERNBERT = ["--model_type", "modernbert", *tiny()]


@pytest.fixture(scope="module")
def modernbert_run(tmp_path_factory, corpus_files, bpe_tokenizer_dir):
    out = tmp_path_factory.mktemp("modernbert") / "model"
    run = run_module(
        "recipes.pretrain_mlm", "--config", "recipes/configs/modernbert-tiny.yaml",
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir),
        "--output_dir", str(out), *TINY_MODERNBERT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run


def test_modernbert_trains_evaluates_saves_and_fills_masks(modernbert_run, bpe_tokenizer_dir):
    out, run = modernbert_run
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForMaskedLM"]
    assert config["sparse_prediction"] is False
    tok = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    assert config["pad_token_id"] == tok.pad_token_id and config["vocab_size"] == len(tok)
    results = json.loads((out / "all_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1 and results["perplexity"] > 1
    assert results["train_tokens"] == 8 * 8 * 32
    assert "held-out masked-token accuracy" in run.stdout
    card = (out / "README.md").read_text()
    assert "fill-mask" in card and "<mask>" in card
    assert "A ModernBERT model" in card  # the family's display name
    # the run says what it built and, after a few steps, how fast it goes here
    assert "ModernBERT (ModernBertForMaskedLM): 2 layers x 32 hidden, 2 heads" in run.stdout
    speed = run.stdout.split("speed on this machine: ")[1].splitlines()[0]
    assert "tokens/s" in speed and "(steps 2-4); max_steps 8 take " in speed
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert type(model).__name__ == "ModernBertForMaskedLM"
    preds = pipeline("fill-mask", model=str(out), top_k=3)("Shall I compare thee to a <mask>?")
    assert len(preds) == 3 and all(0 <= p["score"] <= 1 for p in preds)
