"""Next-sentence-prediction pairs for BERT pretraining, built with `datasets.map`.

A port of `create_instances_from_document` in google-research/bert's create_pretraining_data.py,
without its static masking: `DataCollatorForLanguageModeling` masks each batch afresh instead.

    raw = load_dataset("Salesforce/wikitext", "wikitext-103-raw-v1", split="train")
    docs = raw.map(group_wikitext_articles, batched=True, batch_size=None, remove_columns=["text"])
    pairs = build_nsp_dataset(docs, tokenizer, max_seq_length=128)
    # pairs: input_ids, token_type_ids, attention_mask, special_tokens_mask, next_sentence_label

Grouping lines into articles must see whole articles, hence `batch_size=None` (wikitext-103's
1.8M lines fit in memory); with smaller batches an article straddling two batches becomes two
documents. Text files in BERT's format (a sentence per line, a blank line between documents)
need no grouping: `load_dataset("text", data_files=..., sample_by="paragraph")` gives one row
per document; rename its "text" column to "document". The recipe's way, from its config to
pairs, is `load_documents` and `nsp_pairs` at the end of this file.
"""

import math
import random
import re
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset, Features, Sequence, Value, concatenate_datasets
from transformers import PreTrainedTokenizerBase

from recipes.data.packing import CodeVersioned
from recipes.data.text import load_raw_datasets
from recipes.errors import UserError

# A sentence ends at . ! ? or Arabic ؟, perhaps followed by a closing quote or bracket, then
# whitespace, then anything but a lowercase letter or digit: a capital, an opening quote, or a
# letter of an uncased script such as Persian. Simple on purpose; "Mr. Smith" splits, and NSP
# does not mind.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?؟])|(?<=[.!?؟][\"'”’)\]]))\s+(?=[^\sa-z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at line breaks and, within lines, with the regex above."""
    pieces = (p.strip() for line in text.splitlines() for p in _SENTENCE_END.split(line))
    return [p for p in pieces if p]


def split_wikitext_articles(lines: Iterable[str]) -> list[list[str]]:
    """wikitext raw lines -> one document per article, headings dropped.

    ` = Title = ` (one `=` each side) starts an article; ` = = Section = = ` and deeper headings
    are left out, as BERT's Wikipedia data kept only text passages. Paragraphs become sentences.
    """
    documents, current = [], []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("= ") and stripped.endswith(" ="):
            if not stripped.startswith("= =") and current:  # a new article, not a section
                documents.append(current)
                current = []
        elif stripped:
            current.extend(split_sentences(stripped))
    if current:
        documents.append(current)
    return documents


def group_wikitext_articles(batch: dict[str, list[str]]) -> dict[str, list[list[str]]]:
    """`Dataset.map(batched=True)` form of `split_wikitext_articles` over a "text" column."""
    return {"sentences": split_wikitext_articles(batch["text"])}


def hold_out_document_ends(documents: Dataset, percentage: float) -> tuple[Dataset, Dataset]:
    """Split every document in two: its first sentences to train on, the last `percentage`%
    (at least one sentence) held out. Returns (train, validation) documents, "sentences" columns.

    For a corpus of a few long documents (books; the demo's 42 plays), where holding out whole
    documents leaves one or two for validation and every held-out random B then comes from the
    one other. The held-out text is never trained on; the documents' names and topics are.
    This is `validation_holdout: document_ends`; whole documents are held out by the rule for
    rows, recipes/data/text.py `hold_out`. `percentage` is DataArguments' checked one.
    """
    parts = [
        documents.map(
            CodeVersioned(_document_part),
            batched=True,
            remove_columns=documents.column_names,
            fn_kwargs={"percentage": percentage, "held_out": held_out},
            desc="Holding out document ends" if held_out else None,
        )
        for held_out in (False, True)
    ]
    return parts[0], parts[1]


def _document_part(batch: dict[str, list], percentage: float, held_out: bool) -> dict:
    docs = batch["sentences"] if "sentences" in batch else map(split_sentences, batch["document"])
    out = []
    for sentences in docs:
        # A one-sentence document stays whole in train; an empty part is dropped later.
        cut = len(sentences) - math.ceil(len(sentences) * percentage / 100)
        cut = len(sentences) if len(sentences) < 2 else cut
        out.append(sentences[cut:] if held_out else sentences[:cut])
    return {"sentences": out}


