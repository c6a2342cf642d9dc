"""FSDP under `accelerate launch`: which layer class is one unit (the family's own), and the tied
LM-head bias FSDP2 would find in two groups.
"""

import os
import types

from recipes.errors import UserError
from recipes.models.families import FAMILIES


def fsdp_layer_class_to_wrap(family: str) -> str | None:
    """Under `accelerate launch` with an FSDP config, tell accelerate which class is the
    family's encoder layer (the class FSDP wraps one unit around); returns it, or None when
    not under FSDP. accelerate reads FSDP_TRANSFORMER_CLS_TO_WRAP when Trainer builds its
    Accelerator, so this must run before the Trainer is built.

    Without it accelerate falls back to the model's `_no_split_modules`, which also wraps the
    embeddings on their own, apart from the decoder weight tied to them; a class hard-coded
    in the config (RobertaLayer) fails every other family with "Could not find the
    transformer layer class". A class set by hand must be this family's."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        return None
    if (
        os.environ.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP")
        != "TRANSFORMER_BASED_WRAP"
    ):
        return None
    layer = FAMILIES[family].layer_class
    named = os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP")
    if named and named != layer:
        raise UserError(
            f"the accelerate config wraps `fsdp_transformer_layer_cls_to_wrap: {named}`, but a "
            f"{family} model's layers are {layer}. Remove the key from the accelerate config: "
            "the recipe names each family's layer class itself (recipes/models/families.py)."
        )
    os.environ["FSDP_TRANSFORMER_CLS_TO_WRAP"] = layer
    return layer


def prepare_for_fsdp(family: str, model) -> str | None:
    """Under `accelerate launch` with an FSDP config, before the Trainer is built: the layer
    class to wrap (fsdp_layer_class_to_wrap, returned) and, for FSDP2, an LM-head bias that
    only one FSDP group holds (register_lm_bias_once, below). Nothing otherwise."""
    layer = fsdp_layer_class_to_wrap(family)
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if fsdp and os.environ.get("FSDP_VERSION", "1") == "2":
        refusal = FAMILIES[family].fsdp2_refusal
        if refusal:
            raise UserError(
                f"`fsdp_version: 2` cannot train a {family} model: {refusal}. Train it with "
                "DDP (recipes/accelerate_configs/ddp.yaml), or set `fsdp_version: 1` in the "
                "accelerate config (FSDP1 keeps the embeddings gathered with the root)."
            )
        register_lm_bias_once(model, FAMILIES[family].mlm_head)
    return layer


def register_lm_bias_once(model, mlm_head: str) -> None:
    """For FSDP2: RoBERTa's and BERT's LM head hold one bias Parameter under two names, the
    head's `bias` and its `decoder.bias` (tied, as `_tied_weights_keys` says). accelerate puts
    the decoder in a group with the embeddings its weight is tied to, the head's `bias` stays in
    the root group, and FSDP2 refuses a Parameter in two groups ("... is shared with a
    parameter already managed by another FSDP group"). So the decoder lets go of the bias and
    the head adds it after the decoder: the same logits and gradients, one Parameter, one name.
    The state dict then has `lm_head.bias` (the name a checkpoint stores anyway, the tied
    `decoder.bias` being left out), and stock from_pretrained ties it back. `mlm_head`: the
    head's submodule (the family's record); no-op without one, or without a decoder whose bias
    is tied to the head's."""
    head = model.get_submodule(mlm_head) if mlm_head else None
    decoder = getattr(head, "decoder", None)  # a head may decode with the embeddings it is handed
    if decoder is None or getattr(head, "bias", None) is None or decoder.bias is not head.bias:
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
