"""Publishing pieces without training: the fake Hub's branches, the card re-aimed at a Hub id,
staging a checkpoint for its revision, log-spaced saves, and the options' checks."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers.hub_server import run_hub_server
from huggingface_hub import HfApi, ModelCard, constants, hf_hub_download
from transformers import TrainerControl, TrainerState

from recipes.errors import UserError
from recipes.publishing.cards import run_card
from recipes.publishing.publish import folder_kind
from recipes.runs import revisions
from recipes.runs.card import build_model_card, pretraining_sections

GOOD = "hf_good_token_for_alice"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    with run_hub_server(tmp_path, tokens={GOOD: "alice"}) as server:
        yield server
    assert server.unhandled == [], "a client used a route the fake Hub does not implement"


def test_the_fake_hub_keeps_branches_apart(hub, tmp_path):
    api = HfApi(endpoint=hub.url, token=GOOD)
    api.create_repo("alice/tiny")
    for name, text in [("main", "final"), ("step5", "at step 5")]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "weights.txt").write_text(text)
        if name != "main":
            api.create_branch("alice/tiny", branch=name)
            api.create_branch("alice/tiny", branch=name, exist_ok=True)  # a resumed run's
        api.upload_folder(repo_id="alice/tiny", folder_path=folder, revision=name)
    assert {ref.name for ref in api.list_repo_refs("alice/tiny").branches} == {"main", "step5"}
    assert hub.files("alice/tiny", "step5") == {"weights.txt": b"at step 5"}
    assert hub.files("alice/tiny") == {"weights.txt": b"final"}
    kw = dict(endpoint=hub.url, cache_dir=tmp_path / "cache", token=GOOD)
    step5 = hf_hub_download("alice/tiny", "weights.txt", revision="step5", **kw)
    assert Path(step5).read_text() == "at step 5"
    assert Path(hf_hub_download("alice/tiny", "weights.txt", **kw)).read_text() == "final"
    with pytest.raises(Exception, match="Invalid rev id"):
        hf_hub_download("alice/tiny", "weights.txt", revision="step6", **kw)


def local_card(folder: Path, language=None) -> ModelCard:
    parts = pretraining_sections(
        model_type="roberta", language=language, license="apache-2.0", datasets=[],
        train_data_description="my.txt", mask_token="<mask>", widget_text="A <mask> day.",
        metrics={"eval_loss": 2.5, "perplexity": 12.18, "eval_accuracy": 0.4},
    )  # fmt: skip
    return build_model_card(
        repo_id=str(folder), **parts, hyperparameters={"max_steps": 10},
        revisions=[("step0", 0, 0), ("step5", 5, 1280)],
    )  # fmt: skip


def test_a_local_card_loads_from_its_folder_and_is_re_aimed_at_the_hub(tmp_path):
    folder = tmp_path / "outputs" / "my-model"
    folder.mkdir(parents=True)
    local_card(folder).save(folder / "README.md")
    text = (folder / "README.md").read_text()
    assert f'pipeline("fill-mask", model="{folder}")' in text
    assert f'from_pretrained("{folder}", revision="step5")' in text
    assert "# my-model" in text and "**language: not set**" in text
    card = run_card(folder, "alice/tiny", language="ru", license="mit")
    assert card.data.language == "ru" and card.data.license == "mit"
    assert str(folder) not in card.text and "not set" not in card.text
    assert 'pipeline("fill-mask", model="alice/tiny")' in card.text
    assert 'from_pretrained("alice/tiny", revision="step5")' in card.text
    assert card.text.startswith("\n# tiny\n") and card.data.model_name == "tiny"
    # the same command again renders the same bytes: nothing to push
    (folder / "README.md").write_text(str(card))
    assert str(run_card(folder, "alice/tiny", language="ru", license="mit")) == str(card)


def test_folders_that_are_not_a_model_are_refused(tmp_path):
    with pytest.raises(UserError, match="holds no finished model, checkpoint or tokenizer"):
        folder_kind(tmp_path)
    (tmp_path / "checkpoint-3").mkdir()
    with pytest.raises(UserError, match=r"has not finished.*checkpoint-3"):
        folder_kind(tmp_path)
    with pytest.raises(UserError, match="incomplete checkpoint"):
        folder_kind(tmp_path / "checkpoint-3")
    with pytest.raises(UserError, match="is not a folder"):
        folder_kind(tmp_path / "nothing")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert folder_kind(tmp_path) == "tokenizer"


def test_a_staged_checkpoint_outlives_its_folder_and_holds_only_the_model(tmp_path):
    checkpoint = tmp_path / "checkpoint-5"
    checkpoint.mkdir()
    for name in ("model.safetensors", "config.json", "tokenizer.json", "optimizer.pt"):
        (checkpoint / name).write_bytes(name.encode())
    staged = revisions.stage(checkpoint, tmp_path, 5, 1280)
    for path in checkpoint.iterdir():  # save_total_limit deletes the checkpoint
        path.unlink()
    assert staged == tmp_path / "_revisions" / "step5"
    assert sorted(p.name for p in staged.iterdir()) == [
        "_step", "config.json", "model.safetensors", "tokenizer.json",
    ]  # fmt: skip
    assert (staged / "model.safetensors").read_bytes() == b"model.safetensors"
    assert revisions.staged(tmp_path) == [staged]


def test_log_spaced_saves_at_powers_of_two_below_save_steps():
    callback, saved = revisions.LogSpacedSaves(), []
    state = TrainerState(save_steps=10)
    for step in range(1, 21):
        state.global_step, control = step, TrainerControl()
        callback.on_step_end(SimpleNamespace(save_steps=10), state, control)
        saved += [step] if control.should_save else []
    assert saved == [1, 2, 4, 8]  # then every 10, as Trainer itself saves


def test_push_revisions_needs_push_to_hub():
    data = SimpleNamespace(push_revisions=True, save_steps_log_spaced=False)
    with pytest.raises(UserError, match="push_to_hub: true"):
        revisions.revision_callbacks(data, SimpleNamespace(push_to_hub=False))
    training = SimpleNamespace(push_to_hub=True, hub_model_id="alice/x", output_dir="out")
    [callback] = revisions.revision_callbacks(data, training)
    assert isinstance(callback, revisions.PushRevisions)


def test_a_fine_tuned_classifier_card_is_re_aimed_too(tmp_path):
    folder = tmp_path / "outputs" / "my-classifier"
    folder.mkdir(parents=True)
    build_model_card(
        repo_id=str(folder), metadata={"pipeline_tag": "text-classification", "license": "mit"},
        summary="A text classifier with labels comedy, tragedy.", sections=[],
        hyperparameters={"seeds": "1"}, usage_input='"..."', usage_note="a pair: ...",
    ).save(folder / "README.md")  # fmt: skip
    card = run_card(folder, "alice/clf", language="en")
    assert 'text_classification = pipeline("text-classification", model="alice/clf")' in card.text
    assert str(folder) not in card.text
    assert card.data.language == "en" and card.data.license == "mit"
