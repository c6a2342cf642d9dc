"""NSP pairs: structure, provenance of A and B, determinism, and collation."""

import math
import random

import pytest
import torch
from datasets import Dataset, load_dataset
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, PreTrainedTokenizerFast

from recipes import pretrain_bert
from recipes.data.nsp import (
    build_nsp_dataset,
    group_wikitext_articles,
    hold_out_document_ends,
    load_documents,
    nsp_pairs,
    padding_waste,
    rows_are_wikitext_lines,
    split_sentences,
    split_wikitext_articles,
)
from recipes.errors import UserError

MAX_LEN = 32


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    """100 documents of 15-30 sentences, every word used once: each token says where it is from."""
    rng = random.Random(0)
    shape = [[rng.randint(2, 8) for _ in range(rng.randint(15, 30))] for _ in range(100)]
    words: set[str] = set()
    while len(words) < sum(map(sum, shape)):
        words.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)))
    pool = iter(sorted(words))
    return [[" ".join(next(pool) for _ in range(n)) for n in doc] for doc in shape]


@pytest.fixture(scope="module")
def tokenizer(corpus) -> PreTrainedTokenizerFast:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # A vocabulary big enough that every fixture word is one token.
    trainer = trainers.WordPieceTrainer(vocab_size=100_000, special_tokens=specials)
    tok.train_from_iterator((s for doc in corpus for s in doc), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )


@pytest.fixture(scope="module")
def doc_tokens(corpus, tokenizer) -> list[list[int]]:
    docs = [tokenizer(" ".join(doc), add_special_tokens=False)["input_ids"] for doc in corpus]
    assert sum(map(len, docs)) == sum(len(s.split()) for doc in corpus for s in doc)
    return docs


@pytest.fixture(scope="module")
def where(doc_tokens) -> dict[int, tuple[int, int]]:
    """token id -> (document, position in the document)."""
    return {t: (d, i) for d, doc in enumerate(doc_tokens) for i, t in enumerate(doc)}


@pytest.fixture(scope="module")
def nsp(corpus, tokenizer) -> Dataset:
    return build_nsp_dataset(Dataset.from_dict({"sentences": corpus}), tokenizer, MAX_LEN, seed=1)


def segments(example: dict, sep_id: int) -> tuple[list[int], list[int]]:
    ids = example["input_ids"]
    first_sep = ids.index(sep_id)
    return ids[1:first_sep], ids[first_sep + 1 : -1]


def test_split_sentences():
    text = 'It rained. Then it "stopped." "Really?" Yes! e.g. this stays. 3 too. (Aside.) Done'
    assert split_sentences(text) == [
        "It rained.",
        'Then it "stopped."',
        '"Really?"',
        "Yes! e.g. this stays. 3 too.",
        "(Aside.)",
        "Done",
    ]
    assert split_sentences("باران آمد. هوا سرد شد؟ بله.") == ["باران آمد.", "هوا سرد شد؟", "بله."]
    assert split_sentences("One line\nand another. Last") == ["One line", "and another.", "Last"]
    assert split_sentences("   ") == []


def test_text_file_paragraphs_are_documents_of_sentences(tmp_path):
    # datasets' text loader, one row per blank-line paragraph (BERT's format), then sentences.
    text = "One. Two.\nThree.\n\n\nFour.\n\nFive. Six.\n"
    (tmp_path / "corpus.txt").write_text(text)
    rows = load_dataset(
        "text",
        data_files=str(tmp_path / "corpus.txt"),
        sample_by="paragraph",
        cache_dir=str(tmp_path / "cache"),
        split="train",
    )
    assert [split_sentences(t) for t in rows["text"] if t.strip()] == [
        ["One.", "Two.", "Three."],
        ["Four."],
        ["Five.", "Six."],
    ]


