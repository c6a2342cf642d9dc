"""The README stays true: every path, make target and module it names exists."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
ROOT = README.parent
TEXT = README.read_text()

# Paths the README names in backticks or code blocks, e.g. `recipes/pretrain_mlm.py`.
PATH_RE = re.compile(
    r"(?<![\w./-])((?:recipes|tokenizer_training|tests|benchmarks|\.ci)/[\w./*-]+|"
    r"(?:Makefile|Dockerfile|requirements(?:-dev)?\.txt|pyproject\.toml))"
)
# Folders a run creates; they are named in the README but not shipped.
GENERATED = ("outputs/", "data/")


def named_paths() -> set[str]:
    paths = set()
    for match in PATH_RE.findall(TEXT):
        path = match.rstrip(".,:;)")
        if not path.startswith(GENERATED):
            paths.add(path)
    return paths


def test_every_named_path_exists():
    missing = [p for p in sorted(named_paths()) if not list(ROOT.glob(p))]
    assert not missing, f"README names paths that do not exist: {missing}"


def test_every_make_target_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", TEXT))
    assert named, "the README shows make commands"
    assert named <= targets, f"README names missing make targets: {named - targets}"


def test_every_python_module_exists():
    modules = set(re.findall(r"-m ((?:recipes|tokenizer_training|benchmarks)\.[\w.]+)", TEXT))
    assert modules
    for module in modules:
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"README runs `python -m {module}` but {path} does not exist"


def test_the_readme_names_the_two_commands():
    assert "make demo" in TEXT and "make test" in TEXT


def test_every_symbol_in_the_to_change_table_is_in_its_file():
    """ "`SYMBOL` in `path.py`" and "`path.py` (`SYMBOL`)" in "To change X, edit Y": the file
    defines or assigns that symbol, so the table cannot point at code that moved."""
    table = TEXT.split("## To change X, edit Y")[1]
    named = [
        (path, symbol)
        for symbols, path in re.findall(r"((?:`\w+`(?: / )?)+) in `([\w/]+\.py)`", table)
        for symbol in re.findall(r"`(\w+)`", symbols)
    ]
    named += re.findall(r"`([\w/]+\.py)` \(`(\w+)`\)", table)
    assert len(named) >= 8, named
    for path, symbol in named:
        source = (ROOT / path).read_text()
        assert re.search(rf"^(?:def |class )?{symbol}\b", source, re.M), f"{symbol} not in {path}"
