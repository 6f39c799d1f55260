"""The ranking check: what a set of picked slices holds, each ranking's picks, the summary and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_tumorseg.cli import main
from napari_tumorseg.experiments.effort import Segmented
from napari_tumorseg.experiments.ranking import RANKINGS, Coverage, rank, score_case, summarize_rankings


def volumes():
    truth = np.zeros((12, 20, 20), np.uint8)
    truth[2:5, 5:10, 5:10] = 2  # lesion 1, found
    truth[8:10, 14:19, 14:19] = 3  # lesion 2, missed
    prediction = truth.copy()
    prediction[8:10] = 0
    prediction[0, 0:5, 0:5] = 1  # a false positive on a healthy slice
    return prediction, truth


def test_coverage_counts_the_wrong_voxels_edits_and_lesions_on_the_picked_slices():
    prediction, truth = volumes()
    coverage = Coverage(prediction, truth)
    assert coverage.of([0]) == {"error_share": 25 / 75, "needing_edits": 1.0, "fp_found": 1.0, "missed_found": 0.0}
    assert coverage.of([9, 9]) == {"error_share": 25 / 75, "needing_edits": 1.0, "fp_found": 0.0, "missed_found": 1.0}
    assert coverage.of([3, 6]) == {"error_share": 0.0, "needing_edits": 0.0, "fp_found": 0.0, "missed_found": 0.0}


def test_the_truths_order_finds_every_error_and_random_draws_stay_inside_the_brain():
    prediction, truth = volumes()
    probabilities = np.zeros((4, *truth.shape), np.uint8)
    probabilities[0] = 255
    result = Segmented(prediction, probabilities)
    brain = list(range(12))
    rng = np.random.default_rng(0)
    assert sorted(rank("dice", result, truth, brain, 3, rng)) == [0, 8, 9]
    assert set(rank("random", result, truth, [4, 5, 6], 2, rng)) <= {4, 5, 6}
    row = score_case(result, truth, brain, (3,), seed=0)
    assert set(row) == set(RANKINGS)
    assert row["dice"]["3"]["error_share"] == 1.0 and row["dice"]["3"]["missed_found"] == 1.0
    assert 0.0 < row["random"]["3"]["error_share"] < 1.0  # a mean over draws, not one lucky draw


def test_the_summary_tests_suggestions_against_random_paired_over_cases():
    def row(suggest, random):
        shares = {name: {"2": {"error_share": 0.0, "needing_edits": 0.0, "fp_found": 0.0, "missed_found": 0.0}}
                  for name in RANKINGS}
        shares["suggest"]["2"]["error_share"], shares["random"]["2"]["error_share"] = suggest, random
        return {"rankings": shares, "missed": 1, "fp": 2}

    rows = [row(0.3 + i / 100, 0.1) for i in range(6)]
    summary = summarize_rankings(rows, (2,))
    test = summary["suggest_vs_random_error_share"]["2"]
    assert test["a_better"] == 6 and test["mean_difference"] == pytest.approx(0.225)
    assert test["p_value"] < 0.05
    assert summary["totals"] == {"missed": 6, "fp": 12}


def test_the_ranking_command_writes_its_page(tmp_path, torch_single_thread):
    out = tmp_path / "ranking"
    status = main(["experiment", "ranking", "--out", str(out), "--quick", "--threads", "1", "--no-real",
                   "--k", "1,3"])
    assert status == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["ks"] == [1, 3] and results["seeds"] == [34000, 34001] and results["real_rows"] == []
    assert {"results.md", "rankings.png"} <= {p.name for p in out.iterdir()}
    assert "tumorseg experiment ranking --out" in (out / "results.md").read_text(encoding="utf-8")
