"""End to end in real processes: train a tokenizer and a tiny RoBERTa, load with stock transformers."""

import json
import shlex

import pytest
import torch
from helpers import run_module, tiny
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

TINY = tiny()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_files):
    root = tmp_path_factory.mktemp("e2e")
    tok = run_module(
        "tokenizer_training.train_tokenizer",
        "--config", "tokenizer_training/configs/bytelevel-bpe.yaml",
        "--train_files", *corpus_files, "--vocab_size", "800", "--output_dir", str(root / "tok"),
    )  # fmt: skip
    assert tok.returncode == 0, tok.stderr
    run = run_module(
        "recipes.pretrain_mlm",
        "--config", "recipes/configs/roberta-tiny.yaml",
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(root / "tok"),
        "--output_dir", str(root / "model"), *TINY,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return root / "model", run


def test_outputs_are_complete(trained):
    out, run = trained
    for name in ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"]:
        assert (out / name).is_file(), name
    results = json.loads((out / "all_results.json").read_text())
    for key in ["eval_loss", "perplexity", "eval_accuracy", "train_runtime", "total_flos"]:
        assert key in results, key
    assert results["train_tokens_per_second"] > 0
    # 8 steps x 8 sequences x 32 tokens, all real (packed: no padding)
    assert results["train_tokens"] == 8 * 8 * 32
    assert (out / "loss_curve.png").stat().st_size > 1000
    card = (out / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in card and "<mask>" in card
    assert f'pipeline("fill-mask", model="{out}")' in card  # not pushed: loads from its folder
    assert "held-out masked-token accuracy" in run.stdout
    assert not list(out.glob("*.bin")) or list(out.glob("*.bin")) == [out / "training_args.bin"]
    # one final evaluation: Trainer's own at the last step, not a second one of the same weights
    state = json.loads((out / "trainer_state.json").read_text())
    final = [e for e in state["log_history"] if "eval_loss" in e and e["step"] == 8]
    assert len(final) == 1 and final[0]["eval_loss"] == results["eval_loss"]


def test_the_last_lines_say_where_the_model_is_and_how_to_try_it(trained):
    out, run = trained
    *_, saved, try_it, fine_tune = run.stdout.strip().splitlines()
    assert saved == f"saved to {out}"
    assert fine_tune.startswith("fine-tune it: ") and fine_tune.endswith(
        f"--model_name_or_path {out}"
    )
    assert try_it.startswith("try it: python -m recipes.fill_mask ")
    command = shlex.split(try_it.removeprefix("try it: "))
    assert command[:2] == ["python", "-m"] and "<mask>" in command[-1]
    tried = run_module(*command[2:])  # as printed, with this interpreter
    assert tried.returncode == 0, tried.stderr[-3000:]
    assert tried.stdout.strip().splitlines()[0] == command[-1]


def test_saved_model_is_stock_roberta_with_derived_config(trained):
    out, _ = trained
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["RobertaForMaskedLM"]
    tok = AutoTokenizer.from_pretrained(out)
    assert config["vocab_size"] == len(tok) == 800
    assert config["pad_token_id"] == tok.pad_token_id == 1
    assert config["bos_token_id"] == tok.bos_token_id and config["eos_token_id"] == tok.eos_token_id
    assert config["max_position_embeddings"] == 32 + 1 + 1
    assert tok.model_max_length == 512 and tok.mask_token == "<mask>"


def test_reload_gives_the_saved_weights_and_fill_mask_works(trained):
    out, _ = trained
    model = AutoModelForMaskedLM.from_pretrained(out)
    saved = load_file(out / "model.safetensors")
    state = model.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor), name
    fill = pipeline("fill-mask", model=str(out), top_k=3)
    preds = fill("Shall I compare thee to a summer's <mask>?")
    assert len(preds) == 3 and all(0 <= p["score"] <= 1 for p in preds)


def test_second_run_into_finished_output_dir_is_refused(trained, corpus_files):
    out, _ = trained
    again = run_module(
        "recipes.pretrain_mlm", "--config", "recipes/configs/roberta-tiny.yaml",
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(out),
        "--output_dir", str(out), *TINY,
    )  # fmt: skip
    assert again.returncode == 2
    assert "already holds a finished model" in again.stderr
    assert "Traceback" not in again.stderr
