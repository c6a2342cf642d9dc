"""Model tweaks: the tokenizer loaded and checked, a masked-LM head run only where there is a
loss, and bf16 only where the hardware runs it fast. Which model classes and configs: families.py.
"""

import os
import types

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertForPreTraining, RobertaForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.bert.modeling_bert import BertForPreTrainingOutput

from recipes.errors import UserError


def require_folder_or_hub_id(path: str, field: str, hint: str = "") -> None:
    """A `path` that is no folder and not shaped like a Hub id (`owner/name`) is a typo or a
    missing output: say so, instead of a Hub lookup's cryptic error."""
    if not os.path.isdir(path) and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise UserError(f"`{field}: {path}` is not a folder.{' ' + hint if hint else ''}")


def load_tokenizer(
    path: str, max_seq_length: int, expected_vocab_size: int | None = None, where: str = "?"
):
    """AutoTokenizer.from_pretrained (no remote code), checked by check_tokenizer; its size
    against `expected_vocab_size` (set in `where`, a config file or the command line)."""
    require_folder_or_hub_id(
        path,
        "tokenizer_name_or_path",
        "Train a tokenizer with `python -m tokenizer_training.train_tokenizer` and point to its "
        "output_dir.",
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0]
        raise UserError(
            f"could not load a tokenizer from `tokenizer_name_or_path: {path}` (a local folder "
            f"written by tokenizer_training, or a Hub id): {reason}"
        ) from None
    check_tokenizer(tokenizer, path, max_seq_length)
    if expected_vocab_size is not None and len(tokenizer) != expected_vocab_size:
        # A base config pointed at the wrong tokenizer would train a model of the wrong shape
        # on a vocabulary fitted to other text, silently, for hours.
        raise UserError(
            f"`expected_vocab_size: {expected_vocab_size}` (from {where}), but the tokenizer in "
            f"`tokenizer_name_or_path: {path}` has {len(tokenizer)} tokens. Train the "
            "tokenizer this config names on your corpus (its header has the command), point "
            "`tokenizer_name_or_path` at one of that size, or set `expected_vocab_size` to "
            f"{len(tokenizer)} if this vocabulary is the one you mean."
        )
    return tokenizer


def check_tokenizer(tokenizer, path: str, max_seq_length: int) -> None:
    if tokenizer.mask_token is None:
        raise UserError(
            f"the tokenizer in {path} has no mask token, so masked-LM training cannot mask "
            "anything. Save it with tokenizer_training (it records <mask>/[MASK] in "
            "tokenizer_config.json) or set `mask_token` when saving."
        )
    if tokenizer.pad_token is None:
        raise UserError(f"the tokenizer in {path} has no pad token; set `pad_token` and save it.")
    if tokenizer.model_max_length < max_seq_length:
        raise UserError(
            f"`max_seq_length: {max_seq_length}` exceeds the tokenizer's model_max_length "
            f"({tokenizer.model_max_length}) in {path}; lower max_seq_length."
        )


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
    **kwargs,
):
    """RobertaForMaskedLM / BertForPreTraining forward with the masked-LM head (dense, layer
    norm, decoder) run only at masked positions. The head's vocabulary projection is hidden x
    vocab per position: at hidden 256 and vocab 30k that is 7.7M MACs, 9x an encoder layer's
    0.85M per token (2.3x all four layers'), so skipping the 85% unmasked positions removes
    most of a small model's work: 137 -> 55 GFLOP per 16 x 128 training step
    (benchmarks/bench.py). The MLM logits then hold one row per masked token, in row-major
    order of `labels != -100`. BERT's NSP head is unchanged; its loss = MLM + NSP, as in BERT."""
    # the full signature (not **inputs) tells Trainer which dataset columns the model takes
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
    inputs |= dict(token_type_ids=token_type_ids, inputs_embeds=inputs_embeds, **kwargs)
    bert = isinstance(self, BertForPreTraining)
    if labels is None:  # inference (fill-mask): the stock dense path
        nsp = {"next_sentence_label": next_sentence_label} if bert else {}
        return type(self).forward(self, **inputs, **nsp)
    encoder, head = (self.bert, self.cls.predictions) if bert else (self.roberta, self.lm_head)
    outputs = encoder(return_dict=True, **inputs)
    masked = labels != -100
    logits = head(outputs.last_hidden_state[masked])
    loss = _masked_loss(logits, labels[masked], num_items_in_batch)
    if not bert:
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
    nsp_logits = self.cls.seq_relationship(outputs.pooler_output)
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


