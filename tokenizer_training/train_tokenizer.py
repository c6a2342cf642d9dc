"""Train a tokenizer from raw text: byte-level BPE for RoBERTa, WordPiece for BERT.

    python -m tokenizer_training.train_tokenizer \
        --config tokenizer_training/configs/bytelevel-bpe.yaml [--field value ...]

Text is read through `datasets` (local files, a Hub dataset, or a streamed one) and fed to the
`tokenizers` trainer batch by batch: nothing is written to intermediate text files, and with
`streaming: true` memory stays bounded however large the corpus.

The output folder is what `AutoTokenizer.from_pretrained` and the recipes'
`tokenizer_name_or_path` take: tokenizer.json plus tokenizer_config.json recording the special
tokens (a bare tokenizer.json loads with no mask token in transformers v5) and
`model_max_length` (left unset it is 1e30 and nothing truncates).
"""

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast, RobertaTokenizer

from recipes.arguments import DataSourceArguments
from recipes.config import parse_config
from recipes.data.text import load_raw_datasets, text_batches
from recipes.errors import UserError, exit_on_user_error
from recipes.publishing.cards import TOKENIZER_ARGS, tokenizer_card
from recipes.run_folder import require_output_folder
from recipes.runs import hub

BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # the tutorial's order: <s>=0, <pad>=1
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # BERT's: [PAD]=0


@dataclass
class TokenizerArguments:
    tokenizer_type: str = field(
        default="bytelevel-bpe",
        metadata={"help": "Algorithm.", "choices": ["bytelevel-bpe", "wordpiece"]},
    )
    vocab_size: int = field(
        default=30_000, metadata={"help": "Vocabulary size, specials included."}
    )
    min_frequency: int = field(
        default=2, metadata={"help": "Merges/pieces seen fewer times than this are not learned."}
    )
    lowercase: bool = field(
        default=False, metadata={"help": "WordPiece only: lowercase and strip accents (uncased)."}
    )
    model_max_length: int = field(
        default=512, metadata={"help": "Longest input the model will take, saved with it."}
    )
    max_texts: int | None = field(
        default=None, metadata={"help": "Stop after this many texts (useful with streaming)."}
    )
    output_dir: str = field(default="outputs/tokenizer", metadata={"help": "Where to save."})
    push_to_hub: bool = field(default=False, metadata={"help": "Push the tokenizer to the Hub."})
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Hub repo for push_to_hub, e.g. user/my-tokenizer."}
    )
    hub_private_repo: bool | None = field(
        default=None, metadata={"help": "Create the Hub repo private."}
    )
    hub_token: str | None = field(
        default=None,
        metadata={"help": "A write token; better: `hf auth login` or HF_TOKEN. Never written."},
    )
    language: str | None = field(
        default=None,
        metadata={"help": "ISO code(s) of the text's language (e.g. en, fa), for the card."},
    )
    license: str | None = field(
        default="apache-2.0", metadata={"help": "The license id on the tokenizer's card."}
    )

    def __post_init__(self):
        if self.vocab_size < 300:
            raise UserError(f"`vocab_size` must be at least 300, got {self.vocab_size}.")
        if self.push_to_hub and not self.hub_model_id:
            raise UserError("`push_to_hub: true` needs `hub_model_id`, e.g. user/my-tokenizer.")


def bytelevel_bpe(args: TokenizerArguments) -> tuple[Tokenizer, trainers.Trainer]:
    """The EsperBERTo tutorial's tokenizer (ByteLevelBPETokenizer), built from its parts."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # lstrip: "Hello <mask>" hides the space with the word, as a masked "Ġworld" did in training.
    specials = BPE_SPECIALS[:-1] + [AddedToken("<mask>", lstrip=True, special=True)]
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte: no <unk> ever
        show_progress=True,
    )
    return tok, trainer


def wordpiece(args: TokenizerArguments) -> tuple[Tokenizer, trainers.Trainer]:
    """BERT's tokenizer: normalize, split on whitespace and punctuation, WordPiece with ##."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=args.lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        special_tokens=WORDPIECE_SPECIALS,
        continuing_subword_prefix="##",
        show_progress=True,
    )
    return tok, trainer


def wrap_for_transformers(tok: Tokenizer, args: TokenizerArguments):
    """Attach the post-processor and wrap in the transformers class that AutoTokenizer loads."""
    if args.tokenizer_type == "bytelevel-bpe":
        ids = {t: tok.token_to_id(t) for t in BPE_SPECIALS}
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", ids["</s>"]), ("<s>", ids["<s>"]), trim_offsets=True, add_prefix_space=False
        )
        # Byte-level BPE built as above matches RobertaTokenizer's own definition, so the
        # model-specific class (what the Hub and pipelines expect) tokenizes identically.
        return RobertaTokenizer(tokenizer_object=tok, model_max_length=args.model_max_length)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    # Not BertTokenizer: v5 would rebuild BERT's default normalizer from the class definition
    # and drop ours (cased vs uncased). The generic class keeps tokenizer.json as trained.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=args.model_max_length,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        # BERT takes segment ids; the generic class returns them only when told to
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def train_tokenizer(args: TokenizerArguments, data_args: DataSourceArguments):
    """Train, save to args.output_dir and return the transformers tokenizer."""
    if args.hub_token:  # huggingface_hub reads HF_TOKEN per request; nothing writes it down
        os.environ["HF_TOKEN"], args.hub_token = args.hub_token, None
    require_output_folder(args.output_dir)  # not after training: mkdir would fail then
    if args.push_to_hub:  # fail in seconds, not after training
        args.hub_model_id = hub.check_hub_access(args.hub_model_id, private=args.hub_private_repo)
    raw = load_raw_datasets(data_args, split_validation=False)["train"]
    if getattr(args, "settings_report", None):  # recipes/config.py: once the checks passed
        print(args.settings_report)
    length = None if data_args.streaming else len(raw)
    if args.max_texts is not None and length is not None:
        length = min(length, args.max_texts)

    build = bytelevel_bpe if args.tokenizer_type == "bytelevel-bpe" else wordpiece
    tok, trainer = build(args)
    seen = 0

    def texts():  # counted: byte-level BPE "learns" its 256-byte alphabet even from nothing
        nonlocal seen
        for batch in text_batches(raw, limit=args.max_texts):
            seen += len(batch)
            yield from batch

    tok.train_from_iterator(texts(), trainer, length=length)
    if seen == 0:
        raise UserError(
            "the training data holds no text (every example is empty or blank): check "
            "`train_files` / `dataset_name` and `text_column`."
        )

    tokenizer = wrap_for_transformers(tok, args)
    out = Path(args.output_dir)
    tokenizer.save_pretrained(out)
    meta = {"tokenizer_args": asdict(args), "data_args": asdict(data_args), "texts_seen": seen}
    (out / TOKENIZER_ARGS).write_text(json.dumps(meta, indent=2) + "\n")
    # the card (README.md): what it is, what it learnt from, how to load it from where it is
    card = tokenizer_card(out, args.hub_model_id if args.push_to_hub else str(out))
    card.save(out / "README.md")
    print(f"Saved a {len(tokenizer)}-token {args.tokenizer_type} tokenizer to {out}/")
    if args.push_to_hub:
        url = hub.push_folder(out, args.hub_model_id, commit_message="Upload tokenizer")
        print(f"Pushed to {url}")
    return tokenizer


@exit_on_user_error
def main(argv=None):
    args, data_args = parse_config([TokenizerArguments, DataSourceArguments], argv)
    train_tokenizer(args, data_args)


if __name__ == "__main__":
    main()
