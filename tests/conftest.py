"""Suite-wide isolation: no network beyond 127.0.0.1, no user caches or tokens; and the `slow`
marker by folder: everything under e2e/ and distributed/ trains in real processes.

    tests/unit/         fast: functions and small objects, no training process (`make test-fast`)
    tests/e2e/          real runs of the recipes, one process each (`slow`)
    tests/distributed/  real multi-process launches: DDP, FSDP over gloo (`slow`)
    tests/helpers/      shared helpers, the fake Hub server, the fixtures (corpus, tiny configs)

Environment is set before transformers/huggingface_hub are imported (they read it at import).
Subprocesses started by tests inherit it.
"""

import os
import tempfile

import pytest

_HOME = tempfile.mkdtemp(prefix="bfs-tests-hf-home-")
os.environ["HF_HOME"] = _HOME  # caches (datasets, hub) go here, not in ~/.cache
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)
# Nothing here downloads: the fake Hub tests pass endpoints explicitly.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from helpers import FIXTURES  # noqa: E402  (after the environment is set)

SLOW_FOLDERS = ("e2e", "distributed")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.parent.name in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def corpus_files() -> list[str]:
    """Two real public-domain texts (Shakespeare's sonnets and part of Macbeth), ~150 KB."""
    return sorted(str(p) for p in (FIXTURES / "corpus").glob("*.txt"))


def _tokenizer_trainer(tmp_path_factory, corpus_files, kind: str):
    """vocab_size -> a tokenizer of `kind` (a tokenizer_training config name) trained on the
    corpus, once per size per session, for tests that only read it."""
    from tokenizer_training.train_tokenizer import main as train_tokenizer

    trained = {}

    def train(vocab_size: int):
        if vocab_size not in trained:
            out = tmp_path_factory.mktemp(f"{kind}-{vocab_size}")
            train_tokenizer(
                ["--config", f"tokenizer_training/configs/{kind}.yaml"]
                + ["--output_dir", str(out), "--train_files", *corpus_files]
                + ["--vocab_size", str(vocab_size)]
            )
            trained[vocab_size] = out
        return trained[vocab_size]

    return train


@pytest.fixture(scope="session")
def train_bpe_tokenizer(tmp_path_factory, corpus_files):
    """vocab_size -> a byte-level BPE tokenizer trained on the corpus (read only)."""
    return _tokenizer_trainer(tmp_path_factory, corpus_files, "bytelevel-bpe")


@pytest.fixture(scope="session")
def train_wordpiece_tokenizer(tmp_path_factory, corpus_files):
    """vocab_size -> a WordPiece tokenizer trained on the corpus (read only)."""
    return _tokenizer_trainer(tmp_path_factory, corpus_files, "wordpiece")


@pytest.fixture(scope="session")
def bpe_tokenizer_dir(train_bpe_tokenizer):
    """An 800-token byte-level BPE tokenizer trained on the corpus."""
    return train_bpe_tokenizer(800)
