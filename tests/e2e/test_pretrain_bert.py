"""BERT pretraining (MLM + NSP): real processes for both model_impl values, loaded back with stock
transformers; plus the pieces that are cheap to check in-process."""

import copy
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from helpers import run_module, tiny, tiny_model
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    EvalPrediction,
    pipeline,
)

from recipes import pretrain_bert
from recipes.arguments import DataSourceArguments
from recipes.models.families import FAMILIES
from recipes.models.sparse_head import use_sparse_mlm_head
from recipes.runs.metrics import compute_pretraining_metrics, pretraining_logits_for_metrics
from tokenizer_training.train_tokenizer import TokenizerArguments, train_tokenizer

IMPLS = ["transformers", "scratch"]
TINY = tiny(
    text_sample_by="paragraph",
    per_device_eval_batch_size=32,
    max_steps=6,
    eval_steps=3,
    save_steps=3,
)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, corpus_files):
    out = tmp_path_factory.mktemp("bert") / "tok"
    args = TokenizerArguments(tokenizer_type="wordpiece", vocab_size=800, output_dir=str(out))
    data = DataSourceArguments(train_files=corpus_files)
    train_tokenizer(args, data)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_files, tokenizer_dir):
    """Both implementations, trained side by side (a blank line separates documents here)."""
    root = tmp_path_factory.mktemp("bert-runs")

    def train(impl):
        return run_module(
            "recipes.pretrain_bert",
            "--config", "recipes/configs/bert-tiny-nsp.yaml", "--model_impl", impl,
            "--train_files", *corpus_files, "--tokenizer_name_or_path", str(tokenizer_dir),
            "--output_dir", str(root / impl), *TINY,
            env={"HF_DATASETS_CACHE": str(root / f"cache-{impl}")},  # no shared cache writes
        )  # fmt: skip

    with ThreadPoolExecutor(len(IMPLS)) as pool:
        done = dict(zip(IMPLS, pool.map(train, IMPLS), strict=True))
    for impl, run in done.items():
        assert run.returncode == 0, f"{impl}:\n{run.stderr[-3000:]}"
    return {impl: (root / impl, run) for impl, run in done.items()}


@pytest.mark.parametrize("impl", IMPLS)
def test_results_report_mlm_and_nsp(runs, impl):
    out, run = runs[impl]
    results = json.loads((out / "all_results.json").read_text())
    for key in ["eval_accuracy", "eval_nsp_accuracy", "perplexity", "eval_mlm_loss"]:
        assert key in results, key
    assert 0 <= results["eval_nsp_accuracy"] <= 1
    # perplexity is of the masked-LM loss alone; eval_loss adds the NSP loss (~0.69)
    assert results["eval_loss"] > results["eval_mlm_loss"]
    assert 0 <= results["train_padding_fraction"] < 0.5
    assert results["train_tokens"] > 0
    assert "held-out next-sentence accuracy" in run.stdout
    assert "[MASK]" in (out / "README.md").read_text()
    # what it built, and its speed after a few steps (recipes/runs/throughput.py)
    where = " from recipes.models.scratch_bert" if impl == "scratch" else ""
    built = f"BERT (BertForPreTraining{where}): 2 layers x 32 hidden, 2 heads, 32-token sequences"
    assert built in run.stdout
    assert "tokens/s" in run.stdout.split("speed on this machine: ")[1].splitlines()[0]
    assert "A BERT model" in (out / "README.md").read_text()


