"""BERT written out in plain PyTorch, one piece at a time, to read next to the paper.

Takes a `transformers.BertConfig` and mirrors `transformers.BertForPreTraining` module for
module, so the state dicts are interchangeable (only the tied decoder needs care, see the helpers
at the end). The parameter names are transformers' own, hence the `nn.ModuleDict`s with odd keys
such as `attention.self.query`: they buy checkpoints that stock transformers loads as they are.

    model = BertForPreTraining(BertConfig(vocab_size=30522), sparse_mlm_head=True)
    out = model(input_ids, attention_mask, token_type_ids, labels=labels, next_sentence_label=nsp)
    save_as_transformers(model, "outputs/bert")  # loads with transformers.AutoModelForMaskedLM
"""

import copy
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers import BertConfig, TrainerCallback
from transformers.activations import ACT2FN
from transformers.models.bert.modeling_bert import BertForPreTrainingOutput

from recipes.models.sparse_head import _at_least_one, _masked_loss


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        # Learned absolute positions 0..T-1; unlike RoBERTa there is no padding offset.
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(x))


class BertBlock(nn.Module):
    """Self-attention and a feed-forward net, each wrapped as LayerNorm(x + dropout(f(x)))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        h, eps = config.hidden_size, config.layer_norm_eps
        self.n_heads = config.num_attention_heads
        if h % self.n_heads:
            raise ValueError(
                f"hidden_size {h} is not divisible by num_attention_heads {self.n_heads}"
            )
        self.attention_dropout = config.attention_probs_dropout_prob
        # Nested as in transformers, to get its names: attention.self.query, output.LayerNorm...
        qkv = nn.ModuleDict({name: nn.Linear(h, h) for name in ("query", "key", "value")})
        attn_out = nn.ModuleDict({"dense": nn.Linear(h, h), "LayerNorm": nn.LayerNorm(h, eps)})
        self.attention = nn.ModuleDict({"self": qkv, "output": attn_out})
        self.intermediate = nn.ModuleDict({"dense": nn.Linear(h, config.intermediate_size)})
        self.output = nn.ModuleDict(
            {"dense": nn.Linear(config.intermediate_size, h), "LayerNorm": nn.LayerNorm(h, eps)}
        )
        self.act = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, seq, hidden = x.shape
        qkv = self.attention.self

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, heads, T, H / heads)
            return t.view(batch, seq, self.n_heads, hidden // self.n_heads).transpose(1, 2)

        q, k, v = heads(qkv.query(x)), heads(qkv.key(x)), heads(qkv.value(x))
        dropout = self.attention_dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        a = a.transpose(1, 2).reshape(batch, seq, hidden)
        # Post-norm, as in the original BERT: normalise after adding the residual.
        out = self.attention.output
        x = out.LayerNorm(x + self.dropout(out.dense(a)))
        ff = self.output.dense(self.act(self.intermediate.dense(x)))
        return self.output.LayerNorm(x + self.dropout(ff))


class BertPooler(nn.Module):
    """dense + tanh over the [CLS] position: the sentence vector the NSP head reads."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    """Embeddings, a stack of blocks, and the pooler."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        blocks = [BertBlock(config) for _ in range(config.num_hidden_layers)]
        self.encoder = nn.ModuleDict({"layer": nn.ModuleList(blocks)})
        self.pooler = BertPooler(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        # SDPA takes a boolean mask, True = may attend; (B, 1, 1, T) hides padded keys from every
        # query. Padded queries still compute something, which the losses ignore.
        mask = None if attention_mask is None else attention_mask[:, None, None, :].bool()
        x = self.embeddings(input_ids, token_type_ids)
        for block in self.encoder.layer:
            x = block(x, mask)
        return x, self.pooler(x)


class BertMLMHead(nn.Module):
    """dense + activation + LayerNorm, then scores against the tied word embeddings, plus a bias."""

    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.transform = nn.ModuleDict(
            {"dense": nn.Linear(h, h), "LayerNorm": nn.LayerNorm(h, eps=config.layer_norm_eps)}
        )
        self.act = ACT2FN[config.hidden_act]
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        t = self.transform
        hidden = t.LayerNorm(self.act(t.dense(hidden)))
        return F.linear(hidden, word_embeddings, self.bias)


class BertForPreTraining(nn.Module):
    """BERT with the masked-LM and next-sentence heads; loss = MLM CE + NSP CE (those labelled).

    With `sparse_mlm_head=True` and labels given, the MLM head runs only at labelled positions
    (~15%), skipping most of the hidden x vocab matmul; the loss is the same as the dense one,
    and `prediction_logits` is (n_labelled, vocab), rows in the order of `labels[labels != -100]`.
    """

    # Trainer then passes `num_items_in_batch`, the masked-token count of the whole optimizer
    # step (all accumulated micro-batches, all ranks), and leaves the loss undivided by
    # gradient_accumulation_steps: every masked token weighs the same, however they fall into
    # micro-batches, exactly as in transformers' BertForPreTraining with recipes/models/sparse_head.py's
    # sparse head. (A per-micro-batch mean would weigh a token of a lightly masked micro-batch
    # more than one of a heavily masked one.)
    accepts_loss_kwargs = True

    def __init__(self, config: BertConfig, sparse_mlm_head: bool = False):
        super().__init__()
        self.config = config
        self.sparse_mlm_head = sparse_mlm_head
        self.bert = BertModel(config)
        predictions = BertMLMHead(config)
        seq_relationship = nn.Linear(config.hidden_size, 2)
        self.cls = nn.ModuleDict({"predictions": predictions, "seq_relationship": seq_relationship})
        self.apply(self._init_weights)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # As transformers does: N(0, initializer_range) weights, zero biases, identity LayerNorms.
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, BertMLMHead):
            module.bias.zero_()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,  # other batch keys (special_tokens_mask...) are ignored
    ) -> BertForPreTrainingOutput:
        hidden, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        mlm_labels = labels
        if labels is not None and self.sparse_mlm_head:
            labelled = labels != -100
            hidden, mlm_labels = hidden[labelled], labels[labelled]
        # Tying by passing the matrix in, not by sharing a Parameter between two modules: the
        # state_dict then holds it once, and safetensors (which Trainer saves us with) refuses
        # tensors that share memory.
        word_embeddings = self.bert.embeddings.word_embeddings.weight
        prediction_logits = self.cls.predictions(hidden, word_embeddings)
        nsp_logits = self.cls.seq_relationship(pooled)

        # transformers' BertForPreTraining only returns a loss when both labels are given;
        # summing whichever are present also lets this model train MLM-only.
        losses = []
        n_masked = None
        if mlm_labels is not None:
            labelled = mlm_labels.reshape(-1) != -100  # all of them with the sparse head
            logits = prediction_logits.reshape(-1, prediction_logits.shape[-1])[labelled]
            targets = mlm_labels.reshape(-1)[labelled]
            n_masked = labelled.sum()
            # sum over this batch's masked tokens / the step's count (this batch's, by default)
            losses.append(_masked_loss(logits, targets, num_items_in_batch))
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label.reshape(-1))
            if num_items_in_batch is not None and n_masked is not None:
                # Trainer sums the micro-batches' losses: weigh this batch's NSP mean by its
                # share of the step's masked tokens (the shares sum to 1), as sparse_head.py does
                nsp_loss = nsp_loss * n_masked / _at_least_one(num_items_in_batch)
            losses.append(nsp_loss)
        return BertForPreTrainingOutput(
            loss=sum(losses) if losses else None,
            prediction_logits=prediction_logits,
            seq_relationship_logits=nsp_logits,
        )


