"""`python -m recipes.evaluate` on a real run: a tiny RoBERTa trained 60 steps with a checkpoint
every 20, evaluated checkpoint by checkpoint on its own held-out text and on minimal pairs of our
own making; the same model from the fake Hub; bad input exits 2 with one message."""

import json
import os

import pytest
from helpers import run_module, tiny
from helpers.hub_server import run_hub_server

# A few pairs of our own making (not BLiMP): the good sentence first, grouped by UID.
PAIRS = [
    ("The king is dead.", "The king are dead.", "agreement"),
    ("The witches are here.", "The witches is here.", "agreement"),
    ("My lord has gone to bed.", "My lord have gone to bed.", "agreement"),
    ("Shall I compare thee to a summer's day?", "Shall I compare thee to a summer's days?", "number"),
    ("Thou art more lovely and more temperate.", "Thou art more lovely and more temperater.", "degree"),
    ("Fair is foul, and foul is fair.", "Fair is foul, and foul is fairs.", "number"),
]  # fmt: skip
STEPS = [20, 40, 60]
TOKENS_PER_STEP = 8 * 32  # 8 packed sequences of 32 tokens, no padding


def write_pairs(path):
    rows = [{"sentence_good": g, "sentence_bad": b, "UID": uid} for g, b, uid in PAIRS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, corpus_files, bpe_tokenizer_dir):
    root = tmp_path_factory.mktemp("evaluate")
    settings = tiny(max_steps=60, save_steps=20, eval_steps=20, save_total_limit=5)
    run = run_module(
        "recipes.pretrain_mlm", "--config", "recipes/configs/roberta-tiny.yaml",
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir),
        "--output_dir", str(root / "run"), *settings,
        "--minimal_pairs", str(write_pairs(root / "pairs.jsonl")),  # scored at the end
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return root / "run"


@pytest.fixture(scope="module")
def evaluated(run_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    pairs = write_pairs(root / "pairs.jsonl")
    out = root / "r.json"
    done = run_module(
        "recipes.evaluate", "--model", str(run_folder), "--all_checkpoints", "true",
        "--minimal_pairs", str(pairs), "--output_file", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), out, done, pairs


def test_one_row_per_checkpoint_in_step_order_with_every_figure(evaluated, run_folder):
    results, out, done, _ = evaluated
    rows = results["rows"]
    # checkpoint-60 holds the final weights: shown once, as the run folder
    assert [r["model"] for r in rows] == [
        str(run_folder / "checkpoint-20"), str(run_folder / "checkpoint-40"), str(run_folder)
    ]  # fmt: skip
    assert [r["step"] for r in rows] == STEPS
    assert [r["tokens_seen"] for r in rows] == [s * TOKENS_PER_STEP for s in STEPS]
    for row in rows:
        assert 0 <= row["masked_accuracy"] <= 1 and 0 < row["most_frequent_token_accuracy"] < 1
        assert row["pll_per_word"] < 0 and row["pll_per_char"] < 0
        assert row["minimal_pairs_accuracy"] in [k / len(PAIRS) for k in range(len(PAIRS) + 1)]
        assert set(row["minimal_pairs_by_group"]["UID"]) == {"agreement", "number", "degree"}
        assert row["sentences_per_second"] > 0
    assert len({r["tokenizer"] for r in rows}) == 1  # one tokenizer: per-token figures compare
    assert rows[0]["pll_per_word"] != rows[-1]["pll_per_word"]  # the weights changed
    assert "held-out split of" in results["text"]
    assert out.with_suffix(".png").stat().st_size > 5000
    assert "comparable between all rows" in done.stdout
    table = done.stdout.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("model"))
    assert [line.split()[1] for line in table[header + 1 : header + 4]] == ["20", "40", "60"]


def test_accuracy_equals_the_plain_reference_scorer(evaluated, run_folder):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from recipes.models.pll import pseudo_log_likelihoods_plain

    rows, *_ = evaluated
    model = AutoModelForMaskedLM.from_pretrained(run_folder)
    tok = AutoTokenizer.from_pretrained(run_folder)
    good = pseudo_log_likelihoods_plain(model, tok, [g for g, _, _ in PAIRS])
    bad = pseudo_log_likelihoods_plain(model, tok, [b for _, b, _ in PAIRS])
    reference = sum(g > b for g, b in zip(good, bad)) / len(PAIRS)
    assert rows["rows"][-1]["minimal_pairs_accuracy"] == pytest.approx(reference, abs=0.005)