def test_wikitext_articles_split_at_titles_not_sections():
    rows = [
        "",
        " = Valkyria Chronicles = \n",
        "",
        " The game began in 2010 . It was a hit . \n",
        "",
        " = = Gameplay = = \n",
        " Players move units . \n",
        " = = = Battles = = = \n",
        " Battles are fought . \n",
        " = Tower Building = \n",
        "",
        " The tower is tall . \n",
    ]
    expected = [
        [
            "The game began in 2010 .",
            "It was a hit .",
            "Players move units .",
            "Battles are fought .",
        ],
        ["The tower is tall ."],
    ]
    assert split_wikitext_articles(rows) == expected
    docs = Dataset.from_dict({"text": rows}).map(
        group_wikitext_articles, batched=True, batch_size=None, remove_columns=["text"]
    )
    assert docs["sentences"] == expected


def test_examples_are_well_formed(nsp, tokenizer):
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    for ex in nsp:
        ids = ex["input_ids"]
        a, b = segments(ex, sep_id)
        assert len(ids) <= MAX_LEN and ids[0] == cls_id and ids[-1] == sep_id
        assert ids.count(sep_id) == 2 and ids.count(cls_id) == 1 and a and b
        assert ex["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert ex["attention_mask"] == [1] * len(ids)
        assert ex["special_tokens_mask"] == [int(t in (cls_id, sep_id)) for t in ids]


def test_labels_are_about_half_random(nsp):
    # A bit over half: a one-sentence chunk can only take a random B (see build_nsp_dataset).
    assert len(nsp) > 500
    assert 0.45 < sum(nsp["next_sentence_label"]) / len(nsp) < 0.62


def test_continuations_follow_a_and_random_b_comes_from_elsewhere(nsp, tokenizer, where):
    seen = {0: 0, 1: 0}
    for ex in nsp:
        a, b = segments(ex, tokenizer.sep_token_id)
        doc_a, pos_a = zip(*map(where.get, a), strict=True)
        doc_b, pos_b = zip(*map(where.get, b), strict=True)
        # Each segment is one unbroken run of one document.
        assert len(set(doc_a)) == 1 and list(pos_a) == list(range(pos_a[0], pos_a[0] + len(a)))
        assert len(set(doc_b)) == 1 and list(pos_b) == list(range(pos_b[0], pos_b[0] + len(b)))
        if ex["next_sentence_label"] == 0:
            assert doc_a[0] == doc_b[0] and pos_b[0] >= pos_a[-1] + 1
            if len(ex["input_ids"]) < MAX_LEN:  # untruncated: B starts right where A ends
                assert pos_b[0] == pos_a[-1] + 1
        else:
            assert doc_a[0] != doc_b[0]
        seen[ex["next_sentence_label"]] += 1
    assert min(seen.values()) > 200


def test_sentences_after_a_random_b_are_put_back(corpus, tokenizer, doc_tokens, where):
    # Long enough that nothing is truncated: then each document's own text, read off its
    # examples in order (A, plus B when it is the continuation), is the whole document once.
    nsp = build_nsp_dataset(
        Dataset.from_dict({"sentences": corpus}), tokenizer, 256, short_seq_prob=0.0, seed=3
    )
    rebuilt: list[list[int]] = [[] for _ in doc_tokens]
    for ex in nsp:
        a, b = segments(ex, tokenizer.sep_token_id)
        own = a + b if ex["next_sentence_label"] == 0 else a
        rebuilt[where[a[0]][0]].extend(own)
    assert rebuilt == doc_tokens
    assert 0 < sum(nsp["next_sentence_label"]) < len(nsp)


def test_short_targets_are_drawn_per_pair_not_per_document(corpus, tokenizer, where):
    # Two long documents (a play, a book): BERT drew the short target once per document, so a
    # whole one came out short, or none of it. Per pair, each has its share of short pairs.
    long_docs = [sum(corpus[:50], []), sum(corpus[50:], [])]
    for prob, low, high in [(0.5, 0.3, 0.7), (0.0, 0.0, 0.02)]:
        nsp = build_nsp_dataset(
            Dataset.from_dict({"sentences": long_docs}), tokenizer, 64, short_seq_prob=prob
        )
        for doc in (0, 1):
            lengths = [
                len(ex["input_ids"])
                for ex in nsp
                if (where[segments(ex, tokenizer.sep_token_id)[0][0]][0] < 50) == (doc == 0)
            ]
            short = sum(n < 64 for n in lengths) / len(lengths)
            assert len(lengths) > 100 and low <= short <= high, (prob, doc, short)


@pytest.mark.parametrize("column", ["sentences", "document"])
def test_document_ends_are_held_out_of_every_document(corpus, column):
    docs = [*corpus, ["A document of one sentence stays in train."]]
    if column == "document":  # text, split into sentences as build_nsp_dataset would
        docs = ["\n".join(doc) for doc in docs]
    train, held_out = hold_out_document_ends(Dataset.from_dict({column: docs}), 10)
    for sentences, head, tail in zip(corpus, train["sentences"], held_out["sentences"]):
        assert head + tail == sentences  # nothing lost, nothing in both
        assert len(tail) == math.ceil(len(sentences) / 10) and len(head) > len(tail)
    assert train["sentences"][-1] == ["A document of one sentence stays in train."]
    assert held_out["sentences"][-1] == []  # dropped when the pairs are built


def test_same_seed_same_dataset(corpus, tokenizer, nsp):
    docs = Dataset.from_dict({"sentences": corpus})
    again = build_nsp_dataset(docs, tokenizer, MAX_LEN, seed=1)
    assert again._fingerprint == nsp._fingerprint  # so a cached result would be reused
    assert again.to_dict() == nsp.to_dict()
    assert build_nsp_dataset(docs, tokenizer, MAX_LEN, seed=2).to_dict() != nsp.to_dict()


def test_result_does_not_depend_on_parallelism(corpus, tokenizer, nsp):
    # Documents seed their own RNG, so splitting the work across processes changes nothing.
    docs = Dataset.from_dict({"sentences": corpus})
    assert (
        build_nsp_dataset(docs, tokenizer, MAX_LEN, seed=1, num_proc=2).to_dict() == nsp.to_dict()
    )


def test_document_text_column(tokenizer):
    docs = Dataset.from_dict(
        {"document": ["Alpha beta. Gamma delta.\nEpsilon.", "Zeta eta. Theta."]}
    )
    nsp = build_nsp_dataset(docs, tokenizer, MAX_LEN, seed=0)
    assert len(nsp) >= 2 and all(ex["input_ids"].count(tokenizer.sep_token_id) == 2 for ex in nsp)


def test_bad_inputs_fail_clearly(tokenizer):
    with pytest.raises(UserError, match="at least 2"):
        build_nsp_dataset(Dataset.from_dict({"sentences": [["Only one."]]}), tokenizer, MAX_LEN)
    with pytest.raises(UserError, match="'sentences' or 'document'"):
        build_nsp_dataset(Dataset.from_dict({"text": ["a"]}), tokenizer, MAX_LEN)


def test_collator_pads_and_passes_nsp_fields_through(nsp, tokenizer):
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)
    lengths = [len(ids) for ids in nsp["input_ids"]]
    shortest = lengths.index(min(lengths))  # so the batch needs padding
    examples = [nsp[i] for i in [shortest, *range(7)]]
    batch = collator(examples)
    longest = max(len(ex["input_ids"]) for ex in examples)
    assert batch["input_ids"].shape == batch["token_type_ids"].shape == (8, longest)
    assert batch["next_sentence_label"].tolist() == [ex["next_sentence_label"] for ex in examples]
    assert batch["next_sentence_label"].dtype == torch.long
    padding = batch["attention_mask"] == 0
    assert padding.any() and (batch["input_ids"][padding] == tokenizer.pad_token_id).all()
    assert (batch["token_type_ids"][padding] == 0).all() and (
        batch["labels"][padding] == -100
    ).all()
    # Special tokens are never chosen for masking.
    specials = batch["input_ids"] == tokenizer.cls_token_id
    specials |= batch["input_ids"] == tokenizer.sep_token_id
    assert (batch["labels"][specials] == -100).all() and (batch["labels"] != -100).any()


