"""Publishing from the real entry points, in real processes, to a fake Hub on 127.0.0.1.

One chain: train a tokenizer and push it; pretrain with that tokenizer *from the Hub* and push
the model with our card; run fill-mask on the pushed model by its Hub id. Then a bad token,
and a token given on the command line: it must never be written, logged or pushed.
"""

import json
import time
from pathlib import Path

import pytest
from helpers import REPO, tiny
from helpers import run_against_hub as run
from helpers.hub_server import run_hub_server
from huggingface_hub import ModelCard

GOOD = "hf_push_test_token_for_alice_0123456789"
RUN = [
    "--tokenizer_name_or_path", "alice/tiny-bpe", *tiny(num_hidden_layers=1, eval_steps=8),
    "--push_to_hub", "true",
]  # fmt: skip
FAMILY_CONFIGS = {  # every masked-LM family is pushed and loaded back
    family: str(REPO / "recipes" / "configs" / f"{family}-tiny.yaml")
    for family in ("roberta", "modernbert")
}
TINY = ["--config", FAMILY_CONFIGS["roberta"], *RUN]
FINAL_FILES = {
    "README.md", "all_results.json", "config.json", "loss_curve.png", "model.safetensors",
    "tokenizer.json", "tokenizer_config.json", "trainer_state.json",
}  # fmt: skip


