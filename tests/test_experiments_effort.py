"""The radiologist's-curve experiment: its scoring, its strategies, and a tiny end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_tumorseg.experiments.effort import EffortConfig, parse_run
from napari_tumorseg.experiments.effort_analysis import slices_needed
from napari_tumorseg.experiments.effort_scoring import (
    pick_by_dice,
    pick_random,
    pick_suggested,
    rest_scores,
    slices_needing_edits,
)


def volumes():
    truth = np.zeros((10, 20, 20), np.uint8)
    truth[2:5, 5:10, 5:10] = 2  # lesion 1
    truth[7:9, 14:19, 14:19] = 3  # lesion 2
    prediction = truth.copy()
    prediction[7:9] = 0  # lesion 2 missed
    prediction[0, 0:5, 0:5] = 1  # a false positive on a healthy slice
    return prediction, truth


def test_the_rest_is_scored_healthy_slices_included_and_corrected_slices_left_out():
    prediction, truth = volumes()
    scores = rest_scores(prediction, truth, [], (1.0, 1.0, 1.0))
    assert scores["lesions"] == 2 and scores["lesion_sensitivity"] == 0.5
    assert scores["fp_lesions"] == 1 and scores["fp_voxels"] == 25
    assert scores["slices_needing_edits"] == 3  # slice 0 (false positive), 7 and 8 (missed)
    wt = 2 * 75 / (75 + 25 + 75 + 50)
    assert scores["dice"]["WT"] == pytest.approx(wt, abs=1e-4)
    corrected = rest_scores(prediction, truth, [0, 7, 8], (1.0, 1.0, 1.0))
    assert corrected["dice"]["WT"] == 1.0 and corrected["fp_voxels"] == 0 and corrected["slices_needing_edits"] == 0
    assert corrected["final_dice"]["WT"] == 1.0  # the corrected slices pasted in: the exported mask is right
    assert scores["final_dice"]["WT"] == pytest.approx(wt, abs=1e-4)


def test_a_slice_needs_an_edit_when_enough_of_it_is_wrong():
    truth = np.zeros((3, 40, 40), np.uint8)
    truth[:, 0:30, 0:30] = 2  # 900 tumour voxels on each slice
    prediction = truth.copy()
    prediction[0, 0:30, 0:6] = 0  # 180 wrong: a fifth, not more
    prediction[1, 0:30, 0:7] = 0  # 210 wrong: more than a fifth
    prediction[2, 35:39, 35:39] = 2  # 16 wrong voxels: a speck under 20
    assert slices_needing_edits(prediction, truth, [0, 1, 2]) == [1]


def test_strategies_pick_new_slices_inside_the_brain():
    prediction, truth = volumes()
    rng = np.random.default_rng(0)
    brain = list(range(1, 10))
    assert pick_by_dice(prediction, truth, brain, [], 2, rng) == [7, 8]  # the missed lesion: Dice 0, most wrong
    assert pick_by_dice(prediction, truth, brain, [7, 8], 2, rng)[0] not in (7, 8)
    picks = pick_random(brain, [3, 4], 2, rng)
    assert len(set(picks)) == 2 and not {3, 4, 0} & set(picks)
    scores = np.zeros(10)
    scores[[0, 5, 6]] = [9, 3, 2]  # slice 0 scores highest but is outside the brain
    assert pick_suggested(scores, brain, [], 2, rng)[0] == 5


def test_runs_and_the_slices_a_curve_needs():
    assert parse_run("paste") == ("paste", None) and parse_run("suggest/active-best") == ("suggest", "active-best")
    for bad in ("paste/active", "suggest", "guess/active", "suggest/adam"):
        with pytest.raises(ValueError):
            parse_run(bad)
    assert slices_needed([0.5, 0.6, 0.8, 0.9], [0, 2, 4, 6], 0.8) == 4
    assert slices_needed([0.5, 0.6], [0, 2], 0.8) is None


def test_a_tiny_effort_run_writes_curves_tests_and_the_real_targets(tmp_path, monkeypatch, torch_single_thread):
    from napari_tumorseg.experiments.api import effort_experiment, render
    from napari_tumorseg.experiments.effort import BaseModel
    from napari_tumorseg.experiments.stand_in import StandInConfig, pretrain_stand_in
    from napari_tumorseg.io import write_case
    from napari_tumorseg.jobs import drive
    from napari_tumorseg.synth.generate import make_case

    shape = (32, 48, 48)
    real = tmp_path / "real"
    for name, domain, seed in (("TCGA-DU-7294", "glioma", 1), ("BraTS-MET-00110-000", "metastasis", 2)):
        case = make_case(domain, seed, shape=shape)
        write_case(case if name.startswith("TCGA") else case.__class__(name, case.images, case.geometry),
                   real / name, layout="brats2020")
    monkeypatch.setenv("TUMORSEG_REAL_DATA", str(real))
    config = EffortConfig.quick(patients=1, shape=shape, runs=("paste", "suggest/active", "random/active"),
                                real=True, real_seeds=1, real_runs=("suggest/active",), target_slices=2)
    stand_in = pretrain_stand_in(StandInConfig(steps=10, cases=2), shape)
    bases = {"unet": BaseModel(stand_in, None, "stand-in")}
    results = drive(effort_experiment(bases, config, tmp_path / "out", command="test", anchor_cache=tmp_path / "c"))
    synthetic = results["analysis"]["synthetic"]
    assert synthetic["slices"] == [0, 2, 4]
    assert set(synthetic["curves"]) == {"paste", "suggest/active", "random/active"}
    record = results["synthetic"]["records"][1]
    assert [r["slices"] for r in record["rounds"]] == [0, 2, 4]
    assert record["rounds"][1]["passes"] == 2 * (4 + 4)  # 2 steps of 4 slices and 4 replayed
    verdict = record["rounds"][1]["guard"]  # the guard's sentence, to tell which bound a rejection broke
    assert verdict.startswith("accepted" if record["rounds"][1]["accepted"] else "rejected")
    assert set(record["rounds"][1]["anchor_after"]) >= {"WT", "TC", "ET", "mean"}
    assert synthetic["suggest_vs_random"]["cases"] == 1
    real_part = results["analysis"]["real"]
    assert set(real_part["targets"]) == {"suggested", "spread"}
    assert "BraTS-MET-00110-000" in real_part["targets"]["spread"]["unlabelled"]
    written = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert written["experiment"] == "effort" and (tmp_path / "out" / "curves_real.png").is_file()
    assert written["cleanup"]["uncertain_max_ml"] == 1.0  # which masks were scored
    assert not (tmp_path / "out" / ".effort-journal.jsonl").exists()
    text = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "The real-case targets" in text and "Paired tests" in text
    assert {p.name for p in render(tmp_path / "out")} == {"curves.png", "curves_real.png", "results.md"}


def test_the_journal_and_the_results_name_the_mask_clean_up(monkeypatch):
    """A journal kept under another clean-up is not reused: the masks it scored were different."""
    from types import SimpleNamespace

    from napari_tumorseg.experiments.api import _effort_identity
    from napari_tumorseg.experiments.effort import EffortConfig
    from napari_tumorseg.inference import postprocess
    from napari_tumorseg.models import build_model

    bases = {"unet": SimpleNamespace(model=build_model("unet", base_width=4, depth=2))}
    before = _effort_identity(bases, EffortConfig(), "cpu")
    assert before["cleanup"] == {"min_lesion_mm3": 20.0, "uncertain_max_ml": 1.0, "uncertain_mean": 0.8}
    monkeypatch.setattr(postprocess, "DEFAULT_UNCERTAIN_MEAN", 0.7)
    assert _effort_identity(bases, EffortConfig(), "cpu")["cleanup"]["uncertain_mean"] == 0.7
