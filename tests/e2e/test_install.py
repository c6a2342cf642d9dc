"""`pip install -e .` works: pyproject.toml finds the packages (configs included) and declares
requirements.txt's pins, and `python -m recipes.pretrain_mlm --help` then runs from any folder.

Offline and without touching torch: the fresh virtual environment sees this one's packages (a
.pth line), and pip installs the project alone (--no-deps, --no-index) with the setuptools
already here (--no-build-isolation), so nothing is downloaded, a CUDA torch least of all.
"""

import shutil
import subprocess
import sysconfig
import venv

from helpers import REPO

SOURCES = ("pyproject.toml", "requirements.txt", "LICENSE", "recipes", "tokenizer_training")


def run(*argv, cwd):
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_editable_install_runs_the_recipes_from_another_folder(tmp_path):
    # A copy of the project: building it writes into the source folder.
    project = tmp_path / "project"
    project.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, project / name)
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)  # pip and setuptools come from this environment
    python = str(env / "bin" / "python")
    site = run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
    )
    here = sysconfig.get_paths()["purelib"]
    (tmp_path / site.strip() / "_this_env.pth").write_text(
        f"import site; site.addsitedir({here!r})\n"
    )
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation", "-e", str(project), cwd=tmp_path)  # fmt: skip

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run(python, "-m", "recipes.pretrain_mlm", "--help", cwd=elsewhere)
    assert "--learning_rate" in out and "(default: 0.001, from the recipe)" in " ".join(out.split())
    assert "usage: python -m tokenizer_training.train_tokenizer" in run(
        python, "-m", "tokenizer_training.train_tokenizer", "--help", cwd=elsewhere
    )
    check = (
        "import importlib.metadata as m, importlib.resources as r, recipes; "
        "print(recipes.__file__); print(m.metadata('bert-from-scratch')['License-Expression']); "
        "print('\\n'.join(m.requires('bert-from-scratch'))); "
        "print((r.files('recipes') / 'configs' / 'modernbert-tiny.yaml').is_file())"
    )
    where, license_, *requires, config_found = run(python, "-c", check, cwd=elsewhere).split("\n")[
        :-1
    ]
    assert where.startswith(str(project / "recipes")) and config_found == "True"
    assert license_ == "Apache-2.0"
    pins = [
        line.strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert requires == pins  # the dependencies are requirements.txt's pins, every one
    # and this environment satisfies them, so the new one's `pip check` finds nothing missing
    assert "No broken requirements" in run(*pip, "check", cwd=elsewhere)