def final_files(output_dir: Path) -> set[str]:
    """FINAL_FILES, and run_config.yaml where the run recorded its settings (it is pushed)."""
    return FINAL_FILES | (
        {"run_config.yaml"} if (output_dir / "run_config.yaml").is_file() else set()
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with run_hub_server(tmp_path_factory.mktemp("hub"), tokens={GOOD: "alice"}) as server:
        yield server
    assert server.unhandled == [], "a client used a route the fake Hub does not implement"


def files_containing(secret: str, *folders: Path) -> list[str]:
    return [
        str(path)
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


@pytest.fixture(scope="module")
def tokenizer_repo(hub, tmp_path_factory, corpus_files):
    root = tmp_path_factory.mktemp("tokenizer")
    result = run(
        hub, "tokenizer_training.train_tokenizer",
        "--config", str(REPO / "tokenizer_training" / "configs" / "bytelevel-bpe.yaml"),
        "--train_files", *corpus_files, "--vocab_size", "800", "--output_dir", str(root / "tok"),
        "--push_to_hub", "true", "--hub_model_id", "tiny-bpe", "--language", "en",
        cwd=root / "work", token=GOOD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return "alice/tiny-bpe", result, root / "tok"


@pytest.fixture(scope="module", params=list(FAMILY_CONFIGS))
def pushed(request, hub, tokenizer_repo, tmp_path_factory, corpus_files):
    """A run with the token in HF_TOKEN and the default hub_strategy (push once, at the end):
    (root, the process, the repo's name tiny-FAMILY)."""
    root, name = tmp_path_factory.mktemp("pushed"), f"tiny-{request.param}"
    result = run(
        hub, "recipes.pretrain_mlm", "--config", FAMILY_CONFIGS[request.param], *RUN,
        "--train_files", *corpus_files, "--output_dir", str(root / name), cwd=root / "work",
        token=GOOD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result, name


def test_tokenizer_trainer_pushes_a_loadable_tokenizer(hub, tokenizer_repo):
    repo_id, result, folder = tokenizer_repo
    assert f"Pushed to {hub.url}/{repo_id}/commit/" in result.stdout
    files = hub.files(repo_id)
    assert set(files) == {
        "README.md", "tokenizer.json", "tokenizer_config.json", "tokenizer_training_args.json",
    }  # fmt: skip
    assert json.loads(files["tokenizer_config.json"])["mask_token"] == "<mask>"
    assert files["tokenizer.json"] == (folder / "tokenizer.json").read_bytes()
    card = ModelCard(files["README.md"].decode())  # what it is, and how to load it from there
    assert card.data.language == "en" and card.data.license == "apache-2.0"
    assert "| vocabulary size | 800 |" in card.text and "`<mask>`" in card.text
    assert "`macbeth_part.txt`, `sonnets.txt`" in card.text
    assert f'AutoTokenizer.from_pretrained("{repo_id}")' in card.text
    assert not files_containing(GOOD, hub.root)  # (the pretraining run below loads it)


def test_push_sends_model_tokenizer_card_and_results_once_at_the_end(hub, pushed):
    root, result, name = pushed
    assert f"Pushed to {hub.url}/alice/{name}/commit/" in result.stdout
    # no checkpoint, no .bin
    assert set(hub.files(f"alice/{name}")) == final_files(root / name)
    assert len(hub.repos[f"alice/{name}"].commits) == 2  # the empty repo, then one push


def test_pushed_card_is_ours_with_metadata_metrics_and_widget(hub, pushed):
    root, _, name = pushed
    files = hub.files(f"alice/{name}")
    assert files["README.md"] == (root / name / "README.md").read_bytes()
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "fill-mask"
    [widget] = card.data.widget
    assert "<mask>" in widget["text"]
    results = json.loads(files["all_results.json"])
    reported = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert reported["MLM loss"] == pytest.approx(results["eval_loss"], abs=1e-4)
    assert reported["Perplexity"] == pytest.approx(results["perplexity"], abs=1e-4)
    assert reported["Masked-token accuracy"] == pytest.approx(results["eval_accuracy"], abs=1e-4)
    assert "![Training and evaluation loss](loss_curve.png)" in card.text
    assert f'pipeline("fill-mask", model="alice/{name}")' in card.text
    # fp32 here, unless `bf16: auto` found native bf16 on this CPU; the card says the same
    assert results["train_precision"] in {"fp32", "bf16"}
    assert f"| precision | {results['train_precision']}" in card.text
    if "run_config.yaml" in files:
        assert "Reproduce: [run_config.yaml](run_config.yaml)" in card.text
    assert files["loss_curve.png"].startswith(b"\x89PNG")


def test_a_card_without_a_language_says_so_and_the_push_warns(hub, pushed):
    """The run's own train_files replace the demo's, whose `language: en` goes with them: the
    card says the language is not set, and the push warns, naming the field to set."""
    root, result, name = pushed
    card = ModelCard((root / name / "README.md").read_text())
    assert card.data.language is None and card.data.license == "apache-2.0"  # the default
    assert "**language: not set** (set `language` in the config" in card.text
    assert "license: not set" not in card.text
    assert "warning: the model card has no language: set `language` in the config" in (
        result.stdout
    )
    assert "no license" not in result.stdout


def test_token_from_env_is_in_no_file_and_no_log(hub, pushed):
    root, result, name = pushed
    assert GOOD not in result.stdout + result.stderr
    assert not files_containing(GOOD, root, hub.root)


def test_fill_mask_takes_a_hub_id(hub, pushed, tmp_path):
    _, _, name = pushed  # no token: the repo is public
    result = run(
        hub, "recipes.fill_mask", "--model", f"alice/{name}", "--top_k", "3",
        "Shall I compare thee to a summer's <mask>?", cwd=tmp_path / "empty",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "Shall I compare thee to a summer's <mask>?"
    assert len(lines) == 4  # the text, then top_k candidates
    downloads = [r for r in hub.requests if r.startswith(f"GET /alice/{name}/resolve/")]
    assert [r for r in downloads if r.endswith("/model.safetensors")]


def test_bad_token_fails_in_seconds_before_any_work(hub, tmp_path, corpus_files):
    secret = "hf_wrong_token_nobody_has_0123456789"
    out = tmp_path / "model"
    start = time.monotonic()
    result = run(
        hub, "recipes.pretrain_mlm", *TINY, "--train_files", *corpus_files,
        "--output_dir", str(out), "--hub_token", secret, cwd=tmp_path / "work",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert result.returncode == 2
    assert "rejected the token" in result.stderr and "hf auth login" in result.stderr
    assert "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr
    assert "Tokenizing" not in result.stderr  # failed before reading any data
    assert not out.exists() or not any(out.iterdir())
    assert elapsed < 60  # interpreter start and imports; the check itself is one request


def test_token_on_the_command_line_is_never_saved_even_in_pushed_checkpoints(
    hub, tokenizer_repo, tmp_path, corpus_files
):
    out = tmp_path / "tiny-roberta-ckpt"
    result = run(
        hub, "recipes.pretrain_mlm", *TINY, "--train_files", *corpus_files,
        "--output_dir", str(out), "--hub_token", GOOD, "--hub_strategy", "checkpoint",
        cwd=tmp_path / "work",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    files = hub.files("alice/tiny-roberta-ckpt")
    # Trainer pushed the latest checkpoint (and its training_args.bin) along the way
    assert {"last-checkpoint/optimizer.pt", "last-checkpoint/training_args.bin"} <= set(files)
    assert final_files(out) <= set(files)
    assert not [name for name in files if name.startswith("checkpoint-")]
    assert (out / "checkpoint-4" / "training_args.bin").is_file()
    assert GOOD not in result.stdout + result.stderr
    assert not files_containing(GOOD, out, hub.root)
