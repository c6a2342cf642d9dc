"""A minimal-pairs file (recipes/data/minimal_pairs.py): BLiMP's format read with its groups;
every bad file stops with its line, what is wrong and the fix."""

import json

import pytest

from recipes.data.minimal_pairs import load_minimal_pairs
from recipes.errors import UserError


def _write(tmp_path, lines: list[str]):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_blimp_lines_with_groups_and_extra_keys(tmp_path):
    rows = [
        {"sentence_good": "The cats sleep.", "sentence_bad": "The cats sleeps.",
         "field": "morphology", "UID": "agreement", "pairID": "0", "lexically_identical": True},
        {"sentence_good": "He has gone.", "sentence_bad": "He has went.",
         "field": "morphology", "UID": "irregular", "pairID": "1", "lexically_identical": True},
    ]  # fmt: skip
    path = _write(tmp_path, [json.dumps(rows[0]), "", json.dumps(rows[1])])
    pairs = load_minimal_pairs(str(path))
    assert pairs.good == ["The cats sleep.", "He has gone."]
    assert pairs.bad == ["The cats sleeps.", "He has went."]
    assert pairs.groups == {"field": ["morphology"] * 2, "UID": ["agreement", "irregular"]}


GOOD = '{"sentence_good": "a b.", "sentence_bad": "b a.", "UID": "order"}'


@pytest.mark.parametrize(
    "lines, says",
    [
        ([GOOD, "{not json"], ["line 2 is not valid JSON", "fix or delete that line"]),
        ([GOOD, '["a", "b"]'], ["line 2 is a JSON list, not an object"]),
        (['{"sentence_good": "a b."}'], ["line 1 has no `sentence_bad`", "needs both"]),
        (['{"sentence_good": "", "sentence_bad": "b"}'], ["line 1 has an empty or non-string `sentence_good`"]),
        ([GOOD, '{"sentence_good": "a.", "sentence_bad": "b."}'], ["line 2 has no `UID`, which the first pair has"]),
        ([], ["holds no pairs"]),
        (["", "  "], ["holds no pairs"]),
    ],
)  # fmt: skip
def test_a_bad_file_names_its_line_and_the_fix(tmp_path, lines, says):
    path = _write(tmp_path, lines)
    with pytest.raises(UserError) as err:
        load_minimal_pairs(str(path))
    assert str(path) in str(err.value)
    for part in says:
        assert part in str(err.value)


def test_a_missing_file(tmp_path):
    with pytest.raises(UserError, match="is not a file"):
        load_minimal_pairs(str(tmp_path / "nope.jsonl"))
