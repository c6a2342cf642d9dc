"""The README and docs/measurements.md stay true: every path, make target, module, link and
symbol they name exists, the file tree matches the repository, and the README stays a manual."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MEASUREMENTS = ROOT / "docs" / "measurements.md"
TEXT = README.read_text()
DOCS = {README: TEXT, MEASUREMENTS: MEASUREMENTS.read_text()}
IDS = [p.relative_to(ROOT).as_posix() for p in DOCS]

# Paths named in backticks, code blocks or prose, e.g. `recipes/pretrain_mlm.py`.
PATH_RE = re.compile(
    r"(?<![\w./-])((?:recipes|tokenizer_training|tests|benchmarks|docs|\.ci)/[\w./*-]+|"
    r"(?:Makefile|Dockerfile|requirements(?:-dev)?\.txt|pyproject\.toml))"
)
# Folders a run creates; named in the docs but not shipped.
GENERATED = ("outputs/", "data/")


def named_paths(text: str) -> set[str]:
    paths = set()
    for match in PATH_RE.findall(text):
        path = match.rstrip(".,:;)")
        if not path.startswith(GENERATED):
            paths.add(path)
    return paths


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_named_path_exists(doc):
    missing = [p for p in sorted(named_paths(DOCS[doc])) if not list(ROOT.glob(p))]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_make_target_exists(doc):
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", DOCS[doc]))
    assert named, f"{doc.name} shows make commands"
    assert named <= targets, f"{doc.name} names missing make targets: {named - targets}"


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_python_module_exists(doc):
    modules = set(re.findall(r"-m ((?:recipes|tokenizer_training|benchmarks)\.[\w.]+)", DOCS[doc]))
    assert modules
    for module in modules:
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"{doc.name} runs `python -m {module}` but {path} does not exist"


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {github_anchor(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_relative_link_and_anchor_resolves(doc):
    """[text](path#anchor) links, relative to the linking file: the file exists, and the
    anchor is one of its headings (README lines link each result to its measurement)."""
    links = re.findall(r"\]\(([^)\s]+)\)", DOCS[doc])
    assert links
    for link in links:
        if re.match(r"\w+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.name} links to {link}, which does not exist"
        if anchor:
            assert anchor in anchors(path), f"{doc.name} links to {link}: no such heading"


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_no_tracker_numbers(doc):
    assert not re.search(r"\b(?:issue|tracker) #?\d+", DOCS[doc], re.I)


def test_the_readme_names_the_two_commands():
    assert "make demo" in TEXT and "make test" in TEXT


def test_the_readme_is_a_manual_with_own_data_near_the_top():
    lines = TEXT.splitlines()
    # publishing, evaluating, time budgets and a fourth family each have their place in the manual
    assert len(lines) <= 530, f"README.md has {len(lines)} lines: move narratives to docs/"
    own_data = next(i for i, line in enumerate(lines, 1) if line == "## Train on your own text")
    assert own_data <= 130, f"the own-data section starts at line {own_data}"
    assert "https://huggingface.co/blog/how-to-train" in TEXT  # the tutorial, named and linked


def test_every_accuracy_the_readme_states_is_in_the_measurements():
    """A result the README states in one line (0.316, 0.550, ...) is written up, with its
    machine and date, in docs/measurements.md."""
    figures = set(re.findall(r"(?<![\d.])0\.\d{3}(?!\d)", TEXT))
    assert figures
    missing = sorted(f for f in figures if f not in DOCS[MEASUREMENTS])
    assert not missing, f"README figures not in docs/measurements.md: {missing}"


def file_tree() -> list[str]:
    """The paths of the README's "## Files" block: one entry per line, indented two spaces
    per folder level; a folder ends with '/'; 'a.py, b.py' names two files."""
    block = TEXT.split("## Files")[1].split("```")[1]
    paths, folders = [], []  # folders: (indent, path) of the enclosing folders
    for line in block.strip("\n").splitlines():
        indent = len(line) - len(line.lstrip(" "))
        name = re.split(r"\s{2,}", line.strip())[0]
        while folders and folders[-1][0] >= indent:
            folders.pop()
        prefix = folders[-1][1] if folders else ""
        paths += [prefix + n for n in name.split(", ")]
        if name.endswith("/"):
            folders.append((indent, prefix + name))
    return paths


def test_every_file_in_the_tree_exists():
    tree = file_tree()
    assert len(tree) >= 40, tree
    missing = [p for p in tree if not list(ROOT.glob(p.rstrip("/")))]
    assert not missing, f"the README's file tree names paths that do not exist: {missing}"


def test_every_python_module_is_in_the_tree():
    tree = set(file_tree())
    modules = [
        p.relative_to(ROOT).as_posix()
        for folder in ("recipes", "tokenizer_training", "benchmarks")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.name != "__init__.py"
    ]
    missing = [m for m in modules if m not in tree]
    assert not missing, f"the README's file tree leaves out: {missing}"


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


CONFIGS = sorted(
    [
        *(ROOT / "recipes/configs").rglob("*.yaml"),
        *(ROOT / "tokenizer_training/configs").glob("*.yaml"),
    ]
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_config_header_says_hardware_time_and_result_and_links_its_measurement(path):
    """A config opens with what it is and its command, then one line each for hardware, expected
    time and result; measured figures link to docs/measurements.md, whose narrative stays there."""
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    for field in ("Hardware", "Time", "Result"):
        assert len(re.findall(rf"^# {field}: ", text, re.M)) == 1, (
            f"{path.name}: one `{field}:` line"
        )
    for anchor in re.findall(r"docs/measurements\.md#([\w-]+)", text):
        assert anchor in anchors(MEASUREMENTS), f"{path.name} links to a missing section: {anchor}"
    assert not re.search(r"\b(?:issue|tracker) #?\d+", path.read_text(), re.I)
    assert "would not parse" not in text  # bf16: auto runs on any machine; no `--bf16 true` advice
