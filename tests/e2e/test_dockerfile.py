"""Dockerfile, accelerate configs and slurm.sh: every file they name exists, every config loads
with accelerate's own loader, and every launch line parses with accelerate's own parser."""

import re
import shlex
import shutil
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
CONFIG_DIR = REPO / "recipes" / "accelerate_configs"
SLURM = CONFIG_DIR / "slurm.sh"
EXPECTED_TYPES = {
    "single_gpu.yaml": "NO",
    "ddp.yaml": "MULTI_GPU",
    "fsdp.yaml": "FSDP",
    "deepspeed_zero2.yaml": "DEEPSPEED",
    "deepspeed_zero3.yaml": "DEEPSPEED",
    "multi_node.yaml": "MULTI_GPU",
}
CONFIGS = sorted(EXPECTED_TYPES)
# Repo paths and recipe modules as they appear in launch lines and comments.
REPO_PATH = re.compile(r"(?:recipes|tokenizer_training|tests)/[\w./-]*\w\.(?:yaml|yml|sh|py|txt)")
MODULE = re.compile(r"(?:^|\s)-m\s+((?:recipes|tokenizer_training)\.[\w.]+)")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


def dockerignored(rel: str) -> bool:
    ignore = REPO / ".dockerignore"
    if not ignore.exists():
        return False
    patterns = [p.strip() for p in ignore.read_text().splitlines() if p.strip()]
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch(prefix, p) for p in patterns if not p.startswith(("#", "!")) for prefix in prefixes
    )


def assert_named_paths_exist(text: str, where: str) -> None:
    for rel in REPO_PATH.findall(text):
        assert (REPO / rel).is_file(), f"{where} names {rel}, which does not exist"
    for module in MODULE.findall(text):
        path = REPO / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"{where} runs -m {module}, but {path} does not exist"


def torch_pin() -> str:
    requirements = (REPO / "requirements.txt").read_text()
    match = re.search(r"^torch==([\w.]+)", requirements, re.MULTILINE)
    assert match, "requirements.txt should pin torch==X.Y.Z on its own line"
    return match.group(1)


# --------------------------------------------------------------------------- Dockerfile
def test_dockerfile_copies_files_that_exist_and_are_not_dockerignored():
    copies = [args for instr, args in dockerfile_instructions() if instr in ("COPY", "ADD")]
    assert copies, "the Dockerfile copies nothing"
    for args in copies:
        *sources, _dest = [a for a in shlex.split(args) if not a.startswith("--")]
        for source in sources:
            if source == ".":
                continue
            assert list(REPO.glob(source)), f"Dockerfile COPYs {source}, which does not exist"
            assert not dockerignored(source), f"{source} is COPYed but .dockerignore excludes it"


def test_dockerignore_keeps_outputs_and_git_out_but_recipes_in():
    for rel in ("outputs/run/model.safetensors", ".git/config", "data/corpus.txt"):
        assert dockerignored(rel)
    for rel in (
        "requirements.txt",
        "recipes/pretrain_mlm.py",
        "recipes/accelerate_configs/ddp.yaml",
    ):
        assert not dockerignored(rel)


def test_dockerfile_names_and_runs_only_existing_files():
    assert_named_paths_exist(DOCKERFILE.read_text(), "Dockerfile")
    assert dockerfile_instructions()[-1][0] in ("CMD", "ENTRYPOINT")


def test_base_image_is_pinned_to_the_required_torch():
    [image] = [args for instr, args in dockerfile_instructions() if instr == "FROM"]
    name, _, tag = image.partition(":")
    assert name == "pytorch/pytorch"
    assert tag.startswith(f"{torch_pin()}-cuda"), f"{image} does not ship torch {torch_pin()}"
    assert "runtime" in tag or "devel" in tag


def test_requirements_filter_drops_torch_and_nothing_else(tmp_path):
    [run] = [a for i, a in dockerfile_instructions() if i == "RUN" and "requirements.txt" in a]
    out = tmp_path / "filtered.txt"
    sample = (
        "torch==2.13.0\ntorch >= 2.4 ; sys_platform == 'linux'\ntorchvision==0.28.0\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\ntransformers==5.23.0\n"
    )
    cases = [(sample, ["torchvision==0.28.0", "transformers==5.23.0"])]
    real = (REPO / "requirements.txt").read_text()
    keep = [
        line
        for line in real.splitlines()
        if not re.match(r"\s*torch\s*([=<>!~;\[]|$)", line) and "download.pytorch.org" not in line
    ]
    cases.append((real, keep))
    for requirements, expected in cases:
        (tmp_path / "requirements.txt").write_text(requirements)
        command = run.replace("/tmp/requirements-docker.txt", str(out))
        subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
        assert out.read_text().splitlines() == expected


def test_image_installs_the_project_and_tensorboard():
    steps = dockerfile_instructions()
    code = steps.index(("COPY", ". ."))
    [editable] = [i for i, (instr, args) in enumerate(steps) if instr == "RUN" and "-e ." in args]
    assert editable > code and "--no-deps" in steps[editable][1]  # deps: requirements.txt, above
    # README documents `report_to: tensorboard`: the image's requirements carry it
    assert re.search(r"^tensorboard==", (REPO / "requirements.txt").read_text(), re.MULTILINE)


