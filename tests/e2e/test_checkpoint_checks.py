"""What a run starts from, checked: continued pretraining refuses a tokenizer that gives the
checkpoint's tokens other ids (two byte-level BPE tokenizers of one size trained on different
text), and takes the checkpoint's own, wherever it is saved and however extended; fine-tuning
refuses a checkpoint that is a fine-tuned classifier already, or with `discard_task_head` drops
its head, and the card says what the base was."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import tiny, tiny_shape
from helpers.corpora import docstring_passages
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    ModernBertConfig,
    ModernBertForMaskedLM,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
)

from recipes import finetune_classification as ft
from recipes import pretrain_mlm
from recipes.errors import UserError
from recipes.finetune.finish import base_summary
from recipes.models.checkpoints import load_pretrained_parts, pretrained_model, task_head
from recipes.models.families import build_config, build_model
from recipes.models.vocabulary import check_same_vocabulary

VOCAB = 800  # the session's bpe_tokenizer_dir size: the foreign tokenizer matches it


# ------------------------------------------------------------------ continued pretraining
@pytest.fixture(scope="module")
def foreign_tokenizer(tmp_path_factory):
    """A byte-level BPE tokenizer trained by the same config, of the same size, on other text
    (the standard library's docstrings): same specials, same pad id, other ids."""
    from tokenizer_training.train_tokenizer import main as train_tokenizer

    root = tmp_path_factory.mktemp("foreign")
    text = docstring_passages(root / "docstrings.txt", max_bytes=150_000)
    out = root / "tokenizer"
    train_tokenizer(
        ["--config", "tokenizer_training/configs/bytelevel-bpe.yaml", "--output_dir", str(out)]
        + ["--train_files", str(text), "--vocab_size", str(VOCAB)]
    )
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, bpe_tokenizer_dir):
    """A tiny RoBERTa saved with its own tokenizer (untrained: only its vocabulary matters)."""
    out = tmp_path_factory.mktemp("ckpt") / "roberta"
    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    torch.manual_seed(0)
    config = build_config("roberta", tokenizer, 32, dict(tiny_shape()))
    build_model("roberta", config, sparse_mlm_head=False).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def continue_from(checkpoint, tokenizer, out, corpus_files, *extra):
    return pretrain_mlm.main(
        ["--train_files", *corpus_files, "--model_name_or_path", str(checkpoint)]
        + ["--output_dir", str(out)]
        + (["--tokenizer_name_or_path", str(tokenizer)] if tokenizer else [])
        + tiny(shape=False, max_steps=2, eval_steps=2, save_steps=2, mlm_probability=0.15)
        + list(extra)
    )


def test_a_same_size_tokenizer_trained_on_other_text_is_refused(
    checkpoint, foreign_tokenizer, corpus_files, tmp_path, capsys
):
    foreign = AutoTokenizer.from_pretrained(foreign_tokenizer)
    own = AutoTokenizer.from_pretrained(checkpoint)
    # what the old checks looked at agrees: same size, same pad id
    assert len(foreign) == len(own) == VOCAB and foreign.pad_token_id == own.pad_token_id
    with pytest.raises(SystemExit) as exit_:
        continue_from(checkpoint, foreign_tokenizer, tmp_path / "out", corpus_files)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    moved = sum(
        own.convert_ids_to_tokens(i) != foreign.convert_ids_to_tokens(i) for i in range(VOCAB)
    )
    assert moved > VOCAB // 2  # most tokens moved: the model would read other words
    assert (
        f"{moved:,} of {VOCAB:,} tokens have another id than in the checkpoint's tokenizer" in err
    )
    assert "in the checkpoint's" in err and "in yours" in err  # examples
    assert "leave tokenizer_name_or_path unset" in err  # way out 1
    assert f"`add_tokens_from: {foreign_tokenizer}`" in err  # way out 2
    assert "Traceback" not in err and not (tmp_path / "out" / "all_results.json").exists()


def test_the_checkpoints_own_tokenizer_in_another_folder_passes(
    checkpoint, bpe_tokenizer_dir, corpus_files, tmp_path
):
    copy = tmp_path / "same-tokenizer"
    shutil.copytree(bpe_tokenizer_dir, copy)
    metrics = continue_from(checkpoint, copy, tmp_path / "out", corpus_files)
    assert metrics["train_tokens"] > 0


