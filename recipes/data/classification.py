"""Labelled data for fine-tuning: load it, check it, number its labels.

Local csv/jsonl/parquet files or a Hub dataset (`datasets.load_dataset(name, config)`, e.g.
GLUE: `nyu-mll/glue` with `sst2`: sentence, label; `mrpc`: sentence1, sentence2, label). Every
split comes out with the columns `text` (+ `text_pair` for pairs) and `label`, an integer id;
the label names are the dataset's own (a ClassLabel's names) or the sorted distinct values.

Files of one split may differ from another's: each is read by its own loader (csv next to
jsonl is fine) and only the columns the task names are kept. A row with an empty text is
dropped, with a count; a row without a label, a file that does not parse and a held-out label
the training data never has are errors that name the file and its line.
"""

import csv
import itertools
from pathlib import Path

from datasets import ClassLabel, Value, concatenate_datasets, load_dataset
from datasets.utils import logging as datasets_logging

from recipes.data.files import (
    BUILDERS,
    check_json_lines,
    check_utf8,
    data_suffix,
    resolve_data_files,
)
from recipes.data.text import hold_out, load_hub_dataset
from recipes.errors import UserError


def load_classification_data(args, seed: int) -> tuple[dict, list[str]]:
    """({"train", "validation", "test": Dataset}, label names); `args` is a
    ClassificationDataArguments.

    Three splits, three jobs: train is learnt from, validation picks the best checkpoint (and, in
    a sweep, the learning rate), test is only reported. Without validation or test data, each is
    a seeded random share of the training data (not the first rows: labelled files are often
    sorted by label), so the number reported is never on data that chose anything."""
    raw = _load_files(args) if args.train_files else _load_hub(args)
    total = len(raw["train"])
    for split in ("test", "validation"):
        if split not in raw:
            # a share of the training data as it was given: 10% + 10% leave 80% to train on
            size = max(1, round(total * getattr(args, f"{split}_split_percentage") / 100))
            raw["train"], raw[split] = hold_out(raw["train"], size, seed, args.group_column)
            print(f"{split}: {len(raw[split]):,} examples held out of the training data "
                  f"(`{split}_split_percentage`; `{split}_files` names them instead)")  # fmt: skip
    raw = {
        split: ds.remove_columns("group") if "group" in ds.column_names else ds
        for split, ds in raw.items()
    }
    if args.max_train_samples is not None:
        n = min(args.max_train_samples, len(raw["train"]))
        raw["train"] = raw["train"].shuffle(seed=seed).select(range(n))
    if args.max_eval_samples is not None:
        for split in ("validation", "test"):
            raw[split] = raw[split].select(range(min(args.max_eval_samples, len(raw[split]))))
    return _number_labels(raw, args.label_column)


def _load_files(args) -> dict:
    """{split: Dataset} from train_files, validation_files, test_files: each file read by its
    own loader (csv and jsonl can be mixed across splits), only the task's columns kept (a file
    may carry others), empty texts dropped with a count, labels the training data never has
    refused, file by file."""
    parts = {}  # split -> [(path, Dataset)]
    for split, files in resolve_data_files(args).items():
        for path in files:
            ds = _read_file(path, f"{split}_files")
            ds = _task_columns(ds, args, split, f"{path} (`{split}_files`)", path)
            parts.setdefault(split, []).append((path, ds))
    parts = _align(parts)
    known = {label for _, ds in parts["train"] for label in ds.unique("label")}
    for split in ("validation", "test"):
        for path, ds in parts.get(split, []):
            _refuse_unknown_labels(ds, known, f"`{split}_files`: {path}", args.label_column, path)
    return {
        split: concatenate_datasets([ds.remove_columns("row") for _, ds in files])
        for split, files in parts.items()
    }


def _read_file(path: str, field: str):
    """One csv/jsonl/parquet file as a Dataset; a file that does not parse is named, with the
    line where it can be."""
    builder = BUILDERS[data_suffix(path)]
    if builder == "text":
        raise UserError(
            f"`{field}`: {path} is plain text, which has no label column. Use .csv, .jsonl or "
            ".parquet with a text and a label column (`text_column`, `label_column`)."
        )
    kwargs = {}
    if builder != "parquet":
        check_utf8([path], field, can_skip=False)
    if builder == "json":
        check_json_lines([path], field)
    if builder == "csv":  # a text "NaN", "NA" or "null" is text; an empty cell is an empty text
        kwargs["keep_default_na"] = False
    verbosity = datasets_logging.get_verbosity()
    datasets_logging.set_verbosity(datasets_logging.CRITICAL)  # its error: said once, below
    try:
        return load_dataset(builder, data_files=[path], split="train", **kwargs)
    except Exception as err:  # pandas' and Arrow's parse errors: what they say is the message
        cause = err.__cause__ or err
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise UserError(
            f"`{field}`: cannot read {path} as {builder}: {reason}. Fix the file (a csv row "
            "with more fields than the header: quote the text that holds a comma)."
        ) from None
    finally:
        datasets_logging.set_verbosity(verbosity)


def _load_hub(args) -> dict:
    """{split: Dataset} from a Hub dataset's splits, the task's columns only."""
    loaded = load_hub_dataset(args)
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
        ds = _task_columns(loaded[name], args, split, f"{where}, split {name}")
        out[split] = ds.remove_columns("row")
    return out


