"""Pseudo-log-likelihood (Salazar et al. 2020, "Masked Language Model Scoring"): how likely a
masked LM finds a sentence. Mask each token in turn and sum log p(the original token) at the
masked position. Special tokens (`<s>`, `</s>`, `[CLS]`, `[SEP]`) are context, never scored.

A sentence of n scored tokens costs n forward passes of its own length. `pseudo_log_likelihoods`
packs the masked copies of many sentences into one batch (longest first, padded, at most
`token_budget` tokens per batch) and runs the head only at the masked position of each copy;
`pseudo_log_likelihoods_plain` is the straightforward way, one sentence's copies per forward
pass with the dense head, kept as the reference the batched scorer is tested against
(tests/unit/test_pll.py) and timed against (benchmarks/pll.py).

The minimal-pair evaluation (recipes/scoring/, and a pretraining run's `minimal_pairs`) and the
text evaluation's PLL per word share these functions.
"""

import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from recipes.models.families import FAMILIES

# Tokens (rows x padded length) per forward pass. Big enough that the matmuls keep every core
# busy, small enough that a layer's activations stay in the CPU's caches: larger batches were
# slower on a CPU, not faster (docs/measurements.md, "Pseudo-log-likelihood scoring").
TOKEN_BUDGET = 2048


def encode_for_scoring(tokenizer, sentences: list[str], max_length: int | None = None):
    """[(token ids, positions to score)] per sentence: the tokenizer's own special tokens
    added, every other position scored. A special token written in the text (`</s>`) is
    special there too: the tokenizer's special_tokens_mask marks only those it added, so the
    ids decide. The unknown token is not one of them: it stands for a piece of the text (a
    character the vocabulary lacks), and is scored like any word. `max_length`: longer
    sentences are cut (a caller that needs whole sentences splits them first)."""
    enc = tokenizer(
        sentences,
        add_special_tokens=True,
        return_attention_mask=False,
        truncation=max_length is not None,
        max_length=max_length,
    )
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    return [(ids, [i for i, t in enumerate(ids) if t not in special]) for ids in enc["input_ids"]]


def _masked_row_logits(model) -> Callable:
    """(input_ids, attention_mask, positions) -> the logits at `positions[i]` of row i only.

    Where the family's record names the masked-LM head (RoBERTa `lm_head`, BERT
    `cls.predictions`), the encoder runs on every position and the head only on the masked
    one: the head's vocabulary projection is most of a small model's work. ModernBERT does the
    same by its own `sparse_prediction`. Any other masked LM: the dense logits, indexed."""
    spec = FAMILIES.get(model.config.model_type)
    rows_of = lambda ids: torch.arange(ids.shape[0], device=ids.device)  # noqa: E731

    if spec is not None and spec.mlm_head:
        head = model.get_submodule(spec.mlm_head)

        def sparse(input_ids, attention_mask, positions):
            hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask)
            return head(hidden.last_hidden_state[rows_of(input_ids), positions])

        return sparse
    if spec is not None and spec.config_sparse_prediction and hasattr(model, "sparse_prediction"):

        def by_labels(input_ids, attention_mask, positions):
            labels = torch.full_like(input_ids, -100)
            labels[rows_of(input_ids), positions] = input_ids[rows_of(input_ids), positions]
            model.sparse_prediction = True  # one logit row per label, in row order
            try:
                return model(
                    input_ids=input_ids, attention_mask=attention_mask, labels=labels
                ).logits
            finally:
                model.sparse_prediction = model.config.sparse_prediction

        return by_labels

    def dense(input_ids, attention_mask, positions):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits[rows_of(input_ids), positions]

    return dense