def test_the_own_tokenizer_extended_at_the_end_passes(checkpoint, tmp_path):
    """add_tokens_from appends tokens past the checkpoint's vocabulary; a run that extended it
    saves that tokenizer, and continuing with it is fine."""
    extended = AutoTokenizer.from_pretrained(checkpoint)
    extended.add_tokens([" incarnadine", " multitudinous"])
    extended.save_pretrained(tmp_path / "extended")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "extended")
    assert len(reloaded) == VOCAB + 2
    check_same_vocabulary(reloaded, str(checkpoint), str(checkpoint), str(tmp_path / "extended"))
    # ... but two of the checkpoint's tokens trading ids are not
    saved = json.loads((Path(checkpoint) / "tokenizer.json").read_text())
    vocab = saved["model"]["vocab"]
    a, b = (next(t for t, i in vocab.items() if i == n) for n in (VOCAB - 1, VOCAB - 2))
    vocab[a], vocab[b] = vocab[b], vocab[a]
    swapped = tmp_path / "swapped"
    shutil.copytree(checkpoint, swapped)
    (swapped / "tokenizer.json").write_text(json.dumps(saved))
    with pytest.raises(UserError, match=f"2 of {VOCAB:,} tokens have another id"):
        check_same_vocabulary(
            AutoTokenizer.from_pretrained(swapped), str(checkpoint), str(checkpoint), "swapped"
        )


def test_a_checkpoint_without_a_tokenizer_only_warns(
    checkpoint, foreign_tokenizer, tmp_path, capsys
):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(checkpoint) / name, bare / name)
    foreign = AutoTokenizer.from_pretrained(foreign_tokenizer)
    check_same_vocabulary(foreign, str(bare), "bare", str(foreign_tokenizer))
    out = capsys.readouterr().out
    assert "warning: the checkpoint bare has no tokenizer of its own" in out
    assert "only its size and pad id are checked" in out


# ------------------------------------------------------------------------ fine-tuning
FAST = [
    "--max_seq_length", "32", "--max_train_samples", "1000",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
    "--max_steps", "4", "--logging_steps", "2", "--eval_strategy", "no", "--save_strategy", "no",
    "--disable_tqdm", "true", "--bf16", "false", "--text_column", "line", "--label_column", "kind",
]  # fmt: skip


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, bpe_tokenizer_dir, corpus_files):
    """A tiny RoBERTa pretrained from scratch by the real recipe."""
    out = tmp_path_factory.mktemp("base") / "roberta"
    pretrain_mlm.main(
        ["--config", "recipes/configs/roberta-tiny.yaml"]
        + tiny(max_steps=4, eval_steps=4, save_steps=4, bf16=False)
        + ["--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir)]
        + ["--output_dir", str(out)]
    )
    return out


def labelled(root: Path, corpus_files, labels: int) -> dict:
    """Lines of Macbeth ("play") and of the Sonnets (one label, or two alternating)."""
    texts = [
        [ln.strip() for ln in Path(f).read_text().splitlines() if len(ln.split()) >= 5]
        for f in sorted(corpus_files)
    ]
    rows = {"train": [], "test": []}
    for split, lo, hi in [("train", 0, 40), ("test", 40, 60)]:
        rows[split] += [(t, "play") for t in texts[0][lo:hi]]
        for i, t in enumerate(texts[1][lo:hi]):
            rows[split].append((t, "sonnet" if labels == 2 else f"sonnet-{i % 2}"))
    files = {}
    for split, pairs in rows.items():
        files[split] = root / f"{split}-{labels}.jsonl"
        files[split].write_text(
            "".join(json.dumps({"line": t, "kind": k}) + "\n" for t, k in pairs)
        )
    return files


def finetune(model, data: dict, out: Path, *extra: str) -> dict:
    return ft.main(
        FAST
        + ["--model_name_or_path", str(model), "--output_dir", str(out)]
        + ["--train_files", str(data["train"]), "--test_files", str(data["test"])]
        + list(extra)
    )


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, pretrained, corpus_files):
    """A classifier fine-tuned from `pretrained` by the real recipe."""
    root = tmp_path_factory.mktemp("classifier")
    finetune(pretrained, labelled(root, corpus_files, 2), root / "genre")
    return root / "genre"


def test_a_normal_fine_tune_names_its_base_as_pretrained_from_scratch_here(pretrained, classifier):
    card = (classifier / "README.md").read_text()
    assert f"Fine-tuned from `{pretrained}`, pretrained from scratch by this repository with " \
        "masked LM:" in card  # fmt: skip
    assert "tokens seen" in card
    assert task_head(str(pretrained)) is None  # a masked-LM checkpoint: nothing to discard
    assert "RobertaForSequenceClassification with 2 labels (play, sonnet)" == task_head(
        str(classifier)
    )