def _task_columns(ds, args, split: str, where: str, path: str | None = None):
    """The task's columns of `ds`, renamed `text` (`text_pair`), `label` (and `group` in the
    training data, the only data groups are held out of); other columns are left out. Rows
    with an empty or whitespace-only text are dropped, with a count; a missing label (or
    training group) is an error. `where`: the data, for messages; `path`: its file, if one."""
    columns = {"text": ("text_column", args.text_column), "label": ("label_column", args.label_column)}  # fmt: skip
    if args.text_pair_column:
        columns["text_pair"] = ("text_pair_column", args.text_pair_column)
    if args.group_column and split == "train":
        columns["group"] = ("group_column", args.group_column)
    for key, name in columns.values():
        if name not in ds.column_names:
            held_out = " (validation and test data need no group)" * (key == "group_column")
            raise UserError(
                f"`{key}: {name}` is not a column of {where}; it has {ds.column_names}. "
                f"Set `{key}` to the column that holds it{held_out}."
            )
    ds = ds.select_columns([name for _, name in columns.values()])
    ds = ds.rename_columns({name: new for new, (_, name) in columns.items() if name != new})
    for column, feature in ds.features.items():
        if not isinstance(feature, (Value, ClassLabel)):  # mixed types (`1` and "b"): as text
            # a new column: written over the old one, the values would keep its type
            ds = ds.map(
                lambda batch, c=column: {"as_text": [v if v is None else str(v) for v in batch[c]]},
                batched=True,
                remove_columns=[column],
            ).rename_column("as_text", column)
    ds = ds.add_column("row", list(range(len(ds))))  # the file's own, for messages; dropped later
    if len(ds) == 0:
        raise UserError(f"{where} has no rows: fill it or leave it out.")
    for column in ("label", "group"):
        if column not in columns:
            continue
        key, name = columns[column]
        missing = [i for i, v in enumerate(ds[column]) if v is None or str(v).strip() == ""]
        if missing:
            raise UserError(
                f"{where}: {len(missing)} row(s) have no `{name}` (`{key}`), the first at "
                f"{_row(path, missing[0])}; fill or drop them."
            )
    texts = [c for c in ("text", "text_pair") if c in columns]
    keep = [
        i
        for i, row in enumerate(zip(*(ds[c] for c in texts)))
        if all(t is not None and str(t).strip() for t in row)
    ]
    if len(keep) < len(ds):
        print(f"dropped {len(ds) - len(keep)} empty text(s) in {where}")
        if not keep:
            raise UserError(
                f"{where}: every text is empty (`text_column: {args.text_column}`); fill the "
                "texts or leave the file out."
            )
        ds = ds.select(keep)
    return ds


def _row(path: str | None, index: int) -> str:
    """Where the `index`-th row (0-based) of file `path` is, as an editor shows it: the line of
    a .jsonl or .csv file (blank lines skipped, as the loaders skip them), else the row."""
    suffix = Path(path).suffix.lower() if path else ""
    if suffix not in (".jsonl", ".csv"):  # parquet, compressed, a Hub dataset: rows
        return f"row {index + 1}"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        if suffix == ".jsonl":
            starts = (n for n, line in enumerate(fh, 1) if line.strip())
        else:  # a quoted cell may span lines: a row starts after the previous one ends
            reader = csv.reader(fh)
            starts, end = [], 0
            for record in reader:
                if record:
                    starts.append(end + 1)
                end = reader.line_num
            starts = iter(starts[1:])  # the header
        line = next(itertools.islice(starts, index, None), None)
    return f"line {line}" if line else f"row {index + 1}"


def _align(parts: dict) -> dict:
    """Give every file's columns one type, so that the files of a split concatenate and all
    splits' labels compare: texts as strings; labels as they are where every file agrees, else
    as strings (csv reads `1` as a number, jsonl may hold "1")."""

    def differ(column: str, splits) -> bool:
        types = [ds.features.get(column) for s in splits for _, ds in parts.get(s, [])]
        return any(t != types[0] for t in types)

    labels_differ, groups_differ = differ("label", parts), differ("group", ["train"])
    aligned = {}
    for split, files in parts.items():
        aligned[split] = []
        for path, ds in files:
            features = ds.features.copy()
            for column in ("text", "text_pair"):
                if column in features:
                    features[column] = Value("string")
            if labels_differ:
                features["label"] = Value("string")
            if groups_differ and "group" in features:
                features["group"] = Value("string")
            aligned[split].append((path, ds.cast(features) if features != ds.features else ds))
    return aligned


def _refuse_unknown_labels(ds, known: set, where: str, label_column: str, path=None) -> None:
    unknown = sorted(set(ds.unique("label")) - known, key=str)
    if unknown:
        rows = ds["row"] if "row" in ds.column_names else range(len(ds))
        first = next(r for r, v in zip(rows, ds["label"]) if v in set(unknown))
        listed = ", ".join(map(repr, unknown[:10]))
        if len(unknown) > 10:
            listed += f" and {len(unknown) - 10} more"
        at = f", the first at {_row(path, first)}" if path else ""
        raise UserError(
            f"{where} has label(s) {listed} that the training data never has "
            f"(`label_column: {label_column}`{at}); the model cannot learn them. Fix those "
            "labels, drop their rows, or add training examples with them."
        )


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
        for split in ("validation", "test"):  # files were checked one by one already
            _refuse_unknown_labels(raw[split], set(values), f"the {split} data", label_column)
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
