"""The masked-LM head run only at masked positions during training: same loss and gradients as
the dense head, a fraction of the work; the model class stays the stock one.
"""

import functools
import types

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.bert.modeling_bert import BertForPreTrainingOutput


def _masked_loss(logits, targets, num_items_in_batch):
    # Sum over this batch's masked tokens, divided by the masked-token count of the whole
    # optimizer step (all accumulation micro-batches and all ranks, as Trainer passes it):
    # every masked token weighs the same, however they fall into micro-batches.
    # A step without a single masked token (tiny batches or mlm_probability) then contributes
    # 0, where 0 / 0 would be NaN and poison every weight.
    total = F.cross_entropy(logits.float(), targets, reduction="sum")
    return total / _at_least_one(
        targets.numel() if num_items_in_batch is None else num_items_in_batch
    )


def _at_least_one(count):
    return count.clamp(min=1) if torch.is_tensor(count) else max(count, 1)  # no GPU sync


def sparse_mlm_forward(
    self,
    input_ids=None,
    attention_mask=None,
    token_type_ids=None,
    position_ids=None,
    inputs_embeds=None,
    labels=None,
    next_sentence_label=None,
    num_items_in_batch=None,
    *,
    mlm_head: str,
    mlm_head_args: tuple[str, ...] = (),
    nsp_head: str = "",
    **kwargs,
):
    """A masked-LM forward (RobertaForMaskedLM, BertForPreTraining, ...) with the masked-LM head
    (dense, layer norm, decoder: the submodule `mlm_head`, called with the hidden states and
    then the submodules `mlm_head_args` name, as the model's own forward calls it) run only at
    masked positions. The
    head's vocabulary projection is hidden x vocab per position: at hidden 256 and vocab 30k
    that is 7.7M MACs, 9x an encoder layer's 0.85M per token (2.3x all four layers'), so
    skipping the 85% unmasked positions removes most of a small model's work: 137 -> 55 GFLOP
    per 16 x 128 training step (benchmarks/bench.py). The MLM logits then hold one row per
    masked token, in row-major order of `labels != -100`. With an `nsp_head` (BERT) the
    next-sentence head runs as before on the pooled output; the loss = MLM + NSP, as in BERT."""
    # the full signature (not **inputs) tells Trainer which dataset columns the model takes
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
    inputs |= dict(token_type_ids=token_type_ids, inputs_embeds=inputs_embeds, **kwargs)
    if labels is None:  # inference (fill-mask): the stock dense path
        nsp = {"next_sentence_label": next_sentence_label} if nsp_head else {}
        return type(self).forward(self, **inputs, **nsp)
    outputs = self.base_model(return_dict=True, **inputs)
    masked = labels != -100
    head_args = [self.get_submodule(name) for name in mlm_head_args]
    logits = self.get_submodule(mlm_head)(outputs.last_hidden_state[masked], *head_args)
    loss = _masked_loss(logits, labels[masked], num_items_in_batch)
    if not nsp_head:
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
    nsp_logits = self.get_submodule(nsp_head)(outputs.pooler_output)
    if next_sentence_label is not None:
        nsp_loss = F.cross_entropy(nsp_logits.float(), next_sentence_label.view(-1))
        if num_items_in_batch is not None:
            # Trainer then sums micro-batch losses (accumulation, ranks) without averaging them:
            # weigh this NSP mean by the batch's share of the step's masked tokens (shares sum to 1)
            nsp_loss = nsp_loss * masked.sum() / _at_least_one(num_items_in_batch)
        loss = loss + nsp_loss
    return BertForPreTrainingOutput(
        loss=loss, prediction_logits=logits, seq_relationship_logits=nsp_logits
    )


def use_sparse_mlm_head(model, spec) -> None:
    """Swap in the sparse forward on this instance, with the heads the family's record `spec`
    (recipes/models/families.py `Family`: `mlm_head`, `mlm_head_args`, `nsp_head`) names.

    The class stays the stock one (the family's `model_class`), so `save_pretrained`
    records the stock architecture and the checkpoint loads anywhere with no custom code; and
    since the change lives in `forward`, DDP/FSDP/DeepSpeed wrappers (which call forward) keep
    it. The heads are named, not held, so a deep copy of the model uses its own."""
    if not spec.mlm_head:
        raise ValueError(f"no sparse masked-LM head for {type(model).__name__}")
    forward = functools.partial(
        sparse_mlm_forward,
        mlm_head=spec.mlm_head,
        mlm_head_args=spec.mlm_head_args,
        nsp_head=spec.nsp_head,
    )
    model.forward = types.MethodType(forward, model)
