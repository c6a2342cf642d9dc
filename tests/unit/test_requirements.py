"""requirements.txt pins exactly what the code imports: every third-party import is pinned (not
left to arrive as some other package's dependency), and every pin is used."""

import ast
import re
import sys
from importlib.metadata import packages_distributions

from helpers import REPO

SOURCE_FOLDERS = ("recipes", "tokenizer_training", "benchmarks")
LOCAL = {"recipes", "tokenizer_training", "benchmarks"}

# Pins that nothing here imports, and why each is needed anyway (keep requirements.txt's
# comment in step).
NOT_IMPORTED = {
    "accelerate": "Trainer requires it; `accelerate launch` starts multi-GPU and multi-node runs",
    "tensorboard": "`report_to: tensorboard` (README): Trainer's callback writes event files",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def pinned() -> dict[str, str]:
    """Distribution name (normalized) -> version, from `name==version` lines."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([\w.+!-]+)", line)
            assert match, f"requirements.txt: `{line}` is not pinned as name==version"
            pins[normalize(match.group(1))] = match.group(2)
    return pins


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, counting imports inside functions too."""
    found: dict[str, set[str]] = {}
    for folder in SOURCE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in LOCAL:
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_is_pinned():
    imports = third_party_imports()
    assert {"torch", "transformers", "yaml"} <= set(imports)  # the scan sees real imports
    pins = pinned()
    dists = packages_distributions()
    for module, files in sorted(imports.items()):
        owners = [normalize(d) for d in dists.get(module, [])]
        assert owners, f"`import {module}` ({', '.join(sorted(files))}) is not installed"
        assert any(o in pins for o in owners), (
            f"`import {module}` ({', '.join(sorted(files))}) comes from {owners}, which "
            "requirements.txt does not pin: add `name==version`"
        )


def test_every_pin_is_imported_or_explained():
    dists = packages_distributions()
    imported = {normalize(d) for module in third_party_imports() for d in dists.get(module, [])}
    unused = set(pinned()) - imported - set(NOT_IMPORTED)
    assert not unused, f"requirements.txt pins {sorted(unused)}, which nothing imports: drop them"
    stale = set(NOT_IMPORTED) - set(pinned())
    assert not stale, f"NOT_IMPORTED names {sorted(stale)}, which requirements.txt does not pin"
    assert not set(NOT_IMPORTED) & imported, "a NOT_IMPORTED package is imported after all"


def test_python_version_is_the_same_in_pyproject_ruff_makefile_and_readme():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11"  # transformers 5, numpy 2.4, ...
    assert project["tool"]["ruff"]["target-version"] == "py311"
    assert "(3, 11)" in (REPO / "Makefile").read_text()  # make install refuses an older one
    readme = (REPO / "README.md").read_text()
    assert "Python 3.11+" in readme and "3.10" not in readme
    assert sys.version_info >= (3, 11)


def test_make_install_takes_the_cpu_torch_from_an_index_when_asked():
    import subprocess

    def dry_run(*args):
        command = ["make", "-n", "-B", "install", *args]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True).stdout

    index = "https://download.pytorch.org/whl/cpu"
    lines = dry_run(f"TORCH_INDEX={index}").splitlines()
    torch_line = next(i for i, line in enumerate(lines) if f"--index-url {index}" in line)
    assert f"torch=={pinned()['torch']} " in lines[torch_line] + " "  # the pinned version
    requirements = next(i for i, line in enumerate(lines) if "-r requirements.txt" in line)
    assert torch_line < requirements  # first, so pip keeps it
    assert "--index-url" not in dry_run()  # by default: the package index as configured
    # then the project itself, so `python -m recipes.<name>` runs from any folder
    editable = next(i for i, line in enumerate(lines) if line.endswith(" -e ."))
    assert editable > requirements and "--no-deps" in lines[editable]
    assert "TORCH_INDEX=" in (REPO / "README.md").read_text()


def test_pyproject_installs_the_pinned_requirements_and_the_packages():
    """`pip install -e .` (tests/e2e/test_install.py does it): dependencies are read from
    requirements.txt, which must therefore hold plain requirements, no comment after one."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["dependencies"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {
        "file": ["requirements.txt"]
    }
    for line in (REPO / "requirements.txt").read_text().splitlines():
        assert "#" not in line or line.startswith("#"), f"requirements.txt: `{line}`"
    found = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert found == ["recipes*", "tokenizer_training*"]
    assert "*.yaml" in project["tool"]["setuptools"]["package-data"]["*"]  # the configs


def test_licensed_apache_2_and_described_as_what_it_trains():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert all(name in project["description"] for name in ("ModernBERT", "RoBERTa", "BERT"))


def test_tensorboard_is_a_runtime_requirement_so_the_image_has_it():
    # README documents `report_to: tensorboard`; the Docker image installs requirements.txt only
    assert "tensorboard" in pinned()
    assert not re.search(r"^tensorboard", (REPO / "requirements-dev.txt").read_text(), re.M)