# Small ints keep the Arrow cache ~3x smaller; the collator turns them into int64 tensors.
_FEATURES = Features(
    {
        "input_ids": Sequence(Value("int32")),
        "token_type_ids": Sequence(Value("int8")),
        "attention_mask": Sequence(Value("int8")),
        "special_tokens_mask": Sequence(Value("int8")),
        "next_sentence_label": Value("int64"),
    }
)


def build_nsp_dataset(
    documents: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    short_seq_prob: float = 0.1,
    seed: int = 42,
    num_proc: int | None = None,
    require_continuations: bool = True,
) -> Dataset:
    """Sentence-pair examples `[CLS] A [SEP] B [SEP]`, unpadded, B random half the time.

    `documents` has a "sentences" column (list of str) or a "document" column (text). Two maps,
    both cached by datasets' fingerprints: tokenize the sentences, then cut each document into
    pairs. Every document seeds its own RNG from (seed, index), so the result does not depend on
    batch size or num_proc. As in the original, a chunk of one sentence (often a document's last)
    can only take a random B, so a little over half the pairs are random: ~55% for documents of
    ~100 tokens at max_seq_length=32, nearer 50% for Wikipedia articles.
    """
    if max_seq_length < 5:
        raise UserError(f"max_seq_length must be >= 5 for NSP pairs, got {max_seq_length}")
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise UserError("NSP needs a tokenizer with cls_token and sep_token ([CLS], [SEP])")
    if "sentences" not in documents.column_names and "document" not in documents.column_names:
        raise UserError(
            f"NSP documents need a 'sentences' or 'document' column, got {documents.column_names}"
            " (text files: load_dataset('text', ..., sample_by='paragraph'), rename 'text' to"
            " 'document')"
        )

    tokenized = documents.map(
        CodeVersioned(_tokenize_sentences),  # editing the rules below re-runs both maps
        batched=True,
        remove_columns=documents.column_names,
        fn_kwargs={"tokenizer": tokenizer},
        num_proc=num_proc,
        desc="Tokenizing sentences",
    )
    if len(tokenized) < 2:
        raise UserError(f"NSP needs at least 2 non-empty documents, got {len(tokenized)}")
    # Training pairs need true continuations; held-out document ends may be one sentence each.
    sentences = pc.list_value_length(tokenized.data.column("sentence_ids"))
    if require_continuations and not pc.any(pc.greater(sentences, 1)).as_py():
        raise UserError(
            f"each of the {len(tokenized)} documents is a single sentence, so no B can continue "
            "its A and next-sentence prediction has nothing to learn"
        )
    return tokenized.map(
        CodeVersioned(_nsp_pairs),
        batched=True,
        with_indices=True,
        remove_columns=tokenized.column_names,
        features=_FEATURES,
        fn_kwargs={
            # A random B may come from any document, so every batch sees the whole tokenized
            # dataset; datasets hashes it by its fingerprint, so caching still works.
            "documents": tokenized,
            "max_num_tokens": max_seq_length - 3,  # room for [CLS] and two [SEP]
            "short_seq_prob": short_seq_prob,
            "seed": seed,
            "cls_id": tokenizer.cls_token_id,
            "sep_id": tokenizer.sep_token_id,
        },
        num_proc=num_proc,
        desc="Building NSP pairs",
    )


