"""Publishing when you are ready, in real processes against a fake Hub on 127.0.0.1:
`recipes.push` of a finished run, a checkpoint and a tokenizer (and a second push that changes
nothing); what it refuses; checkpoints pushed as revisions while training, loaded back by
revision bit for bit; and a run killed while its revisions were uploading, then resumed."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, hub_env, tiny
from helpers import run_against_hub as run
from helpers.hub_server import run_hub_server
from huggingface_hub import HfApi, ModelCard

GOOD = "hf_publish_test_token_for_alice_0123456789"
TINY = [
    "--config", str(REPO / "recipes" / "configs" / "roberta-tiny.yaml"),
    *tiny(num_hidden_layers=1, max_steps=10, eval_steps=5, save_steps=5, save_total_limit=10),
]  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with run_hub_server(tmp_path_factory.mktemp("hub"), tokens={GOOD: "alice"}) as server:
        yield server
    assert server.unhandled == [], "a client used a route the fake Hub does not implement"


def train(hub, out, corpus_files, tokenizer, *extra, token=None):
    return run(
        hub, "recipes.pretrain_mlm", *TINY, "--train_files", *corpus_files,
        "--tokenizer_name_or_path", str(tokenizer), "--output_dir", str(out), *extra,
        cwd=out.parent / "work", token=token,
    )  # fmt: skip


def branches(hub, repo_id) -> set[str]:
    refs = HfApi(endpoint=hub.url, token=GOOD).list_repo_refs(repo_id)
    return {ref.name for ref in refs.branches}


@pytest.fixture(scope="module")
def finished(hub, tmp_path_factory, corpus_files, bpe_tokenizer_dir):
    """A tiny run that was not pushed: its output_dir."""
    out = tmp_path_factory.mktemp("finished") / "tiny-later"
    result = train(hub, out, corpus_files, bpe_tokenizer_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


# --------------------------------------------------------------------------- recipes.push
def test_a_finished_run_is_published_later_and_a_second_push_changes_nothing(hub, finished):
    local = ModelCard((finished / "README.md").read_text())
    assert f'pipeline("fill-mask", model="{finished}")' in local.text  # loads from where it is
    result = run(
        hub, "recipes.push", str(finished), "--hub_model_id", "alice/later", "--language", "ru",
        cwd=finished.parent / "work", token=GOOD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"to {hub.url}/alice/later/commit/" in result.stdout
    files = hub.files("alice/later")
    assert {
        "README.md", "all_results.json", "config.json", "loss_curve.png", "model.safetensors",
        "run_config.yaml", "tokenizer.json", "tokenizer_config.json", "trainer_state.json",
    } == set(files)  # fmt: skip
    assert files["model.safetensors"] == (finished / "model.safetensors").read_bytes()
    card = ModelCard(files["README.md"].decode())
    assert card.data.language == "ru" and card.data.license == "apache-2.0"
    assert "language: not set" not in card.text
    assert (
        'pipeline("fill-mask", model="alice/later")' in card.text and str(finished) not in card.text
    )
    assert card.text.startswith("\n# later\n")
    assert {r.metric_name for r in card.data.eval_results} >= {"MLM loss", "Perplexity"}

    commits = list(hub.repos["alice/later"].commits)
    again = run(
        hub, "recipes.push", str(finished), "--hub_model_id", "alice/later", "--language", "ru",
        cwd=finished.parent / "work", token=GOOD,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing changed since the last push" in again.stdout
    assert hub.repos["alice/later"].commits == commits
    assert not [p for p in hub.root.rglob("*") if p.is_file() and GOOD.encode() in p.read_bytes()]


def test_one_checkpoint_is_published_with_a_card_of_its_own(hub, finished):
    result = run(
        hub, "recipes.push", str(finished / "checkpoint-5"), "--hub_model_id", "alice/ckpt",
        "--revision", "step5", cwd=finished.parent / "work", token=GOOD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    files = hub.files("alice/ckpt", revision="step5")
    assert files["model.safetensors"] == (finished / "checkpoint-5/model.safetensors").read_bytes()
    assert not {"optimizer.pt", "scheduler.pt", "training_args.bin"} & set(files)
    card = ModelCard(files["README.md"].decode())
    assert "Checkpoint at step 5 of 10" in card.text
    assert 'pipeline("fill-mask", model="alice/ckpt")' in card.text


def test_a_tokenizer_folder_is_published(hub, bpe_tokenizer_dir, tmp_path):
    folder = shutil.copytree(bpe_tokenizer_dir, tmp_path / "tok")  # the session's: read only
    result = run(
        hub, "recipes.push", str(folder), "--hub_model_id", "alice/tok", "--language", "en",
        cwd=tmp_path / "work", token=GOOD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    files = hub.files("alice/tok")
    assert files["tokenizer.json"] == (folder / "tokenizer.json").read_bytes()
    card = ModelCard(files["README.md"].decode())
    assert card.data.language == "en" and "byte-level BPE" in card.text
    assert 'AutoTokenizer.from_pretrained("alice/tok")' in card.text


def _unfinished(path):
    (path / "checkpoint-4").mkdir(parents=True)
    (path / "checkpoint-4" / "trainer_state.json").write_text("{}")


def _incomplete_checkpoint(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "trainer_state.json").write_text('{"global_st')  # killed while writing it


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("empty", lambda path: path.mkdir(), "holds no finished model, checkpoint or tokenizer"),
        ("run", _unfinished, "its run has not finished"),
        ("checkpoint-7", _incomplete_checkpoint, "is an incomplete checkpoint"),
    ],
)
def test_what_cannot_be_published_is_refused_in_one_line(hub, tmp_path, name, make, says):
    folder = tmp_path / name
    make(folder)
    before = len(hub.requests)
    result = run(
        hub, "recipes.push", str(folder), "--hub_model_id", "alice/nothing",
        cwd=tmp_path / "work", token=GOOD,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and says in result.stderr
    assert "Traceback" not in result.stderr
    assert len(hub.requests) == before  # refused before any request


# --------------------------------------------------------------------------- revisions
RELOAD = """
import json, sys, torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM
repo, revision, local = sys.argv[1:]
model = AutoModelForMaskedLM.from_pretrained(repo, revision=revision)
ours = load_file(local + "/model.safetensors")
state = model.state_dict()
downloaded = hf_hub_download(repo, "model.safetensors", revision=revision)
print(json.dumps({
    "tensors": all(torch.equal(state[k], v) for k, v in ours.items()),
    "bytes": open(downloaded, "rb").read() == open(local + "/model.safetensors", "rb").read(),
}))
"""


def test_checkpoints_are_pushed_as_revisions_loadable_bit_for_bit(
    hub, tmp_path, corpus_files, bpe_tokenizer_dir
):
    out = tmp_path / "tiny-revs"
    result = train(
        hub, out, corpus_files, bpe_tokenizer_dir, "--push_to_hub", "true",
        "--hub_model_id", "tiny-revs", "--push_revisions", "true",
        "--save_steps_log_spaced", "true", token=GOOD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = {"step0", "step1", "step2", "step4", "step5", "step10"}  # 1, 2, 4: log-spaced
    assert branches(hub, "alice/tiny-revs") == expected | {"main"}
    assert not (out / "_revisions").exists() or not any((out / "_revisions").iterdir())
    for revision in ("step5", "step10"):
        reload = subprocess.run(
            [sys.executable, "-c", RELOAD, "alice/tiny-revs", revision,
             str(out / f"checkpoint-{revision[4:]}")],
            env=hub_env(hub, tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert reload.returncode == 0, reload.stderr[-3000:]
        assert json.loads(reload.stdout.splitlines()[-1]) == {"tensors": True, "bytes": True}
    step0 = hub.files("alice/tiny-revs", revision="step0")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(step0)
    assert step0["model.safetensors"] != hub.files("alice/tiny-revs", "step5")["model.safetensors"]
    assert "optimizer.pt" not in hub.files("alice/tiny-revs", revision="step5")

    listed = hub.files("alice/tiny-revs")["revisions"].decode().splitlines()
    rows = [line.split("\t") for line in listed if not line.startswith("#")]
    assert [name for name, _, _ in rows] == ["step0", "step1", "step2", "step4", "step5", "step10"]
    state = json.loads((out / "checkpoint-5" / "trainer_state.json").read_text())
    assert rows[4] == ["step5", "5", str(state["num_input_tokens_seen"])]
    card = hub.files("alice/tiny-revs")["README.md"].decode()
    assert "## Revisions" in card and f"| `step5` | 5 | {int(rows[4][2]):,} |" in card
    assert 'from_pretrained("alice/tiny-revs", revision="step10")' in card


def test_a_killed_run_pushes_what_it_had_not_pushed_when_resumed(
    hub, tmp_path, corpus_files, bpe_tokenizer_dir
):
    out = tmp_path / "tiny-killed"
    command = [
        sys.executable, "-m", "recipes.pretrain_mlm", *TINY, "--train_files", *corpus_files,
        "--tokenizer_name_or_path", str(bpe_tokenizer_dir), "--output_dir", str(out),
        "--push_to_hub", "true", "--hub_model_id", "tiny-killed", "--push_revisions", "true",
        "--dataloader_num_workers", "0",
    ]  # fmt: skip
    (tmp_path / "work").mkdir()
    hub.commits_open.clear()  # no upload finishes before the kill
    try:
        proc = subprocess.Popen(
            command, cwd=tmp_path / "work", env=hub_env(hub, tmp_path / "work", GOOD),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while not (out / "_revisions" / "step5").is_dir():  # staged: checkpoint-5 was saved
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint-5"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert "revisions" not in hub.files("alice/tiny-killed")
        assert "step5" not in hub.repos["alice/tiny-killed"].branches  # still to push
    finally:
        hub.commits_open.set()  # the commit the killed run had sent goes through now
    result = run(hub, *command[2:], cwd=tmp_path / "work", token=GOOD)  # the same command
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout
    assert branches(hub, "alice/tiny-killed") == {"main", "step0", "step5", "step10"}
    pushed = hub.files("alice/tiny-killed", "step5")["model.safetensors"]
    assert pushed == (out / "checkpoint-5" / "model.safetensors").read_bytes()
    listed = hub.files("alice/tiny-killed")["revisions"].decode()
    assert [line.split("\t")[0] for line in listed.splitlines()[1:]] == ["step0", "step5", "step10"]
