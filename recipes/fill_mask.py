"""Try a masked language model: print the top-k fillers for each masked text.

    python -m recipes.fill_mask --model outputs/roberta-tiny "Good <mask>, my lord."
    python -m recipes.fill_mask --model user/my-roberta --top_k 10 "..."

Write the mask as `<mask>` or `[MASK]`, whichever the model uses: it is replaced by the
model's own mask token. Works with a local folder or a Hub id, using stock transformers only.
"""

import argparse
import os
import re
import sys

from transformers import logging, pipeline

from recipes.errors import UserError, exit_on_user_error
from recipes.models.checkpoints import NO_CHECKPOINT_HINT
from recipes.run_folder import not_found_anywhere, require_folder_or_hub_id

MASK_SPELLINGS = re.compile(r"<mask>|\[MASK\]")


def fill_mask(model: str, texts: list[str], top_k: int = 5) -> list[list[dict]]:
    # a local folder not made yet (`outputs/x` before outputs/ exists) looks like a Hub id:
    # the error names both readings, not the Hub's network or offline-mode advice
    require_folder_or_hub_id(model, "model", NO_CHECKPOINT_HINT)
    try:
        # safetensors only: a pickled pytorch_model.bin from the Hub can run code on load
        fill = pipeline(
            "fill-mask",
            model=model,
            tokenizer=model,
            top_k=top_k,
            trust_remote_code=False,
            model_kwargs={"use_safetensors": True},
        )
    except OSError as err:
        if not os.path.isdir(model):
            reason = str(err).strip().splitlines()[0]
            raise not_found_anywhere(model, "model", reason, NO_CHECKPOINT_HINT) from None
        raise UserError(f"cannot load a model from `{model}`: {err}") from None
    mask = fill.tokenizer.mask_token
    results = []
    for text in texts:
        if not MASK_SPELLINGS.search(text):
            raise UserError(
                f"{text!r} has no mask: write <mask> or [MASK] where a word is missing."
            )
        prepared = MASK_SPELLINGS.sub(mask, text)
        out = fill(prepared)
        # one mask gives a list of candidates; several masks give one list per mask
        results.append(out if isinstance(out[0], dict) else out[0])
    return results


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="Output folder of a recipe, or Hub id.")
    parser.add_argument(
        "--top_k", type=int, default=5, help="Fillers to print per mask, best first (default: 5)."
    )
    parser.add_argument("texts", nargs="+", help="Texts containing <mask> (or [MASK]).")
    args = parser.parse_args(argv)
    # BertForPreTraining checkpoints load into BertForMaskedLM with the NSP head and pooler left
    # over; transformers reports that at length. It is expected here: keep the output readable.
    logging.set_verbosity_error()
    if not sys.stdout.isatty():  # a log, not a terminal: no weight-loading bar in it
        logging.disable_progress_bar()
    for text, candidates in zip(args.texts, fill_mask(args.model, args.texts, args.top_k)):
        print(f"\n{text}")
        for c in candidates:
            token = c["token_str"].strip() or c["token_str"]  # keep a bare '\n' visible
            # verse lines end in newlines: show them as ↵ so each candidate stays on one line
            print(f"  {c['score']:6.3f}  {token!r:<16} {c['sequence'].replace(chr(10), ' ↵ ')}")


if __name__ == "__main__":
    main()