def test_a_fine_tuned_classifier_is_refused_with_the_way_out(
    classifier, pretrained, corpus_files, tmp_path, capsys
):
    for labels in (2, 3):  # the same label count (silently reused before) or another (crashed)
        with pytest.raises(SystemExit) as exit_:
            finetune(classifier, labelled(tmp_path, corpus_files, labels), tmp_path / f"o{labels}")
        err = capsys.readouterr().err
        assert exit_.value.code == 2, err
        assert f"`model_name_or_path: {classifier}` is a fine-tuned model already" in err
        assert "RobertaForSequenceClassification with 2 labels (play, sonnet)" in err
        assert f"the masked-LM checkpoint it came from (`{pretrained}`" in err
        assert "`discard_task_head: true`" in err and "Traceback" not in err


def test_discard_task_head_starts_a_new_head_and_the_card_says_so(
    classifier, pretrained, corpus_files, tmp_path, capsys
):
    out = tmp_path / "again"
    results = finetune(
        classifier, labelled(tmp_path, corpus_files, 3), out, "--discard_task_head", "true"
    )
    log = capsys.readouterr().out
    assert results["test_accuracy"] >= 0
    assert "discard_task_head: " in log and "it is discarded" in log
    assert "new (random) weights: classifier.dense.bias" in log and "discarded)" in log
    card = (out / "README.md").read_text()
    assert f"Fine-tuned from `{classifier}`, a classifier this repository fine-tuned from " \
        f"`{pretrained}`; its task head (RobertaForSequenceClassification with 2 labels " \
        "(play, sonnet)) was discarded" in card  # fmt: skip
    assert "pretrained from scratch" not in card


def test_a_discarded_head_is_not_loaded_but_the_encoder_is(classifier):
    _, config = load_pretrained_parts(str(classifier), ["a", "b"], 32, "sdpa")
    torch.manual_seed(0)
    model = pretrained_model(str(classifier), config, quiet=True)
    saved = load_file(classifier / "model.safetensors")
    state = model.state_dict()
    encoder = [k for k in saved if k.startswith("roberta.")]
    assert encoder and all(torch.equal(state[k], saved[k]) for k in encoder)
    head = [k for k in saved if k.startswith("classifier.") and k.endswith("weight")]
    assert head and not any(torch.equal(state[k], saved[k]) for k in head)


def test_heads_are_told_apart_by_architecture_and_by_weights(tmp_path):
    small = dict(tiny_shape(), vocab_size=100, max_position_embeddings=40)
    for cls, cfg in [
        (RobertaForMaskedLM, RobertaConfig),
        (BertForPreTraining, BertConfig),
        (ModernBertForMaskedLM, ModernBertConfig),
    ]:
        extra = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
        cls(cfg(**small, **(extra if cfg is ModernBertConfig else {}))).save_pretrained(
            tmp_path / cls.__name__
        )
        assert task_head(str(tmp_path / cls.__name__)) is None, cls.__name__
    head = tmp_path / "head"
    RobertaForSequenceClassification(RobertaConfig(**small, num_labels=3)).save_pretrained(head)
    assert task_head(str(head)).startswith("RobertaForSequenceClassification with 3 labels")
    config = json.loads((head / "config.json").read_text())
    config["architectures"] = ["RobertaForMaskedLM"]  # a config that does not say
    (head / "config.json").write_text(json.dumps(config))
    assert task_head(str(head)).startswith("weights classifier.")


def test_the_card_never_claims_pretraining_for_a_checkpoint_it_did_not_train(tmp_path):
    RobertaForMaskedLM(
        RobertaConfig(**tiny_shape(), vocab_size=100, max_position_embeddings=40)
    ).save_pretrained(tmp_path / "theirs")
    assert base_summary(str(tmp_path / "theirs")) == ", a checkpoint this repository did not train."
    assert base_summary("nobody/uncached-model") == ", a checkpoint this repository did not train."


def test_the_card_says_a_continued_base_was_continued_and_from_what(tmp_path):
    base = tmp_path / "continued"
    base.mkdir()
    results = {"train_tokens": 4096, "eval_accuracy": 0.2, "eval_before_accuracy": 0.1}
    (base / "all_results.json").write_text(json.dumps(results | {"eval_nsp_accuracy": 0.6}))
    (base / "run_config.yaml").write_text("model_name_or_path: outputs/bert  # command line\n")
    assert base_summary(str(base)) == (
        ", continued from `outputs/bert` and further pretrained by this repository with masked "
        "LM and next-sentence prediction: held-out masked-token accuracy 0.200, 4,096 tokens seen."
    )
    # results another script wrote (transformers' run_mlm.py writes all_results.json too)
    (base / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.2, "perplexity": 9.0}))
    (base / "run_config.yaml").unlink()
    assert base_summary(str(base)) == ", a checkpoint this repository did not train."