def padding_waste(
    dataset: Dataset, batch_size: int, seed: int | None = 0, pad_to_multiple_of: int = 1
) -> float:
    """Share of pad tokens when batches of `batch_size` are padded to their longest example
    (rounded up to a multiple of `pad_to_multiple_of`, as the collator does).

    Batches are drawn in a random order (as Trainer shuffles) unless `seed` is None.
    """
    tables = dataset.select_columns(["input_ids"]).with_format("arrow").iter(batch_size=100_000)
    lengths = np.concatenate([pc.list_value_length(t["input_ids"]).to_numpy() for t in tables])
    if seed is not None:
        lengths = np.random.default_rng(seed).permutation(lengths)
    padded = np.zeros(-(-len(lengths) // batch_size) * batch_size, dtype=np.int64)
    padded[: len(lengths)] = lengths
    rows = padded.reshape(-1, batch_size)
    longest = -(-rows.max(axis=1) // pad_to_multiple_of) * pad_to_multiple_of
    slots = (longest * (rows > 0).sum(axis=1)).sum()
    return float(1 - lengths.sum() / slots)


def _tokenize_sentences(batch: dict[str, list], tokenizer: PreTrainedTokenizerBase) -> dict:
    if "sentences" in batch:
        docs = batch["sentences"]
    else:
        docs = [split_sentences(text) for text in batch["document"]]
    # One tokenizer call for the whole batch is much faster than one per sentence.
    flat = [s for doc in docs for s in doc]
    ids = tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"] if flat else []
    out, start = [], 0
    for doc in docs:
        sentences = [s for s in ids[start : start + len(doc)] if s]
        start += len(doc)
        if sentences:  # empty documents are dropped, as in the original
            out.append(sentences)
    return {"sentence_ids": out}


def _nsp_pairs(
    batch: dict[str, list],
    indices: list[int],
    documents: Dataset,
    max_num_tokens: int,
    short_seq_prob: float,
    seed: int,
    cls_id: int,
    sep_id: int,
) -> dict[str, list]:
    out = {name: [] for name in _FEATURES}
    # Random Bs are read as Arrow, converting to Python only the few sentences they take:
    # `documents[i]` would convert a whole document (a play: ~5,000 lines) for each of them.
    documents = documents.with_format("arrow")
    for doc, doc_index in zip(batch["sentence_ids"], indices, strict=True):
        rng = random.Random(f"{seed}:{doc_index}")
        pairs = _document_pairs(doc, doc_index, documents, max_num_tokens, short_seq_prob, rng)
        for a, b, is_random_next in pairs:
            out["input_ids"].append([cls_id, *a, sep_id, *b, sep_id])
            out["token_type_ids"].append([0] * (len(a) + 2) + [1] * (len(b) + 1))
            out["attention_mask"].append([1] * (len(a) + len(b) + 3))
            out["special_tokens_mask"].append([1] + [0] * len(a) + [1] + [0] * len(b) + [1])
            # transformers' convention: 0 = B continues A, 1 = B is random.
            out["next_sentence_label"].append(int(is_random_next))
    return out


def _document_pairs(
    doc: list[list[int]],
    doc_index: int,
    documents: Dataset,
    max_num_tokens: int,
    short_seq_prob: float,
    rng: random.Random,
) -> Iterator[tuple[list[int], list[int], bool]]:
    """create_instances_from_document: fill a chunk of sentences up to a target, split it A|B."""

    # Mostly fill the whole sequence (padding would waste it anyway), but sometimes aim
    # shorter so pretraining also sees the short inputs fine-tuning will give it. The original
    # draws this once per document (and builds everything 10 times, dupe_factor): fine for
    # Wikipedia articles, but with long documents a whole book, or a whole play, came out
    # short (docs/measurements.md, "BERT with next-sentence prediction"). Drawn per pair,
    # `short_seq_prob` of the pairs are short, whatever the documents' lengths.
    def draw_target() -> int:
        return rng.randint(2, max_num_tokens) if rng.random() < short_seq_prob else max_num_tokens

    target = draw_target()
    chunk, chunk_len, i = [], 0, 0
    while i < len(doc):
        chunk.append(doc[i])
        chunk_len += len(doc[i])
        if i == len(doc) - 1 or chunk_len >= target:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            a = [t for sentence in chunk[:a_end] for t in sentence]
            if len(chunk) == 1 or rng.random() < 0.5:
                is_random_next, b = True, []
                other_index = rng.randrange(len(documents) - 1)
                other_index += other_index >= doc_index  # any document but this one
                other = documents[other_index]["sentence_ids"][0].values  # its sentences
                for sentence in other[rng.randrange(len(other)) :]:
                    b.extend(sentence.as_py())
                    if len(b) >= target - len(a):
                        break
                # The chunk's sentences after A were not used: put them back for the next pair.
                i -= len(chunk) - a_end
            else:
                is_random_next = False
                b = [t for sentence in chunk[a_end:] for t in sentence]
            _truncate_pair(a, b, max_num_tokens, rng)
            yield a, b, is_random_next
            chunk, chunk_len, target = [], 0, draw_target()
        i += 1


def _truncate_pair(a: list[int], b: list[int], max_num_tokens: int, rng: random.Random) -> None:
    """Trim the longer segment, at a random end, until the pair fits (in place)."""
    while len(a) + len(b) > max_num_tokens:
        longer = a if len(a) > len(b) else b
        # Random end, rather than always the back, to add noise, as the original does.
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


# ---- From the recipe's config to pairs (recipes/pretrain_bert.py) ---------------------------
# `data_args` is a recipes.arguments.DataArguments, `bert_args` a BertArguments.


def rows_are_wikitext_lines(data_args, bert_args) -> bool:
    if bert_args.documents == "auto":
        return "wikitext" in (data_args.dataset_name or "").lower()
    return bert_args.documents == "wikitext"


def documents_from_rows(rows, data_args, bert_args):
    """Rows of text -> documents: a "sentences" (wikitext) or "document" column."""
    if rows_are_wikitext_lines(data_args, bert_args):
        # An article spans many rows: group them in one batch, or one straddling two
        # batches would become two documents.
        return rows.map(
            CodeVersioned(group_wikitext_articles),
            batched=True,
            batch_size=None,
            remove_columns=["text"],
        )
    return rows.rename_column("text", "document")


def load_documents(data_args, bert_args) -> dict:
    """{"train", "validation"} documents; validation held out as `validation_holdout` says.

    Text files are read with `documents=True`: under `text_sample_by: auto` that is BERT's
    format, where a blank line or the end of a file ends a document; wikitext rows are lines,
    read one per row and grouped into articles.
    """
    ends = bert_args.validation_holdout == "document_ends"
    wikitext = rows_are_wikitext_lines(data_args, bert_args)
    raw = load_raw_datasets(data_args, split_validation=not ends, documents=not wikitext)
    if ends and "validation" in raw:
        raise UserError(
            "`validation_holdout: document_ends` holds out the end of every training document, "
            "but validation data is given (`validation_files` or the dataset's own split): "
            "drop one of the two."
        )
    documents = {
        split: documents_from_rows(rows, data_args, bert_args) for split, rows in raw.items()
    }
    if ends:
        documents["train"], documents["validation"] = hold_out_document_ends(
            documents["train"], data_args.validation_split_percentage
        )
    return documents


def nsp_pairs(documents: dict, tokenizer, data_args, bert_args, seed: int) -> dict:
    """{"train", "validation"} documents -> `[CLS] A [SEP] B [SEP]` pairs (datasets.map, cached):
    `bert_args.dupe_factor` copies of the training pairs, each cut and paired afresh; the
    validation pairs once."""
    pairs = {}
    for split, docs in documents.items():
        copies = bert_args.dupe_factor if split == "train" else 1
        try:
            pairs[split] = concatenate_datasets(
                [
                    build_nsp_dataset(
                        docs,
                        tokenizer,
                        data_args.max_seq_length,
                        short_seq_prob=bert_args.short_seq_prob,
                        seed=seed + copy,
                        num_proc=data_args.preprocessing_num_workers,
                        require_continuations=split == "train",
                    )
                    for copy in range(copies)
                ]
            )
        except UserError as err:
            fix = _too_few_documents_fix(documents, split, data_args, bert_args)
            raise UserError(f"{split} data: {err}: {fix}.") from None
    return pairs


def _too_few_documents_fix(documents: dict, split: str, data_args, bert_args) -> str:
    """A fix for NSP data that works in this recipe (tests/e2e/test_bad_input.py runs each)."""
    text_files = bool(data_args.train_files) and not rows_are_wikitext_lines(data_args, bert_args)
    n = sum(len(docs) for docs in documents.values())
    held_out = not (data_args.validation_files or data_args.dataset_name)
    if text_files and data_args.text_sample_by == "line":
        return (
            "`text_sample_by: line` makes each line a document; for BERT's format (a sentence "
            "per line, a blank line between documents) set `text_sample_by: auto`"
        )
    if len(documents[split]) >= 2:  # enough documents, each a single sentence
        return "put several sentences in each document (BERT's format: one sentence per line)"
    if held_out and bert_args.validation_holdout == "documents" and n >= 2:
        return f"with {n} documents, hold out their ends: `validation_holdout: document_ends`"
    return f"add documents to the {split} data (in a text file a blank line ends one)"
