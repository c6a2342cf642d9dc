"""Labelled data for fine-tuning: load it, check it, number its labels.

Local csv/jsonl/parquet files or a Hub dataset (`datasets.load_dataset(name, config)`, e.g.
GLUE: `nyu-mll/glue` with `sst2`: sentence, label; `mrpc`: sentence1, sentence2, label). Every
split comes out with the columns `text` (+ `text_pair` for pairs) and `label`, an integer id;
the label names are the dataset's own (a ClassLabel's names) or the sorted distinct values.
Bad input stops with one message that names the file or field and the fix.
"""

from pathlib import Path

from datasets import ClassLabel, load_dataset

from recipes.data import BUILDERS, _check_utf8, _load_hub_dataset, resolve_data_files
from recipes.errors import UserError


def load_classification_data(args, seed: int) -> tuple[dict, list[str]]:
    """({"train": Dataset, "validation": Dataset}, label names); `args` is a
    finetune_classification.ClassificationDataArguments."""
    raw = _load(args)
    raw = {split: _task_columns(ds, args, where) for split, (ds, where) in raw.items()}
    if "validation" not in raw:
        # a seeded random share, not the first rows: labelled files are often sorted by label
        held = raw["train"].train_test_split(
            test_size=args.validation_split_percentage / 100, seed=seed
        )
        raw = {"train": held["train"], "validation": held["test"]}
    if args.max_train_samples is not None:
        n = min(args.max_train_samples, len(raw["train"]))
        raw["train"] = raw["train"].shuffle(seed=seed).select(range(n))
    if args.max_eval_samples is not None:
        n = min(args.max_eval_samples, len(raw["validation"]))
        raw["validation"] = raw["validation"].select(range(n))
    return _number_labels(raw, args.label_column)


def _load(args) -> dict:
    """{split: (Dataset, where it came from, for messages)}."""
    if args.train_files:
        data_files = resolve_data_files(args)
        builder = BUILDERS[Path(data_files["train"][0]).suffix.lower()]
        if builder == "text":
            raise UserError(
                f"`train_files`: {data_files['train'][0]} is plain text, which has no label "
                "column. Use .csv, .jsonl or .parquet with a text and a label column "
                "(`text_column`, `label_column`)."
            )
        if builder != "parquet":
            for split, files in data_files.items():
                _check_utf8(files, f"{split}_files", can_skip=False)
        loaded = load_dataset(builder, data_files=data_files)
        return {
            split: (ds, f"`{split}_files` ({', '.join(data_files[split])})")
            for split, ds in loaded.items()
        }
    loaded = _load_hub_dataset(args)
    where = f"`dataset_name: {args.dataset_name}` ({args.dataset_config_name or 'default'})"
    out = {}
    for field, split in [("train_split", args.train_split), ("validation_split", args.validation_split)]:  # fmt: skip
        if split not in loaded:
            if field == "validation_split" and split == "validation":
                continue  # no validation split: held out of train
            raise UserError(f"{where} has no split `{field}: {split}`; it has {', '.join(loaded)}.")
        out[field.removesuffix("_split")] = (loaded[split], f"{where}, split {split}")
    return out


def _task_columns(ds, args, where: str):
    columns = {"text": ("text_column", args.text_column), "label": ("label_column", args.label_column)}  # fmt: skip
    if args.text_pair_column:
        columns["text_pair"] = ("text_pair_column", args.text_pair_column)
    for field, name in columns.values():
        if name not in ds.column_names:
            raise UserError(
                f"`{field}: {name}` is not a column of {where}; it has {ds.column_names}. "
                f"Set `{field}` to the column that holds it."
            )
    ds = ds.select_columns([name for _, name in columns.values()])
    ds = ds.rename_columns({name: new for new, (_, name) in columns.items() if name != new})
    for column, (field, name) in columns.items():
        missing = sum(value is None for value in ds[column])
        if missing:
            raise UserError(f"{where}: {missing} row(s) have no `{name}` (`{field}`); fill or drop them.")  # fmt: skip
    return ds


def _number_labels(raw: dict, label_column: str) -> tuple[dict, list[str]]:
    feature = raw["train"].features["label"]
    if isinstance(feature, ClassLabel):  # a Hub dataset's own ids and names
        names = list(feature.names)
        for split, ds in raw.items():
            if -1 in ds.unique("label"):
                raise UserError(
                    f"the {split} data has unlabelled rows (label -1, as in GLUE's test split): "
                    "evaluate on a labelled split (`validation_split`)."
                )
    else:
        values = sorted(raw["train"].unique("label"))
        names = [str(v) for v in values]
        ids = {v: i for i, v in enumerate(values)}
        unknown = sorted(set(raw["validation"].unique("label")) - set(values), key=str)
        if unknown:
            raise UserError(
                f"the held-out data has label(s) {unknown} that the training data never has "
                f"(`label_column: {label_column}`); the model cannot learn them."
            )
        raw = {
            # a new column: written over "label", the ids would be cast back to its old type
            split: ds.map(
                lambda b: {"label_id": [ids[v] for v in b["label"]]},
                batched=True,
                remove_columns=["label"],
            ).rename_column("label_id", "label")
            for split, ds in raw.items()
        }
    present = raw["train"].unique("label")
    if len(present) < 2:
        raise UserError(
            f"`label_column: {label_column}` has a single class ({names[present[0]]!r}) in the "
            "training data; a classifier needs at least two. Check `label_column` and the files."
        )
    return raw, names
