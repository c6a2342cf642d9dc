"""`make bench-gpu` cannot rot before a GPU runs it: its whole code path at tiny shapes on the
CPU (`--smoke`). No timing asserts: what is checked is what every cell records."""

import json

from benchmarks import gpu


def test_every_cell_trains_for_its_budget_and_records_its_speed(tmp_path):
    out = tmp_path / "results.json"
    gpu.main(["--smoke", "--work_dir", str(tmp_path), "--out", str(out)])
    report = json.loads(out.read_text())
    cells = report["cells"]
    expected = [(s, f, w) for s in (32, 64) for f in gpu.FAMILY_NAMES for w in gpu.WAYS]
    assert [(c["seq"], c["family"], c["way"]) for c in cells] == expected
    for cell in cells:
        assert cell["budget_spent_s"] >= 1.0 and cell["lr_at_end"] == 0.0, cell
        assert cell["steps_timed"] >= 1 and cell["tokens_per_s"] > 0, cell
        assert cell["mfu"] is None and cell["peak_memory_gb"] is None  # no GPU, no peak
    by = {(c["seq"], c["family"], c["way"]): c for c in cells}
    # the dense head computes every position's logits, the recipe's only the masked ones: more
    # FLOPs per token for run_mlm.py's way, whatever the speed
    for seq in (32, 64):
        for family in gpu.FAMILY_NAMES:
            recipe, stock = by[(seq, family, "recipe")], by[(seq, family, "run_mlm")]
            per_token = [c["model_tflops_per_s"] / c["tokens_per_s"] for c in (recipe, stock)]
            assert per_token[0] < per_token[1]
