"""Shared test helpers: fixture paths and running a module as a real process."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def hub_env(hub, cwd: Path, token: str | None = None) -> dict[str, str]:
    """The environment of a process that talks to the fake Hub `hub`: its own HF_HOME, no
    token but `token`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "HF_ENDPOINT": hub.url,  # read by huggingface_hub at import time
        "HF_HOME": str(cwd / "hf_home"),  # no cached login, no shared cache
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_DATASETS_OFFLINE": "1",  # the text is local; only the Hub is 127.0.0.1
        "NO_PROXY": "127.0.0.1",
    }
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run_against_hub(hub, module: str, *args: str, cwd: Path, token: str | None = None):
    """`python -m module args` against the fake Hub, in `cwd` (created empty if need be: a Hub
    id is then not a local path)."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env=hub_env(hub, cwd, token), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def run_module(module: str, *args: str, cwd=REPO, env=None, timeout=600):
    """Run `python -m module args` as a real process; return the CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


SHAPE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def tiny_settings(fixture: str = "mlm") -> dict:
    """tests/helpers/fixtures/tiny-FIXTURE.yaml: the one place a test's tiny model and run are written."""
    import yaml

    return yaml.safe_load((FIXTURES / f"tiny-{fixture}.yaml").read_text(encoding="utf-8"))


def tiny_shape() -> dict:
    """The tiny model's shape keys, for tests that build a config in-process."""
    return {k: v for k, v in tiny_settings().items() if k in SHAPE_KEYS}


def tiny(fixture: str = "mlm", shape: bool = True, **overrides) -> list[str]:
    """`--key value` arguments from the tiny fixture, with `overrides` applied (None drops a
    key); `tiny(shape=False)` leaves out the model shape (continued pretraining takes it from
    the checkpoint)."""
    settings = tiny_settings(fixture)
    if not shape:
        settings = {k: v for k, v in settings.items() if k not in SHAPE_KEYS}
    settings.update(overrides)
    args = []
    for key, value in settings.items():
        if value is not None:
            args += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return args


def tiny_model(model_cls, config_cls, vocab_size: int = 100, positions: int = 40, **kw):
    """A tiny model of the fixture's shape, seeded, in eval mode: for in-process model tests."""
    import torch

    torch.manual_seed(0)
    config = config_cls(
        vocab_size=vocab_size, max_position_embeddings=positions, **tiny_shape(), **kw
    )
    return model_cls(config).eval()