@pytest.mark.parametrize("impl", IMPLS)
def test_checkpoint_is_stock_bert_and_fill_mask_works(runs, impl):
    out, _ = runs[impl]
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"]
    tok = AutoTokenizer.from_pretrained(out)
    assert config["vocab_size"] == len(tok) and config["pad_token_id"] == tok.pad_token_id
    # the final model and an intermediate checkpoint alike reload weight for weight
    for folder in [out, out / "checkpoint-3"]:
        model = BertForPreTraining.from_pretrained(folder)
        state = model.state_dict()
        for name, tensor in load_file(folder / "model.safetensors").items():
            assert torch.equal(state[name], tensor), (folder, name)
    fill = pipeline("fill-mask", model=str(out), top_k=3)
    preds = fill("Shall I compare thee to a summer's [MASK]?")
    assert len(preds) == 3 and all(0 <= p["score"] <= 1 for p in preds)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--streaming", "true"], "streaming"),
        (["--line_by_line", "true"], "line_by_line"),
        (["--model_impl", "scratch", "--attn_implementation", "eager"], "SDPA"),
    ],
)
def test_settings_that_cannot_work_fail_clearly(tmp_path, capsys, extra, message):
    argv = ["--train_files", "x.txt", "--tokenizer_name_or_path", "tok"]
    argv += ["--output_dir", str(tmp_path), *extra]
    with pytest.raises(SystemExit) as exit_:
        pretrain_bert.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_too_few_documents_fail_clearly(tmp_path, capsys, corpus_files, tokenizer_dir):
    # Whole files as documents: two cannot give two to hold out and two to pair in training.
    argv = ["--train_files", *corpus_files, "--text_sample_by", "document"]
    argv += ["--tokenizer_name_or_path", str(tokenizer_dir), "--output_dir", str(tmp_path)]
    with pytest.raises(SystemExit):
        pretrain_bert.main(argv)
    err = capsys.readouterr().err
    assert "training data has 2 document(s), too few to hold out" in err
    assert "`validation_holdout: document_ends`" in err  # the fix: tests/e2e/test_bad_input.py


def test_document_ends_cannot_be_held_out_of_given_validation_data(
    tmp_path, capsys, corpus_files, tokenizer_dir
):
    argv = ["--train_files", corpus_files[0], "--validation_files", corpus_files[1]]
    argv += [
        "--validation_holdout",
        "document_ends",
        "--tokenizer_name_or_path",
        str(tokenizer_dir),
    ]
    with pytest.raises(SystemExit) as exit_:
        pretrain_bert.main([*argv, "--output_dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "validation_holdout: document_ends` holds out" in capsys.readouterr().err


def batch(n=4, seq=20):
    torch.manual_seed(1)
    ids = torch.randint(5, 100, (n, seq))
    labels = torch.where(torch.rand(ids.shape) < 0.25, ids, torch.full_like(ids, -100))
    labels[:, 0] = ids[:, 0]  # at least one masked token per row
    return {"input_ids": ids, "labels": labels, "next_sentence_label": torch.tensor([0, 1, 1, 0])}


def test_sparse_nsp_loss_is_normalized_for_gradient_accumulation():
    # Given num_items_in_batch, Trainer sums micro-batch losses without averaging them: both
    # terms must then shrink with this batch's share of the step's masked tokens.
    model = tiny_model(BertForPreTraining, BertConfig)
    use_sparse_mlm_head(model, FAMILIES["bert"])
    inputs = batch()
    n = int((inputs["labels"] != -100).sum())
    mean = model(**inputs).loss
    share = model(**inputs, num_items_in_batch=4 * n).loss
    torch.testing.assert_close(share * 4, mean)


@pytest.mark.parametrize("sparse", [False, True])
def test_metrics_give_the_models_mlm_loss_and_accuracies(sparse):
    model, inputs = tiny_model(BertForPreTraining, BertConfig), batch()
    with torch.no_grad():
        dense_out = model(**inputs)
    if sparse:
        model = copy.deepcopy(model)
        use_sparse_mlm_head(model, FAMILIES["bert"])
    with torch.no_grad():
        out = model(**inputs)
    labels = (inputs["labels"], inputs["next_sentence_label"])
    preds = pretraining_logits_for_metrics(
        (out.prediction_logits, out.seq_relationship_logits), labels
    )
    metrics = compute_pretraining_metrics(
        EvalPrediction(tuple(p.numpy() for p in preds), tuple(x.numpy() for x in labels))
    )
    nsp_loss = torch.nn.functional.cross_entropy(
        dense_out.seq_relationship_logits, inputs["next_sentence_label"]
    )
    assert metrics["mlm_loss"] == pytest.approx(float(dense_out.loss - nsp_loss), abs=1e-4)
    expected_nsp = (out.seq_relationship_logits.argmax(-1) == labels[1]).float().mean()
    assert metrics["nsp_accuracy"] == pytest.approx(float(expected_nsp))
    assert metrics["nsp_majority_baseline_accuracy"] == 0.5
    assert 0 <= metrics["accuracy"] <= 1
