"""Which models `python -m recipes.evaluate` evaluates, in which order, and two models of two
tokenizers side by side, one of them a BERT recipe's BertForPreTraining checkpoint (no training:
tiny models saved with random weights)."""

import json
from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_model
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    RobertaConfig,
    RobertaForMaskedLM,
)

from recipes.errors import UserError
from recipes.evaluate import main
from recipes.scoring import targets
from recipes.scoring.targets import load_target, resolve_targets


def _checkpoint(folder, step):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "trainer_state.json").write_text(
        json.dumps({"global_step": step, "num_input_tokens_seen": step * 100})
    )


def test_checkpoints_in_step_order_then_the_final_model_once(tmp_path):
    run = tmp_path / "run"
    for step in (10, 9, 100):  # 10 after 9, though "checkpoint-10" < "checkpoint-9" as text
        _checkpoint(run / f"checkpoint-{step}", step)
    (run / "model.safetensors").write_bytes(b"")
    (run / "trainer_state.json").write_text(json.dumps({"global_step": 120}))
    found = resolve_targets([str(run)], all_checkpoints=True)
    assert [t.step for t in found] == [9, 10, 100, 120]
    assert [t.tokens_seen for t in found] == [900, 1000, 10000, None]
    assert found[-1].name == str(run)
    # the final step saved as a checkpoint too: the same weights, shown once, as the run
    (run / "trainer_state.json").write_text(json.dumps({"global_step": 100}))
    found = resolve_targets([str(run)], all_checkpoints=True)
    assert [(t.name, t.step) for t in found][-2:] == [(str(run / "checkpoint-10"), 10),
                                                      (str(run), 100)]  # fmt: skip
    # one folder alone, a checkpoint's step from its name
    (only,) = resolve_targets([str(run / "checkpoint-9")], all_checkpoints=False)
    assert only.step == 9 and only.tokens_seen == 900


def test_hub_step_branches_in_step_order_then_main(monkeypatch):
    branches = [SimpleNamespace(name=n) for n in ("main", "step200", "step1000", "step30", "dev")]
    monkeypatch.setattr(
        "huggingface_hub.HfApi.list_repo_refs",
        lambda self, repo: SimpleNamespace(branches=branches),
    )
    found = resolve_targets(["alice/tiny"], all_checkpoints=True)
    assert [t.name for t in found] == [
        "alice/tiny@step30", "alice/tiny@step200", "alice/tiny@step1000", "alice/tiny"
    ]  # fmt: skip
    assert [t.step for t in found] == [30, 200, 1000, None]
    (pinned,) = resolve_targets(["alice/tiny@step200"], all_checkpoints=False)
    assert (pinned.source, pinned.revision, pinned.step) == ("alice/tiny", "step200", 200)


def test_a_folder_without_a_model(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="has no safetensors weights"):
        targets.fetch(targets.Target("x", str(tmp_path)))
    with pytest.raises(UserError, match="has no config.json"):
        targets.fetch(targets.Target("y", str(tmp_path / "..")))


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, bpe_tokenizer_dir, train_wordpiece_tokenizer):
    root = tmp_path_factory.mktemp("two")
    bpe = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    roberta = tiny_model(RobertaForMaskedLM, RobertaConfig, vocab_size=len(bpe), positions=66,
                         pad_token_id=bpe.pad_token_id)  # fmt: skip
    roberta.save_pretrained(root / "roberta")
    bpe.save_pretrained(root / "roberta")
    wordpiece = AutoTokenizer.from_pretrained(train_wordpiece_tokenizer(600))
    bert = tiny_model(BertForPreTraining, BertConfig, vocab_size=len(wordpiece), positions=64,
                      pad_token_id=wordpiece.pad_token_id)  # fmt: skip
    bert.save_pretrained(root / "bert")  # what the BERT recipe saves: BertForPreTraining
    wordpiece.save_pretrained(root / "bert")
    pairs = root / "pairs.jsonl"
    pairs.write_text(
        '{"sentence_good": "The king is dead.", "sentence_bad": "The king are dead."}\n'
        '{"sentence_good": "My lord has gone.", "sentence_bad": "My lord have gone."}\n'
    )
    return root, pairs


def test_a_bert_pretraining_checkpoint_loads_as_a_masked_lm_with_its_head(two_models):
    root, _ = two_models
    model, _ = load_target(targets.Target("bert", str(root / "bert")))
    assert type(model).__name__ == "BertForMaskedLM"
    saved = load_file(root / "bert" / "model.safetensors")
    name = "cls.predictions.transform.dense.weight"
    assert torch.equal(model.state_dict()[name], saved[name])  # trained head, not a fresh one


def test_two_tokenizers_side_by_side(two_models, corpus_files, tmp_path, capsys):
    root, pairs = two_models
    out = tmp_path / "r.json"
    rows = main(["--model", str(root / "roberta"), str(root / "bert"), "--files", *corpus_files,
                 "--minimal_pairs", str(pairs), "--output_file", str(out),
                 "--max_texts", "40", "--pll_texts", "12"])  # fmt: skip
    printed = capsys.readouterr().out
    assert [r["model"] for r in rows] == [str(root / "roberta"), str(root / "bert")]
    assert rows[0]["tokenizer"] != rows[1]["tokenizer"]
    assert f"only between rows of one tokenizer ({rows[0]['tokenizer']}: {root / 'roberta'}; " in (
        printed
    )
    for row in rows:
        assert row["pll_texts"] == 12 and row["pll_per_word"] < row["pll_per_char"] < 0
        assert row["minimal_pairs_accuracy"] in (0.0, 0.5, 1.0) and row["step"] is None
    assert json.loads(out.read_text())["rows"][1]["model"] == str(root / "bert")
    assert not out.with_suffix(".png").exists()  # two models, no checkpoint series