def test_the_same_model_from_the_hub_and_a_revision_it_lacks(evaluated, run_folder, tmp_path):
    from huggingface_hub import HfApi

    results, _, _, pairs = evaluated
    with run_hub_server(tmp_path, tokens={"hf_alice": "alice"}) as hub:
        api = HfApi(endpoint=hub.url, token="hf_alice")
        api.create_repo("alice/tiny")
        api.upload_folder(folder_path=str(run_folder), repo_id="alice/tiny",
                          allow_patterns=["*.json", "*.safetensors"])  # fmt: skip
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "home"), "NO_PROXY": "127.0.0.1"}
        common = ["--minimal_pairs", str(pairs), "--output_file", str(tmp_path / "hub.json")]
        done = run_module("recipes.evaluate", "--model", "alice/tiny", *common, cwd=tmp_path,
                          env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        (row,) = json.loads((tmp_path / "hub.json").read_text())["rows"]
        final = results["rows"][-1]
        assert row["model"] == "alice/tiny" and row["step"] == 60
        assert row["tokens_seen"] == 60 * TOKENS_PER_STEP  # from its trainer_state.json
        assert row["minimal_pairs_accuracy"] == final["minimal_pairs_accuracy"]
        missing = run_module("recipes.evaluate", "--model", "alice/tiny@step999", *common,
                             cwd=tmp_path, env=env)  # fmt: skip
        assert missing.returncode == 2, missing.stderr[-3000:]
        assert "has no revision `step999`" in missing.stderr
        assert "Traceback" not in missing.stderr


def test_bad_input_exits_2_with_one_message(evaluated, run_folder, tmp_path):
    *_, pairs = evaluated
    broken = tmp_path / "broken.jsonl"
    broken.write_text(pairs.read_text() + '{"sentence_good": "A line without its pair."}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((run_folder / "config.json").read_text())
    cases = [
        (["--model", str(run_folder), "--minimal_pairs", str(broken)],
         f"{broken} line {len(PAIRS) + 1} has no `sentence_bad`"),
        (["--model", str(run_folder), "--minimal_pairs", str(empty)], "holds no pairs"),
        (["--model", str(no_weights), "--minimal_pairs", str(pairs)], "has no safetensors weights"),
        (["--model", str(run_folder / "checkpoint-20"), "--all_checkpoints", "true"],
         "has no checkpoint-N folders"),
    ]  # fmt: skip
    for args, says in cases:
        done = run_module("recipes.evaluate", *args)
        assert done.returncode == 2, (args, done.stderr[-2000:])
        assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not os.path.exists(tmp_path / "r.json")


def test_a_run_scores_minimal_pairs_at_its_end_as_evaluate_does(evaluated, run_folder):
    results, *_ = evaluated
    final = json.loads((run_folder / "all_results.json").read_text())
    assert final["minimal_pairs_accuracy"] == results["rows"][-1]["minimal_pairs_accuracy"]
    card = (run_folder / "README.md").read_text()
    assert "| Minimal-pair accuracy |" in card


def test_a_run_with_a_bad_pairs_file_stops_before_training(
    tmp_path, corpus_files, bpe_tokenizer_dir
):
    broken = tmp_path / "pairs.jsonl"
    broken.write_text('{"sentence_good": "The king is dead.", "sentence_bad": 3}\n')
    run = run_module(
        "recipes.pretrain_mlm", "--config", "recipes/configs/roberta-tiny.yaml",
        "--train_files", *corpus_files, "--tokenizer_name_or_path", str(bpe_tokenizer_dir),
        "--output_dir", str(tmp_path / "run"), *tiny(), "--minimal_pairs", str(broken),
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-3000:]
    assert (
        f"`minimal_pairs`: {broken} line 1 has an empty or non-string `sentence_bad`" in run.stderr
    )
    assert "Traceback" not in run.stderr and not (tmp_path / "run").exists()
