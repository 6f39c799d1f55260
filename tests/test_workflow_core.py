"""The review workflow's core, without a viewer: corrections survive, suggestions make sense."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.io.case import Case, Geometry
from napari_tumorseg.workflow.review import changed_slices, entropy, least_certain_slices
from napari_tumorseg.workflow.session import CorrectionStore, case_key
from napari_tumorseg.workflow.settings import Settings


def tiny_case(seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    geometry = Geometry(np.diag([-1.0, -1.0, 2.0, 1.0]), (8, 9, 6))
    images = {"flair": rng.random(geometry.canonical_shape, dtype=np.float32)}
    return Case("tiny", images, geometry)


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


def test_corrections_survive_a_new_store(tmp_path):
    case = tiny_case()
    prediction = np.zeros(case.shape, np.uint8)
    store = CorrectionStore(case, root=tmp_path)
    store.start(prediction, model_id="glioma-unet")
    labels = prediction.copy()
    labels[2, 1:3, 1:3] = 3
    assert store.save(labels) == [2]
    # A crash: nothing in memory, a new store for the same case restores the corrections.
    restored = CorrectionStore(case, root=tmp_path).restore()
    assert restored is not None
    np.testing.assert_array_equal(restored.labels, labels)
    assert restored.model_id == "glioma-unet" and restored.corrected == [2]
    # A different case does not see them.
    assert CorrectionStore(tiny_case(seed=1), root=tmp_path).restore() is None
    assert case_key(case) != case_key(tiny_case(seed=1))


def test_torn_correction_file_is_ignored_with_warning(tmp_path):
    case = tiny_case()
    store = CorrectionStore(case, root=tmp_path)
    store.start(np.zeros(case.shape, np.uint8), model_id="m")
    (store.folder / "corrections.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.warns(UserWarning, match="corrections ignored"):
        restored = CorrectionStore(case, root=tmp_path).restore()
    assert restored is not None and restored.corrected == []


def test_settings_round_trip_and_bad_file(tmp_path):
    path = tmp_path / "settings.json"
    Settings(last_folder="/data", method="naive", device="cpu").save(path)
    assert Settings.load(path).method == "naive"
    path.write_text("{not json")
    assert Settings.load(path) == Settings()