def use_sparse_mlm_head(model) -> None:
    """Swap in the sparse forward on this instance.

    The class stays RobertaForMaskedLM/BertForPreTraining, so `save_pretrained` records the
    stock architecture and the checkpoint loads anywhere with no custom code; and since the
    change lives in `forward`, DDP/FSDP/DeepSpeed wrappers (which call forward) keep it.
    """
    if not isinstance(model, (RobertaForMaskedLM, BertForPreTraining)):
        raise ValueError(f"no sparse masked-LM head for {type(model).__name__}")
    model.forward = types.MethodType(sparse_mlm_forward, model)


def register_lm_bias_once(model) -> None:
    """For FSDP2: RoBERTa's and BERT's LM head hold one bias Parameter under two names, the
    head's `bias` and its `decoder.bias` (tied, as `_tied_weights_keys` says). accelerate puts
    the decoder in a group with the embeddings its weight is tied to, the head's `bias` stays in
    the root group, and FSDP2 refuses a Parameter in two groups ("... is shared with a
    parameter already managed by another FSDP group"). So the decoder lets go of the bias and
    the head adds it after the decoder: the same logits and gradients, one Parameter, one name.
    The state dict then has `lm_head.bias` (the name a checkpoint stores anyway, the tied
    `decoder.bias` being left out), and stock from_pretrained ties it back. No-op for a model
    without such a head (ModernBERT)."""
    head = getattr(model, "lm_head", None) or getattr(
        getattr(model, "cls", None), "predictions", None
    )
    if head is None or getattr(head, "bias", None) is None or head.decoder.bias is not head.bias:
        return
    head.decoder.register_parameter("bias", None)
    head.forward = types.MethodType(_decode_then_add_bias, head)
    # and tie_weights (accelerate calls it) no longer ties it back: it would fail on the None
    untied = {k: v for k, v in model._tied_weights_keys.items() if not k.endswith("decoder.bias")}
    model._tied_weights_keys = untied
    model.all_tied_weights_keys = model.get_expanded_tied_weights_keys(all_submodels=False)


def _decode_then_add_bias(self, *args, **kwargs):
    logits = type(self).forward(self, *args, **kwargs)
    # were the bias tied back into the decoder (tie_weights), it has been added already
    return logits if self.decoder.bias is not None else logits + self.bias


def native_cpu_bf16() -> str | None:
    """The CPU feature that runs bf16 matmuls natively, or None. Without one (e.g. AMD Zen 3,
    AVX2 only) oneDNN falls back to a reference kernel: measured 1.4 GFLOP/s in bf16 against
    185 in fp32 (benchmarks/README.md), a training step ~100x slower. With AVX512-BF16 (AMD
    Zen 4) bf16 ran at 431 against 178 GFLOP/s."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512-BF16"
    return None


def resolve_bf16(use_cpu: bool, fp16: bool) -> tuple[bool, str]:
    """`bf16: auto`: bf16 mixed precision where the hardware runs it fast, fp32 elsewhere.
    Returns the choice and the reason, which the run prints and the card records."""
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if fp16:
        return False, "fp16 is set"
    if launcher != "no":  # accelerate launch --mixed_precision / its config file decides
        return launcher == "bf16", f"accelerate's mixed_precision is {launcher}"
    if torch.cuda.is_available() and not use_cpu:
        gpu = torch.cuda.get_device_name()
        if torch.cuda.is_bf16_supported():
            return True, f"{gpu} supports bf16"
        return False, f"{gpu} has no bf16 support"
    feature = native_cpu_bf16()
    if feature:
        return True, f"this CPU has native bf16 matmuls ({feature})"
    return False, "this CPU has no native bf16 (no AMX or AVX512-BF16): it would run ~100x slower"


def warn_if_slow_bf16(training_args) -> None:
    """`bf16: true` set by hand on a CPU without native bf16: say it will be slow."""
    if training_args.bf16 and training_args.device.type == "cpu" and not native_cpu_bf16():
        print(
            "WARNING: bf16 on this CPU has no fast kernels (needs AMX or AVX512-BF16): "
            "matmuls run ~100x slower than in fp32. Set `bf16: auto` (or false)."
        )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
