"""Publish a folder after the fact (`python -m recipes.push`): a finished run of any recipe, one
checkpoint-N of a run, or a tokenizer; no training. What the folder is decides its card: a run's
own card, re-aimed at the Hub id (its usage snippet and title) with the language and license the
command gives; a checkpoint's, written from its trainer_state.json and the run's run_config.yaml;
a tokenizer's, from tokenizer_training_args.json. The card is written into the folder (README.md)
and the folder pushed; files the repo already holds byte for byte are not sent again, and a push
that changes nothing says so.
"""

import json
import re
from pathlib import Path

import yaml
from huggingface_hub import ModelCard, ModelCardData

from recipes.arguments import DataArguments
from recipes.errors import UserError
from recipes.runs import hub, revisions
from recipes.runs.card import (
    USER_METADATA,
    build_model_card,
    pretraining_sections,
    revisions_section,
    unset_fields,
)
from recipes.runs.metrics import perplexity
from recipes.runs.start import FINISHED_MARKER, RUN_CONFIG, checkpoint_is_complete

TOKENIZER_ARGS = "tokenizer_training_args.json"  # written by tokenizer_training/train_tokenizer.py
CARD = "README.md"
ALGORITHMS = {"bytelevel-bpe": "byte-level BPE", "wordpiece": "WordPiece"}
# pipeline task of a checkpoint, by the end of its architecture's class name
TASKS = {"ForMaskedLM": "fill-mask", "ForPreTraining": "fill-mask"}


# --------------------------------------------------------------------------- what the folder is
def folder_kind(folder: Path) -> str:
    """'run', 'checkpoint' or 'tokenizer'; anything else is refused with what to do instead."""
    what = "a recipe's output_dir, a checkpoint-N folder in it, or a tokenizer folder"
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: give {what}.")
    has_model = (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
    if (folder / FINISHED_MARKER).is_file():
        if not has_model or not (folder / CARD).is_file():
            raise UserError(
                f"{folder} has {FINISHED_MARKER} but no model (config.json, *.safetensors) or "
                f"no card ({CARD}): it is not a finished run of these recipes."
            )
        return "run"
    if (folder / "trainer_state.json").exists() or re.fullmatch(r"checkpoint-\d+", folder.name):
        if not (checkpoint_is_complete(folder) and has_model):
            raise UserError(
                f"{folder} is an incomplete checkpoint (no readable trainer_state.json, "
                "config.json or *.safetensors: the run stopped while writing it); publish an "
                "older checkpoint-N."
            )
        return "checkpoint"
    if (folder / "tokenizer.json").is_file() and not (folder / "config.json").exists():
        return "tokenizer"
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: p.stat().st_mtime)
    if checkpoints:
        raise UserError(
            f"{folder} holds no finished model: its run has not finished (no "
            f"{FINISHED_MARKER}). Rerun its command to resume it, or publish a checkpoint: "
            f"python -m recipes.push {checkpoints[-1]} --hub_model_id ..."
        )
    raise UserError(
        f"{folder} holds no finished model, checkpoint or tokenizer (no {FINISHED_MARKER}, "
        f"trainer_state.json or tokenizer.json): give {what}."
    )


# --------------------------------------------------------------------------- cards
def run_card(folder: Path, repo_id: str, language=None, license=None) -> ModelCard:
    """The run's own card, aimed at `repo_id`: the title, every snippet that loaded the model
    from where the card used to point, and the revisions pushed since."""
    card = ModelCard((folder / CARD).read_text(encoding="utf-8"))
    body = card.text
    old = re.search(r'pipeline\("[^"]+", model="([^"]+)"\)', body)
    if old:
        body = body.replace(f'"{old.group(1)}"', f'"{repo_id}"')
    name = Path(repo_id).name
    body = re.sub(r"^# .*$", f"# {name}", body, count=1, flags=re.M)
    card.data.model_name = name
    card.data.language, card.data.license = _metadata(card.data, language, license)
    for key in USER_METADATA:  # the "not set" line of a field now set
        if getattr(card.data, key, None):
            body = re.sub(rf"^\*\*{key}: not set\*\*.*\n\n", "", body, flags=re.M)
    pushed = revisions.read_revisions(folder)
    if pushed:
        section = "\n\n".join(revisions_section(repo_id, pushed)) + "\n\n"
        body = re.sub(r"## Revisions\n.*?(?=## )", "", body, flags=re.S)
        body = body.replace("## How to use", section + "## How to use")
    return ModelCard(f"---\n{card.data.to_yaml()}\n---\n{body}")


