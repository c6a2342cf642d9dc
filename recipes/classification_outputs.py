"""What a fine-tuning command leaves in output_dir: the loss curves of the kept runs, the
learning curve, the model card with the comparison table, all_results.json (written last: the
run is finished), and the push."""

import json
import os
from pathlib import Path

from recipes import hub, learning_curve
from recipes.outputs import FINISHED_MARKER


def finish_classification_run(
    trainer, args, results, histories, data_args, base, label_names
) -> dict:
    """Loss and learning curves, card, trainer state, all_results.json (last: the run is
    finished), push. `trainer`: the saved model's run; `args`: the command's TrainingArguments."""
    from recipes.plotting import plot_fine_tuning, plot_learning_curve  # matplotlib: ~1 s

    out = Path(args.output_dir)
    curve = plot_fine_tuning(histories, out / "loss_curve.png", title=out.name)
    plot_learning_curve(
        results["learning_curve"], results["majority_baseline_accuracy"],
        out / "learning_curve.png", title=f"{out.name}: test accuracy",
    )  # fmt: skip
    trainer.state.save_to_json(str(out / "trainer_state.json"))
    hyper = {
        "max_seq_length": data_args.max_seq_length,
        "learning_rate": results["learning_curve"][-1]["pretrained"]["learning_rate"],
        "seeds": ", ".join(map(str, results["seeds"])),
        "global_batch_size": args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size,
        "epochs": args.num_train_epochs if args.max_steps <= 0 else None,
        "max_steps": trainer.state.max_steps,
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "token_embeddings": "frozen, as pretrained" if results["freeze_embeddings"] else "trained",
        "precision": {"no": "fp32"}.get(args.mixed_precision, args.mixed_precision),
    }
    repo_id = args.hub_model_id or out.name
    card = classification_card(repo_id, base, results, hyper, data_args, label_names, curve)
    (out / "training_args.bin").unlink(missing_ok=True)  # the last run's, not this command's
    card.save(out / "README.md")
    (out / FINISHED_MARKER).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if args.push_to_hub:
        url = hub.push_folder(out, args.hub_model_id, commit_message="End of fine-tuning")
        print(f"Pushed to {url}")
    return results


def classification_card(repo_id, base, results, hyper, data_args, label_names, curve):
    """A text-classification model card: the results next to the control and the baseline, and
    the checkpoint it was fine-tuned from."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    dataset = data_args.dataset_name or "custom"
    eval_results = [
        EvalResult(
            task_type="text-classification",
            dataset_type=dataset,
            dataset_name=data_args.dataset_config_name or dataset,
            metric_type=key,
            metric_value=round(float(results[f"test_{key}"]), 4),
        )
        for key in ("accuracy", "f1")
        if f"test_{key}" in results
    ]
    on_hub = not os.path.isdir(base)  # base_model must name a Hub repo, not a local folder
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["text-classification"],
        base_model=base if on_hub else None,
        datasets=[data_args.dataset_name] if data_args.dataset_name else None,
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
    )
    seeds = len(results["seeds"])
    floor = (f"Always '{results['majority_label']}' (the most frequent training label) scores "
             f"{results['majority_baseline_accuracy']:.3f}.")  # fmt: skip
    source = data_args.dataset_name or ", ".join(data_args.train_files)
    if data_args.dataset_config_name:
        source += f" ({data_args.dataset_config_name})"
    sections = [
        f"# {repo_id.split('/')[-1]}",
        f"A text classifier with labels {', '.join(label_names)}.",
        "## Fine-tuned from",
        f"Fine-tuned from `{base}`{_base_summary(base)}",
        "## Does the pretraining pay off?",
        f"Test accuracy on {results['test_examples']:,} examples, fine-tuned from the pretrained "
        "model"
        + " and, as the control, from random weights (same architecture)"
        * ("control_test_accuracy" in results)
        + f"; each side's learning rate kept on {results['validation_examples']:,} validation examples:",
        learning_curve.markdown_table(results["learning_curve"], seeds),
        floor,
        "![Learning curve](learning_curve.png)",
        "## Training data",
        f"{source}: {results['train_examples']:,} training examples; this model was fine-tuned "
        f"on {results['learning_curve'][-1]['labels']:,} of them (seed {results['seeds'][0]}).",
        "## Training hyperparameters",
        hub._table(("Hyperparameter", "Value"), {k: v for k, v in hyper.items() if v is not None}),
    ]
    if curve is not None:
        sections += ["## Loss curve", f"![Fine-tuning loss]({Path(curve).name})"]
    sections += [
        "## How to use",
        "```python\nfrom transformers import pipeline\n\n"
        f'classify = pipeline("text-classification", model="{repo_id}")\n'
        'print(classify("..."))  # a pair: classify({"text": "...", "text_pair": "..."})\n```',
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _base_summary(base: str) -> str:
    """What the base checkpoint's own all_results.json says about its pretraining, if local."""
    path = Path(base) / FINISHED_MARKER
    if not path.is_file():
        return "."
    pre = json.loads(path.read_text())
    parts = []
    if "eval_accuracy" in pre:
        parts.append(f"held-out masked-token accuracy {pre['eval_accuracy']:.3f}")
    if "perplexity" in pre:
        parts.append(f"perplexity {pre['perplexity']:.1f}")
    if "train_tokens" in pre:
        parts.append(f"{pre['train_tokens']:,} tokens seen")
    how = "further pretrained" if "eval_before_accuracy" in pre else "pretrained from scratch"
    return f", {how} with masked-LM" + (f": {', '.join(parts)}." if parts else ".")
