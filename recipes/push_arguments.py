"""The settings of `python -m recipes.push` (publish a folder without training), typed, with
help strings; the recipes' own settings are in recipes/arguments.py."""

from dataclasses import dataclass, field
from typing import ClassVar

from recipes.errors import UserError


@dataclass
class PushArguments:
    """`python -m recipes.push OUTPUT_DIR --hub_model_id user/name`: publish without training."""

    help_section: ClassVar[str] = "outputs and the Hub"

    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "What to publish (or the first argument): a finished run's output_dir, one "
            "checkpoint-N folder in it, or a tokenizer_training output_dir."
        },
    )
    hub_model_id: str | None = field(
        default=None,
        metadata={"help": "The Hub repo, e.g. your-name/my-modernbert (a bare name: yours)."},
    )
    language: str | None = field(
        default=None,
        metadata={"help": "ISO code(s) for the card, e.g. ru or en,fr; unset: the run's own."},
    )
    license: str | None = field(
        default=None, metadata={"help": "The card's license id, e.g. mit; unset: the run's own."}
    )
    private: bool | None = field(
        default=None,
        metadata={"help": "Create the repo private (a repo that exists keeps its visibility)."},
    )
    revision: str = field(
        default="main",
        metadata={"help": "The branch to push to; created from main if it does not exist."},
    )
    commit_message: str | None = field(default=None, metadata={"help": "The commit's message."})
    hub_token: str | None = field(
        default=None,
        metadata={"help": "A write token; better: `hf auth login` or HF_TOKEN. Never written."},
    )

    def __post_init__(self):
        if not self.output_dir:
            raise UserError(
                "what to publish? `python -m recipes.push OUTPUT_DIR --hub_model_id user/name`."
            )
        if not self.hub_model_id:
            raise UserError(
                "`hub_model_id` is not set: "
                f"`python -m recipes.push {self.output_dir} --hub_model_id user/name`."
            )