def test_padding_waste():
    ds = Dataset.from_dict({"input_ids": [[1] * n for n in (2, 4, 4, 4, 1)]})
    # In order: [2, 4] -> 8 slots, [4, 4] -> 8, [1] -> 1; 15 real tokens of 17.
    assert padding_waste(ds, batch_size=2, seed=None) == pytest.approx(2 / 17)
    assert padding_waste(ds, batch_size=1) == 0.0
    # The collator pads to a multiple of 8: [2, 4] -> 16 slots, [4, 4] -> 16, [1] -> 8.
    assert padding_waste(ds, batch_size=2, seed=None, pad_to_multiple_of=8) == pytest.approx(
        1 - 15 / 40
    )


@pytest.fixture(scope="module")
def wordpiece_dir(tmp_path_factory, corpus_files):
    from recipes.arguments import DataSourceArguments
    from tokenizer_training.train_tokenizer import TokenizerArguments, train_tokenizer

    out = tmp_path_factory.mktemp("nsp-wordpiece")
    args = TokenizerArguments(tokenizer_type="wordpiece", vocab_size=800, output_dir=str(out))
    train_tokenizer(args, DataSourceArguments(train_files=corpus_files))
    return out


def test_wikitext_rows_become_articles(tmp_path, wordpiece_dir):
    # The `dataset_name: wikitext` path, on a local file in wikitext's layout.
    lines = []
    for article in range(4):
        lines += ["", f" = Article {article} = ", ""]
        for section in range(2):
            lines += [f" = = Part {section} = = ", ""]
            lines += [f" Thou art {article} and {section} , good sir . Yes ! " * 3, ""]
    for name in ("wiki.txt", "wiki-valid.txt"):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    argv = [
        "--train_files", str(tmp_path / "wiki.txt"),
        "--validation_files", str(tmp_path / "wiki-valid.txt"),
        "--text_sample_by", "line", "--documents", "wikitext",
        "--tokenizer_name_or_path", str(wordpiece_dir), "--max_seq_length", "32",
    ]  # fmt: skip
    data_args, bert_args, _, _ = pretrain_bert.parse_args(argv)
    documents = load_documents(data_args, bert_args)
    assert documents["train"].num_rows == 4  # one per article
    tok = AutoTokenizer.from_pretrained(wordpiece_dir)
    pairs = nsp_pairs(documents, tok, data_args, bert_args, seed=0)["train"]
    texts = [tok.decode(ids, skip_special_tokens=True) for ids in pairs["input_ids"]]
    assert pairs.num_rows > 4 and not any("=" in t for t in texts)  # headings are dropped
    assert set(pairs["next_sentence_label"]) == {0, 1}
    # dupe_factor: more training copies, each paired afresh; the first is the one above
    bert_args.dupe_factor = 2
    twice = nsp_pairs(documents, tok, data_args, bert_args, seed=0)
    n = pairs.num_rows
    assert twice["train"].select(range(n)).to_dict() == pairs.to_dict()
    assert (
        twice["train"].select(range(n, twice["train"].num_rows))["input_ids"] != pairs["input_ids"]
    )
    assert twice["validation"].num_rows < twice["train"].num_rows  # validation: one copy
    # `auto` recognises the Hub's wikitext by name
    data_args.dataset_name, bert_args.documents = "Salesforce/wikitext", "auto"
    assert rows_are_wikitext_lines(data_args, bert_args)


def test_documents_of_one_sentence_are_refused(tokenizer):
    docs = Dataset.from_dict({"document": ["Alpha beta.", "Gamma delta.", "Epsilon zeta."]})
    with pytest.raises(UserError, match="each of the 3 documents is a single sentence"):
        build_nsp_dataset(docs, tokenizer, MAX_LEN)
