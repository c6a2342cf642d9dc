"""Labelled data for fine-tuning: load it, check it, number its labels.

Local csv/jsonl/parquet files or a Hub dataset (`datasets.load_dataset(name, config)`, e.g.
GLUE: `nyu-mll/glue` with `sst2`: sentence, label; `mrpc`: sentence1, sentence2, label). Every
split comes out with the columns `text` (+ `text_pair` for pairs) and `label`, an integer id;
the label names are the dataset's own (a ClassLabel's names) or the sorted distinct values.
"""

import itertools
import random
from collections import Counter
from pathlib import Path

from datasets import ClassLabel, load_dataset

from recipes.data.text import BUILDERS, _check_utf8, _load_hub_dataset, resolve_data_files
from recipes.errors import UserError


def load_classification_data(args, seed: int) -> tuple[dict, list[str]]:
    """({"train", "validation", "test": Dataset}, label names); `args` is a
    ClassificationDataArguments.

    Three splits, three jobs: train is learnt from, validation picks the best checkpoint (and, in
    a sweep, the learning rate), test is only reported. Without validation or test data, each is
    a seeded random share of the training data (not the first rows: labelled files are often
    sorted by label), so the number reported is never on data that chose anything."""
    raw = _load(args)
    raw = {split: _task_columns(ds, args, where) for split, (ds, where) in raw.items()}
    total = len(raw["train"])
    for split in ("test", "validation"):
        if split not in raw:
            # a share of the training data as it was given: 10% + 10% leave 80% to train on
            size = max(1, round(total * getattr(args, f"{split}_split_percentage") / 100))
            raw["train"], raw[split] = _hold_out(raw["train"], size, seed, args.group_column)
            print(f"{split}: {len(raw[split]):,} examples held out of the training data "
                  f"(`{split}_split_percentage`; `{split}_files` names them instead)")  # fmt: skip
    if args.group_column:
        raw = {split: ds.remove_columns("group") for split, ds in raw.items()}
    if args.max_train_samples is not None:
        n = min(args.max_train_samples, len(raw["train"]))
        raw["train"] = raw["train"].shuffle(seed=seed).select(range(n))
    if args.max_eval_samples is not None:
        for split in ("validation", "test"):
            raw[split] = raw[split].select(range(min(args.max_eval_samples, len(raw[split]))))
    return _number_labels(raw, args.label_column)


def _hold_out(train, size: int, seed: int, group_column: str | None):
    """(rest, held out): `size` random examples; with `group_column`, whole groups until they
    hold at least `size` examples, taken in turn from each label's groups (a group's label: its
    most frequent), so the held-out labels stay balanced and no group is on both sides."""
    if not group_column:
        held = train.train_test_split(test_size=size, seed=seed)
        return held["train"], held["test"]
    groups, labels = train["group"], train["label"]
    members = {}
    for group, label in zip(groups, labels):
        members.setdefault(group, Counter())[label] += 1
    by_label = {}
    rng = random.Random(seed)
    for group in rng.sample(sorted(members, key=str), len(members)):
        by_label.setdefault(members[group].most_common(1)[0][0], []).append(group)
    turns = [g for row in itertools.zip_longest(*by_label.values()) for g in row if g is not None]
    chosen, taken = set(), 0
    for group in turns:
        if taken >= size:
            break
        chosen.add(group)
        taken += members[group].total()
    if len(chosen) == len(members):
        raise UserError(
            f"`group_column: {group_column}`: the training data has only {len(members)} "
            "group(s), too few to hold whole ones out; name `validation_files` and `test_files`."
        )
    held = [i for i, g in enumerate(groups) if g in chosen]
    rest = [i for i, g in enumerate(groups) if g not in chosen]
    return train.select(rest), train.select(held)


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
    for split in ("train", "validation", "test"):
        name = getattr(args, f"{split}_split")
        if name is None:
            continue  # held out of train
        if name not in loaded:
            if split == "test" and name == "test":
                continue  # the dataset has no test split: held out of train
            raise UserError(
                f"{where} has no split `{split}_split: {name}`; it has {', '.join(loaded)}."
            )
        out[split] = (loaded[name], f"{where}, split {name}")
    return out


def _task_columns(ds, args, where: str):
    columns = {"text": ("text_column", args.text_column), "label": ("label_column", args.label_column)}  # fmt: skip
    if args.text_pair_column:
        columns["text_pair"] = ("text_pair_column", args.text_pair_column)
    if args.group_column:
        columns["group"] = ("group_column", args.group_column)
    for key, name in columns.values():
        if name not in ds.column_names:
            raise UserError(
                f"`{key}: {name}` is not a column of {where}; it has {ds.column_names}. "
                f"Set `{key}` to the column that holds it."
            )
    ds = ds.select_columns([name for _, name in columns.values()])
    ds = ds.rename_columns({name: new for new, (_, name) in columns.items() if name != new})
    for column, (key, name) in columns.items():
        missing = sum(value is None for value in ds[column])
        if missing:
            raise UserError(f"{where}: {missing} row(s) have no `{name}` (`{key}`); fill or drop them.")  # fmt: skip
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