def _batches(encoded, token_budget: int):
    """Batches of masked copies: lists of (sentence index, its ids, positions in this batch).
    Sentences longest first, so a batch's padded length is its first sentence's and the first
    batch is the largest (memory trouble shows at once); a sentence's copies may span batches."""
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    batch, width = [], 0
    for i in order:
        ids, positions = encoded[i]
        start = 0
        while start < len(positions):
            width = width or len(ids)  # the batch's padded length: its longest sentence
            rows = sum(len(p) for _, _, p in batch)
            room = max(token_budget // width - rows, 0)
            if room == 0 and batch:
                yield batch
                batch, width = [], 0
                continue
            take = positions[start : start + max(room, 1)]
            batch.append((i, ids, take))
            start += len(take)
    if batch:
        yield batch


@torch.inference_mode()
def pseudo_log_likelihoods(
    model,
    tokenizer,
    sentences: list[str],
    token_budget: int = TOKEN_BUDGET,
    progress: bool | None = None,
    encoded=None,
) -> list[float]:
    """The PLL of each sentence (natural log; 0.0 for one with no scorable token), batched
    across sentences. `progress`: a bar over the masked copies (None: only in a terminal).
    `encoded`: encode_for_scoring's output, where the caller has it already."""
    model.eval()
    encoded = encoded if encoded is not None else encode_for_scoring(tokenizer, sentences)
    logits_at = _masked_row_logits(model)
    pad, mask = tokenizer.pad_token_id, tokenizer.mask_token_id
    scores = torch.zeros(len(encoded), dtype=torch.float64)
    total = sum(len(p) for _, p in encoded)
    hide = None if progress is None else not progress  # tqdm: None hides it outside a terminal
    bar = tqdm(total=total, unit="copy", desc="pseudo-log-likelihood", disable=hide)
    for batch in _batches(encoded, token_budget):
        width = max(len(ids) for _, ids, _ in batch)
        rows = sum(len(p) for _, _, p in batch)
        input_ids = torch.full((rows, width), pad, dtype=torch.long)
        attention = torch.zeros((rows, width), dtype=torch.long)
        positions = torch.empty(rows, dtype=torch.long)
        owner = torch.empty(rows, dtype=torch.long)
        r = 0
        for i, ids, take in batch:
            n = len(take)
            input_ids[r : r + n, : len(ids)] = torch.tensor(ids)
            attention[r : r + n, : len(ids)] = 1
            positions[r : r + n] = torch.tensor(take)
            owner[r : r + n] = i
            r += n
        targets = input_ids[torch.arange(rows), positions].clone()
        input_ids[torch.arange(rows), positions] = mask
        if bool(attention.all()):  # no padding in this batch: no mask for attention to apply
            attention = None
        device = model.device  # the end of a run on a GPU scores there
        if attention is not None:
            attention = attention.to(device)
        input_ids, positions = input_ids.to(device), positions.to(device)
        logits = logits_at(input_ids, attention, positions).float()
        log_p = torch.log_softmax(logits, dim=-1)[
            torch.arange(rows, device=device), targets.to(device)
        ]
        scores.index_add_(0, owner, log_p.double().cpu())
        bar.update(rows)
    bar.close()
    return scores.tolist()


@torch.inference_mode()
def pseudo_log_likelihoods_plain(model, tokenizer, sentences: list[str]) -> list[float]:
    """The reference: per sentence, one forward pass over its masked copies (dense head, no
    padding), summing log p(original token) at each masked position."""
    model.eval()
    scores = []
    for ids, positions in encode_for_scoring(tokenizer, sentences):
        if not positions:
            scores.append(0.0)
            continue
        copies = torch.tensor(ids).repeat(len(positions), 1)
        rows, cols = torch.arange(len(positions)), torch.tensor(positions)
        copies[rows, cols] = tokenizer.mask_token_id
        log_probs = torch.log_softmax(model(input_ids=copies).logits.float(), dim=-1)
        scores.append(float(log_probs[rows, cols, torch.tensor(ids)[cols]].double().sum()))
    return scores


def timed(fn, *args, **kwargs) -> tuple[list[float], float]:
    """(fn's result, seconds it took): the sentences-per-second the evaluation reports."""
    start = time.perf_counter()
    return fn(*args, **kwargs), time.perf_counter() - start
