"""The cards of what `python -m recipes.push` publishes: a finished run's own card, re-aimed at
the Hub id (its usage snippet and title) with the language and license the command gives; a
checkpoint's, written from its trainer_state.json and the run's run_config.yaml; a tokenizer's,
from tokenizer_training_args.json (tokenizer_training/train_tokenizer.py writes it at the end of
training, with the card)."""

import json
import re
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from recipes.arguments import DataArguments
from recipes.run_folder import TRAINER_STATE, read_run_config
from recipes.runs import revisions
from recipes.runs.card import (
    USER_METADATA,
    build_model_card,
    pretraining_sections,
    revisions_section,
    unset_fields,
)
from recipes.runs.metrics import perplexity

TOKENIZER_ARGS = "tokenizer_training_args.json"  # written by tokenizer_training/train_tokenizer.py
CARD = "README.md"
ALGORITHMS = {"bytelevel-bpe": "byte-level BPE", "wordpiece": "WordPiece"}
# pipeline task of a checkpoint, by the end of its architecture's class name
TASKS = {"ForMaskedLM": "fill-mask", "ForPreTraining": "fill-mask"}


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
    state = json.loads((folder / TRAINER_STATE).read_text())
    config = json.loads((folder / "config.json").read_text())
    recorded = read_run_config(folder.parent)
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
