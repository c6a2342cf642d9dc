"""The library's parts import one way: a part may import the parts below it, never one above.
A part that imports only what is below it can be read alone; a circle cannot.

Every import counts, a function's lazy one included: it is the same dependency, paid later.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. Settings sit above models because the argument classes and `--help` read the
# family records (choices, shapes, help texts); runs use settings, families and data; the
# fine-tuning and evaluation parts build on runs; entry scripts (recipes/<name>.py with a main),
# tasks, the tokenizer trainer and the benchmarks are the top and import anything below.
PARTS = [
    ("base", ["recipes.errors", "recipes.precision", "recipes.run_folder", "recipes.evaluation"]),
    ("data", ["recipes.data"]),
    ("models", ["recipes.models"]),
    (
        "settings",
        [
            "recipes.config",
            "recipes.arguments",
            "recipes.shape_arguments",
            "recipes.finetune_arguments",
            "recipes.budget_arguments",
            "recipes.help",
            "recipes.old_names",
            "recipes.push_arguments",
            "recipes.settings_record",
        ],
    ),
    ("runs", ["recipes.runs"]),
    ("finetune", ["recipes.finetune"]),
    ("scoring", ["recipes.scoring"]),
    ("publishing", ["recipes.publishing"]),
]
RANK = {"finetune": 5, "scoring": 5, "publishing": 5}  # side by side: neither imports the other
TOP = 6


def part_of(module: str) -> tuple[str, int]:
    for rank, (name, prefixes) in enumerate(PARTS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name, RANK.get(name, rank)
    return "entry", TOP  # recipes/<entry>.py, recipes.tasks, tokenizer_training, benchmarks


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of the project's own code in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from recipes import config` imports recipes.config
                sub = f"{node.module}.{alias.name}"
                is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").is_file()
                found.append((node.lineno, sub if is_module else node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in found if m.split(".")[0] in ("recipes", "tokenizer_training")]


def sources() -> list[Path]:
    return sorted(
        p
        for folder in ("recipes", "tokenizer_training", "benchmarks")
        for p in (ROOT / folder).rglob("*.py")
    )


def test_every_import_goes_down_or_stays_in_its_part():
    wrong = []
    for path in sources():
        here, rank = part_of(module_name(path))
        for line, target in imported(path):
            there, target_rank = part_of(target)
            if there != here and target_rank >= rank:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({here}) imports {target} ({there})")
    assert not wrong, "imports against the order of parts:\n" + "\n".join(wrong)


def test_every_library_module_has_a_part():
    """A new module at recipes/ top level is an entry script (it runs as __main__) or is named in
    PARTS; otherwise nothing would stop the library from importing it."""
    unplaced = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "recipes").glob("*.py")
        if p.name != "__init__.py"
        and part_of(module_name(p))[0] == "entry"
        and '__name__ == "__main__"' not in p.read_text(encoding="utf-8")
    ]
    assert not unplaced, f"library modules without a part in PARTS: {unplaced}"


@pytest.mark.parametrize(
    ("module", "part"),
    [("recipes.run_folder", "base"), ("recipes.models.families", "models"),
     ("recipes.arguments", "settings"), ("recipes.pretrain_mlm", "entry")],
)  # fmt: skip
def test_parts_are_read_from_the_module_name(module, part):
    assert part_of(module)[0] == part


def test_the_check_sees_an_import_against_the_order(tmp_path):
    """The rule itself: a lazy import of runs inside a models function is found."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from recipes.runs.finish import finish_run\n")
    assert imported(source) == [(2, "recipes.runs.finish")]
    assert part_of("recipes.runs.finish")[1] > part_of("recipes.models.checkpoints")[1]