# --- converting to and from transformers -------------------------------------------------------
# Our names are transformers' names. The one difference: transformers' model also lists the tied
# decoder (cls.predictions.decoder.weight is the word embedding matrix, decoder.bias is
# cls.predictions.bias) in its state_dict, while its saved checkpoints leave both out.
_DECODER_KEYS = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def to_transformers_state_dict(model: BertForPreTraining) -> dict[str, torch.Tensor]:
    """State dict for `transformers.BertForPreTraining.load_state_dict` (tied decoder included)."""
    sd = dict(model.state_dict())
    sd[_DECODER_KEYS[0]] = sd["bert.embeddings.word_embeddings.weight"]
    sd[_DECODER_KEYS[1]] = sd["cls.predictions.bias"]
    return sd


def from_transformers_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """State dict of a transformers BertForPreTraining (or its checkpoint) for our model."""
    return {k: v for k, v in sd.items() if k not in _DECODER_KEYS}


def transformers_config(model: BertForPreTraining) -> BertConfig:
    """The config.json that makes our weights a stock transformers BertForPreTraining."""
    config = copy.deepcopy(model.config)
    config.architectures = ["BertForPreTraining"]
    config.tie_word_embeddings = True  # our decoder always is the word embedding matrix
    return config


def save_as_transformers(model: BertForPreTraining, output_dir: str | os.PathLike) -> None:
    """Write config.json + model.safetensors that stock transformers loads.

    Loads with `BertForPreTraining.from_pretrained` and `AutoModelForMaskedLM.from_pretrained`
    (the latter warns that it has no use for the pooler and NSP weights).
    """
    os.makedirs(output_dir, exist_ok=True)
    transformers_config(model).save_pretrained(output_dir)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(output_dir, "model.safetensors"), metadata={"format": "pt"})


class SaveTransformersConfig(TrainerCallback):
    """Make Trainer's checkpoints of this model stock transformers checkpoints.

    Trainer saves a model that is not a `PreTrainedModel` as its state dict alone, in
    model.safetensors: already transformers' names, but with no config.json. This adds it to
    every checkpoint-N/ and, at the end of training, to output_dir (which `save_model` fills).
    """

    def _write(self, args, model, folder: str) -> None:
        if args.should_save:  # the main process
            transformers_config(model).save_pretrained(folder)

    def on_save(self, args, state, control, model=None, **kwargs):
        self._write(args, model, os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._write(args, model, args.output_dir)
