"""The review workflow's core, without a viewer: suggestions make sense, settings survive bad files.

The corrections' crash safety is in test_workflow_session.py and test_crash_points.py.
"""

from __future__ import annotations

import numpy as np

from napari_tumorseg.workflow.review import changed_slices, entropy, least_certain_slices
from napari_tumorseg.workflow.settings import Settings


def test_changed_slices_finds_exactly_the_painted_slices():
    prediction = np.zeros((6, 4, 4), np.uint8)
    labels = prediction.copy()
    labels[1, 0, 0] = 2
    labels[4, 3, 3] = 1
    assert changed_slices(labels, prediction) == [1, 4]


def test_entropy_is_zero_for_certain_and_log4_for_uniform():
    certain = np.zeros((4, 2, 2), np.float32)
    certain[0] = 1
    uniform = np.full((4, 2, 2), 0.25, np.float32)
    assert np.allclose(entropy(certain), 0)
    assert np.allclose(entropy(uniform), np.log(4), atol=1e-6)
    # uint8-quantised probabilities give the same answer
    assert np.allclose(entropy((uniform * 255).astype(np.uint8)), np.log(4), atol=1e-6)


def test_least_certain_slices_ranks_and_skips_corrected():
    uncertainty = np.zeros((5, 3, 3), np.float32)
    uncertainty[1] = 0.1
    uncertainty[3] = 0.5
    uncertainty[4, 0, 0] = 0.2
    prediction = np.zeros((5, 3, 3), np.uint8)
    assert least_certain_slices(uncertainty, prediction, k=2) == [3, 1]
    assert least_certain_slices(uncertainty, prediction, k=5, exclude={3}) == [1, 4]


def test_least_certain_slices_look_at_the_tumour_not_the_brain_edge():
    uncertainty = np.zeros((4, 30, 30), np.float32)
    uncertainty[0] = 0.3  # faint doubt over a whole edge slice: 270 in total
    uncertainty[2, 10:14, 10:14] = 0.9  # strong doubt at a tumour boundary: 14.4 in total
    prediction = np.zeros((4, 30, 30), np.uint8)
    prediction[2, 11:13, 11:13] = 2
    assert least_certain_slices(uncertainty, prediction, k=1) == [2]


def test_settings_round_trip_and_bad_file(tmp_path):
    path = tmp_path / "settings.json"
    Settings(last_folder="/data", method="naive", device="cpu").save(path)
    assert Settings.load(path).method == "naive"
    for bad in ("{not json", "[1, 2]", "[" * 100_000, '{"method": 5, "suggestions": "many"}'):
        path.write_text(bad)
        assert Settings.load(path) == Settings()
    path.write_bytes(b"\xff\xfe\x00")
    assert Settings.load(path) == Settings()