# --------------------------------------------------------------------------- accelerate configs
def test_every_expected_config_is_shipped():
    assert sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) == CONFIGS


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads_with_accelerate(name):
    path = CONFIG_DIR / name
    config = load_config_from_file(str(path))  # rejects unknown top-level keys
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type.value == EXPECTED_TYPES[name]
    assert config.num_processes >= 1 and config.num_machines >= 1
    # Nested fsdp/deepspeed keys become launch arguments; a misspelt one is silently ignored.
    known = {action.dest for action in launch_command_parser()._actions}
    nested = list(config.fsdp_config) + list(config.deepspeed_config)
    assert not [key for key in nested if key not in known], f"{name}: unknown nested keys"
    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", "recipes.x"])
    _validate_launch_command(args)  # what `accelerate launch` checks before starting anything


@pytest.mark.parametrize("name", CONFIGS)
def test_config_opens_with_its_own_launch_line(name):
    text = (CONFIG_DIR / name).read_text()
    header = [line for line in text.splitlines() if line.startswith("#")][:12]
    assert text.startswith("#"), f"{name} should open with a comment: hardware and launch line"
    [launch] = [line.lstrip("# ") for line in header if "accelerate launch" in line]
    argv = shlex.split(launch.split("accelerate launch", 1)[1])
    args = launch_command_parser().parse_args(argv)
    assert args.config_file == f"recipes/accelerate_configs/{name}"
    assert args.module and args.training_script == "recipes.pretrain_mlm"
    assert_named_paths_exist(text, name)


def test_fsdp_config_leaves_the_layer_class_to_the_family():
    # A class named here fails every other family ("Could not find the transformer layer
    # class"); the recipe names each family's own (recipes/models/families.py layer_class).
    fsdp = yaml.safe_load((CONFIG_DIR / "fsdp.yaml").read_text())["fsdp_config"]
    assert "fsdp_transformer_layer_cls_to_wrap" not in fsdp
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"


def test_zero3_gathers_a_model_from_pretrained_loads():
    config = load_config_from_file(str(CONFIG_DIR / "deepspeed_zero3.yaml"))
    assert config.deepspeed_config["zero_stage"] == 3
    assert config.deepspeed_config["zero3_save_16bit_model"] is True


# --------------------------------------------------------------------------- docker run
def docker_runs(text: str) -> list[list[str]]:
    """Every `docker run ...` command in `text` (README code blocks, Dockerfile comments),
    continuation lines joined, as argv."""
    text = re.sub(r"\\\n\s*(?:#\s*)?", " ", text)
    return [shlex.split(m) for m in re.findall(r"docker run [^\n`]*", text)]


def host_paths_read(argv: list[str]) -> set[str]:
    """Repo-relative paths a docker run's recipe reads: its --config file and what that names
    (train_files, tokenizer_name_or_path), first component only (data, outputs, ...)."""
    read = set()
    for i, arg in enumerate(argv[:-1]):
        if arg == "--config":
            config = yaml.safe_load((REPO / argv[i + 1]).read_text())
            paths = list(config.get("train_files") or []) + [config["tokenizer_name_or_path"]]
            read |= {p.split("/")[0] for p in paths}
    return read


def mounts(argv: list[str]) -> set[str]:
    targets = {
        argv[i + 1].split(":")[1] for i, a in enumerate(argv[:-1]) if a in ("-v", "--volume")
    }
    return {t.removeprefix("/workspace/") for t in targets if t.startswith("/workspace/")}


@pytest.mark.parametrize("where", ["README.md", "Dockerfile"])
def test_docker_run_mounts_every_host_path_its_recipe_reads(where):
    runs = docker_runs((REPO / where).read_text())
    assert runs, f"{where} shows no docker run"
    for argv in runs:
        for top in host_paths_read(argv):
            in_image = (REPO / top).exists() and not dockerignored(top)
            assert in_image or top in mounts(argv), (
                f"{where}: `docker run ... {' '.join(argv[-4:])}` reads {top}/, which "
                ".dockerignore keeps out of the image and no -v mounts"
            )


# --------------------------------------------------------------------------- SLURM
def test_slurm_script_matches_multi_node_config():
    text = SLURM.read_text()
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(SLURM)], check=True)
    assert "--config_file recipes/accelerate_configs/multi_node.yaml" in text
    assert_named_paths_exist(text, "slurm.sh")
    nodes = int(re.search(r"^#SBATCH --nodes=(\d+)", text, re.MULTILINE).group(1))
    gpus = int(re.search(r"^#SBATCH --gres=gpu:(\d+)", text, re.MULTILINE).group(1))
    assert f"GPUS_PER_NODE={gpus}" in text
    config = load_config_from_file(str(CONFIG_DIR / "multi_node.yaml"))
    assert (config.num_machines, config.num_processes) == (nodes, nodes * gpus)
    for flag in ("--num_machines", "--machine_rank", "--main_process_ip", "--main_process_port"):
        assert flag in text
