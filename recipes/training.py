"""The shared end of both pretraining recipes: train, count tokens/s, evaluate on the held-out
split, print the result, then save, card and push (outputs.finish_run).

A recipe builds its data, model, collator and Trainer, then calls `train_evaluate_finish`: what
happens after that is the same for RoBERTa, ModernBERT and BERT, so it is written once.
"""

import torch.distributed as dist

from recipes.continued import before_metrics, evaluate_before
from recipes.metrics import add_perplexity
from recipes.outputs import finish_run, widget_example


def train_evaluate_finish(
    trainer,
    *,
    resume_from: str | None,
    base_model: str | None,
    family: str,
    data_args,
    held_out_texts: list[str],
    metrics: dict | None = None,
    mlm_loss_key: str = "loss",
) -> dict:
    """Train `trainer` (resuming from `resume_from`), evaluate, print, save; the run's metrics.

    base_model: the checkpoint the model starts from (continued pretraining; None: from
        scratch): its weights are evaluated first, so the gain is a number (`eval_before_*`,
        `perplexity_before`), and the card names it.
    metrics: extra numbers the recipe measured before training (e.g. BERT's padding share).
    mlm_loss_key: the eval metric that is the masked-LM loss alone ("loss" for the MLM recipe,
        "mlm_loss" for BERT, whose eval_loss is MLM + NSP); perplexity is exp of it.
    held_out_texts: validation passages; one becomes the card's fill-mask widget example.
    """
    if base_model:
        evaluate_before(trainer, resume_from)
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(train_result.metrics) | (metrics or {})
    tokens = trainer.state.num_input_tokens_seen  # non-padding tokens, all ranks
    metrics["train_tokens"] = tokens
    metrics["train_tokens_per_second"] = round(tokens / metrics["train_runtime"], 1)

    prefix = f"eval_{mlm_loss_key}".removesuffix("_loss")  # eval_loss -> "eval"
    metrics.update(add_perplexity(trainer.evaluate(), prefix=prefix))
    before = before_metrics(trainer, loss_key=mlm_loss_key)
    metrics.update(before)
    print(result_lines(metrics, before))

    prompt = widget_example(held_out_texts, trainer.processing_class.mask_token)
    results = finish_run(
        trainer,
        metrics,
        model_type=family,
        data_args=data_args,
        widget_text=prompt,
        base_model=base_model,
    )
    leave_process_group()
    return results


def leave_process_group() -> None:
    """Under `accelerate launch` / torchrun: wait for every rank, then leave the process group.
    A rank that exits with the group's threads still running aborts at exit ("terminate called
    without an active exception", SIGABRT: a failed launch after a finished run)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def result_lines(metrics: dict, before: dict) -> str:
    """The run's verdict: held-out accuracy against the most-frequent-token baseline, and
    perplexity (and for BERT next-sentence accuracy against the more frequent label)."""

    def was(key: str, spec: str, what: str) -> str:
        return f" ({before[key]:{spec}} {what})" if before else ""

    lines = [
        f"held-out masked-token accuracy {metrics['eval_accuracy']:.3f}"
        f"{was('eval_before_accuracy', '.3f', 'before training')} vs "
        f"{metrics['eval_majority_baseline_accuracy']:.3f} for always predicting the most "
        f"frequent token; perplexity {metrics['perplexity']:.1f}"
        f"{was('perplexity_before', '.1f', 'before')}"
    ]
    if "eval_nsp_accuracy" in metrics:
        lines.append(
            f"held-out next-sentence accuracy {metrics['eval_nsp_accuracy']:.3f}"
            f"{was('eval_before_nsp_accuracy', '.3f', 'before training')} vs "
            f"{metrics['eval_nsp_majority_baseline_accuracy']:.3f} for the more frequent label"
        )
    return "\n".join(lines)
