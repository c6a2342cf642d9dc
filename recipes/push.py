"""Publish on the Hub what is already trained: no training, no retraining.

    python -m recipes.push outputs/my-modernbert --hub_model_id your-name/my-modernbert --language fa
    python -m recipes.push outputs/my-modernbert/checkpoint-1000 --hub_model_id your-name/my-modernbert \
        --revision step1000
    python -m recipes.push outputs/my-tokenizer --hub_model_id your-name/my-tokenizer

A finished run of any recipe (model, tokenizer, results, plots, run_config.yaml and its card,
re-aimed at the Hub id with `--language`/`--license` if given), one checkpoint-N of a run, or a
tokenizer folder. Hub access is checked before anything is written; the token is never written
down. Pushing the same folder again sends nothing that did not change, and says so. The work is
in recipes/publishing/; every option is in `--help`.
"""

import os
import sys

from recipes.config import parse_config
from recipes.errors import exit_on_user_error
from recipes.publishing.publish import publish
from recipes.push_arguments import PushArguments


@exit_on_user_error
def main(argv=None) -> str:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # the folder, given first without its flag
        argv = ["--output_dir", *argv]
    (args,) = parse_config([PushArguments], argv)  # prints nothing: no settings report here
    if args.hub_token:  # huggingface_hub reads HF_TOKEN per request; nothing writes it down
        os.environ["HF_TOKEN"] = args.hub_token
    return publish(
        args.output_dir,
        args.hub_model_id,
        language=args.language,
        license=args.license,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
    )


if __name__ == "__main__":
    main()