def _metadata(data: ModelCardData, language, license) -> tuple:
    language = language or data.language
    if isinstance(language, str) and "," in language:  # `--language en,fr`
        language = [code.strip() for code in language.split(",")]
    return language, license or data.license


def checkpoint_card(folder: Path, repo_id: str, language=None, license=None) -> ModelCard:
    """A card for checkpoint-N: its step, tokens seen, last held-out numbers, and the run's
    data, language and license as its run_config.yaml records them."""
    state = json.loads((folder / "trainer_state.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    recorded = _recorded(folder.parent / RUN_CONFIG)
    language, license = _metadata(
        ModelCardData(
            language=recorded.get("language"),
            license=recorded.get("license", DataArguments.license),
        ),
        language,
        license,
    )
    step, tokens = state["global_step"], state.get("num_input_tokens_seen") or 0
    evals = [e for e in state.get("log_history", []) if "eval_loss" in e]
    metrics = {k: v for k, v in (evals[-1] if evals else {}).items() if k.startswith("eval_")}
    if "eval_loss" in metrics:  # exp of the masked-LM loss alone (BERT's eval_loss adds NSP)
        metrics["perplexity"] = perplexity(metrics.get("eval_mlm_loss", metrics["eval_loss"]))
    arch = (config.get("architectures") or ["?"])[0]
    task = next((t for end, t in TASKS.items() if arch.endswith(end)), None)
    what = (
        f"Checkpoint at step {step:,} of {state.get('max_steps') or 0:,} ({tokens:,} tokens seen)"
    )
    hyper = {"step": step, "tokens seen": tokens}
    hyper |= {
        k: recorded[k] for k in ("max_seq_length", "learning_rate", "max_steps") if k in recorded
    }
    source = recorded.get("dataset_name") or ", ".join(recorded.get("train_files") or []) or "?"
    if task != "fill-mask":
        return build_model_card(
            repo_id=repo_id,
            metadata=dict(pipeline_tag="text-classification", language=language, license=license),
            summary=f"{what} of a {arch} run.",
            sections=[],
            hyperparameters=hyper,
            usage_input='"..."',
        )
    mask = json.loads((folder / "tokenizer_config.json").read_text()).get("mask_token", "<mask>")
    widget = _parent_widget(folder.parent) or f"The {mask} of the matter."
    parts = pretraining_sections(
        model_type=config.get("model_type", "?"),
        language=language,
        license=license,
        datasets=[recorded["dataset_name"]] if recorded.get("dataset_name") else [],
        train_data_description=f"{source} ({tokens:,} tokens seen up to this checkpoint)",
        mask_token=mask,
        widget_text=widget,
        metrics=metrics,
    )
    parts["summary"] = f"{what}. " + parts["summary"]
    return build_model_card(repo_id=repo_id, **parts, hyperparameters=hyper)


def _recorded(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _parent_widget(run: Path) -> str | None:
    try:
        return ModelCard((run / CARD).read_text(encoding="utf-8")).data.widget[0]["text"]
    except (OSError, AttributeError, IndexError, KeyError, TypeError):
        return None


def tokenizer_card(folder: Path, repo_id: str, language=None, license=None) -> ModelCard:
    """A tokenizer's card: algorithm, vocabulary, special tokens, the text it was trained on,
    and how to load it and pretrain on it."""
    from tokenizers import Tokenizer

    meta = (
        json.loads((folder / TOKENIZER_ARGS).read_text())
        if (folder / TOKENIZER_ARGS).is_file()
        else {}
    )
    args, data = meta.get("tokenizer_args", {}), meta.get("data_args", {})
    config = (
        json.loads((folder / "tokenizer_config.json").read_text())
        if (folder / "tokenizer_config.json").is_file()
        else {}
    )
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    algorithm = ALGORITHMS.get(
        args.get("tokenizer_type"), json.loads(tok.to_str())["model"]["type"]
    )
    language, license = _metadata(
        ModelCardData(language=args.get("language"), license=args.get("license")), language, license
    )
    dataset = data.get("dataset_name")
    if dataset:
        source = f"[{dataset}](https://huggingface.co/datasets/{dataset})"
        source += f" ({data['dataset_config_name']})" if data.get("dataset_config_name") else ""
    else:
        source = ", ".join(f"`{Path(f).name}`" for f in data.get("train_files") or []) or "?"
    texts = meta.get("texts_seen")
    rows = {
        "algorithm": algorithm,
        "vocabulary size": f"{tok.get_vocab_size():,}",
        "special tokens": " ".join(f"`{t}`" for t in specials),
        "lowercase": args.get("lowercase") if args.get("tokenizer_type") == "wordpiece" else None,
        "model_max_length": config.get("model_max_length"),
    }
    table = "| | |\n| --- | --- |\n" + "\n".join(
        f"| {k} | {v} |" for k, v in rows.items() if v is not None
    )
    data_card = ModelCardData(
        library_name="transformers", language=language, license=license,
        tags=["tokenizer", args.get("tokenizer_type") or algorithm],
        datasets=[dataset] if dataset else None,
    )  # fmt: skip
    name = Path(repo_id).name
    body = [
        f"# {name}",
        f"A {algorithm} tokenizer of {tok.get_vocab_size():,} tokens, trained from scratch "
        "with tokenizer_training/train_tokenizer.py. It holds no model: pretrain one on it.",
        table,
        "## Training text",
        f"{source}" + (f": {texts:,} texts." if texts else "."),
        *[f"**{k}: not set**." for k in unset_fields({"language": language, "license": license})],
        "## How to use",
        "```python\nfrom transformers import AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n'
        'print(tokenizer.tokenize("Hello world"))\n```',
        "Pretrain a model on it: `python -m recipes.pretrain_mlm --config "
        f"recipes/configs/modernbert-tiny.yaml --tokenizer_name_or_path {repo_id} "
        "--train_files my.txt`.",
    ]
    return ModelCard(f"---\n{data_card.to_yaml()}\n---\n\n" + "\n\n".join(body) + "\n")


CARDS = {"run": run_card, "checkpoint": checkpoint_card, "tokenizer": tokenizer_card}


# --------------------------------------------------------------------------- publish
def publish(
    folder: str | Path,
    hub_model_id: str,
    *,
    language: str | None = None,
    license: str | None = None,
    private: bool | None = None,
    revision: str = "main",
    commit_message: str | None = None,
) -> str:
    """Check the folder, then Hub access; push revisions a run left unpushed; write the card;
    push. Returns the commit URL."""
    folder = Path(folder)
    kind = folder_kind(folder)  # a folder that cannot be published fails before any network
    repo_id = hub.check_hub_access(hub_model_id, private=private)
    if kind == "run":
        for staged in revisions.staged(folder):
            print(f"pushed revision {revisions.push_staged(staged, folder, repo_id)}")
    text = str(CARDS[kind](folder, repo_id, language, license))
    card = folder / CARD
    if not card.is_file() or card.read_text(encoding="utf-8") != text:
        card.write_text(text, encoding="utf-8")
    allow = revisions.REVISION_PATTERNS + [CARD] if kind == "checkpoint" else None
    url, changed = hub.upload(
        folder, repo_id, revision=revision, allow_patterns=allow,
        commit_message=commit_message or f"Publish {folder.name} ({kind}) with recipes.push",
    )  # fmt: skip
    where = f"{repo_id}" + (f" (revision {revision})" if revision != "main" else "")
    if changed:
        print(f"Pushed the {kind} in {folder} to {url}")
    else:
        print(f"nothing changed since the last push: {where} already holds {folder} ({url})")
    return url
