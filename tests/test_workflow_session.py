"""The session store: corrections survive a new prediction, a crash, and damaged files next to them.

The kill-at-every-mutation test of the same operations is test_crash_points.py.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from napari_tumorseg.errors import CaseError
from napari_tumorseg.io.case import Case, Geometry
from napari_tumorseg.workflow.session import (
    CORRECTIONS_FILE,
    PREDICTION_FILE,
    CorrectionStore,
    case_key,
    read_corrections,
)
from napari_tumorseg.workflow.state import ReviewState


def tiny_case(seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    geometry = Geometry(np.diag([-1.0, -1.0, 2.0, 1.0]), (8, 9, 6))
    images = {"flair": rng.random(geometry.canonical_shape, dtype=np.float32)}
    return Case("tiny", images, geometry)


def corrected_store(tmp_path, case=None):
    """A store holding a prediction (zeros) and corrections on slices 2 and 5; returns (store, labels)."""
    case = case or tiny_case()
    store = CorrectionStore(case, root=tmp_path)
    labels = np.zeros(case.shape, np.uint8)
    labels[2, 1:3, 1:3] = 3
    labels[5, 0, 0] = 1
    assert store.start(np.zeros(case.shape, np.uint8), "glioma-unet", labels) == [2, 5]
    return store, labels


def test_corrections_survive_a_new_store(tmp_path):
    case = tiny_case()
    _, labels = corrected_store(tmp_path, case)
    # A crash: nothing in memory, a new store for the same case restores the corrections.
    restored = CorrectionStore(case, root=tmp_path).restore()
    np.testing.assert_array_equal(restored.labels, labels)
    assert restored.model_id == "glioma-unet" and restored.corrected == [2, 5] and not restored.problems
    # A different case does not see them.
    assert CorrectionStore(tiny_case(seed=1), root=tmp_path).restore() is None
    assert case_key(case) != case_key(tiny_case(seed=1))


def test_a_new_prediction_replaces_the_corrections_file_and_never_deletes_it(tmp_path, monkeypatch):
    store, labels = corrected_store(tmp_path)
    removed = []
    monkeypatch.setattr("os.unlink", lambda path, *a, **k: removed.append(str(path)))
    monkeypatch.setattr("os.remove", lambda path, *a, **k: removed.append(str(path)))
    prediction = np.ones(store.case_shape, np.uint8)
    carried = prediction.copy()
    carried[[2, 5]] = labels[[2, 5]]
    assert store.start(prediction, "adapted", carried) == [2, 5]
    assert not [path for path in removed if path.endswith(CORRECTIONS_FILE)]


def test_a_crash_between_prediction_and_corrections_keeps_the_corrections(tmp_path, monkeypatch):
    # The new prediction is on disk, its corrections are not: the old ones restore onto it unchanged.
    store, labels = corrected_store(tmp_path)
    real_write = store._write

    def crash_on_corrections(name, **arrays):
        if name == CORRECTIONS_FILE:
            raise KeyboardInterrupt("killed")
        real_write(name, **arrays)

    monkeypatch.setattr(store, "_write", crash_on_corrections)
    prediction = np.full(store.case_shape, 2, np.uint8)
    with pytest.raises(KeyboardInterrupt):
        store.start(prediction, "adapted", prediction)
    restored = CorrectionStore(tiny_case(), root=tmp_path).restore()
    assert restored.model_id == "adapted" and restored.corrected == [2, 5]
    np.testing.assert_array_equal(restored.labels[[2, 5]], labels[[2, 5]])
    np.testing.assert_array_equal(np.delete(restored.labels, [2, 5], axis=0), 2)


def test_a_damaged_corrections_file_is_set_aside_not_overwritten(tmp_path):
    store, _ = corrected_store(tmp_path)
    damaged = b"PK\x03\x04 torn"
    (store.folder / CORRECTIONS_FILE).write_bytes(damaged)
    restored = CorrectionStore(tiny_case(), root=tmp_path).restore()
    assert restored.corrected == [] and len(restored.problems) == 1
    aside = list(store.folder.glob("corrections.damaged-*.npz"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    problem = restored.problems[0]
    assert "\n" not in problem and CORRECTIONS_FILE in problem and f"kept as {aside[0].name}" in problem
    # The next stroke writes a new corrections file; the damaged one stays as it was.
    later = CorrectionStore(tiny_case(), root=tmp_path)
    later.restore()
    labels = np.zeros(later.case_shape, np.uint8)
    labels[1, 0, 0] = 2
    assert later.save(labels) == [1]
    assert aside[0].read_bytes() == damaged


def test_corrections_come_back_when_the_prediction_is_unreadable(tmp_path):
    store, labels = corrected_store(tmp_path)
    (store.folder / PREDICTION_FILE).write_bytes(b"not a zip at all")
    state = ReviewState(sessions_root=tmp_path)
    restored = state.open_case(tiny_case())
    assert restored.prediction is None and restored.corrected == [2, 5]
    np.testing.assert_array_equal(restored.labels[[2, 5]], labels[[2, 5]])
    assert len(restored.problems) == 1 and "prediction" in restored.problems[0]
    assert list(store.folder.glob("prediction.damaged-*.npz"))
    # A new segmentation carries the restored corrections over.
    prediction = np.full(store.case_shape, 2, np.uint8)
    shown = state.accept_prediction(prediction, "m", current_labels=restored.labels)
    np.testing.assert_array_equal(shown[[2, 5]], labels[[2, 5]])
    assert state.corrected == [2, 5]


def test_painting_before_any_prediction_is_saved(tmp_path):
    state = ReviewState(sessions_root=tmp_path)
    state.open_case(tiny_case())
    labels = np.zeros(tiny_case().shape, np.uint8)
    labels[3, 2, 2] = 2
    assert state.record_edit(labels) == [3]
    restored = ReviewState(sessions_root=tmp_path).open_case(tiny_case())
    np.testing.assert_array_equal(restored.labels, labels)


def _npz(**members: bytes | np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in members.items():
            if isinstance(value, np.ndarray):
                stream = io.BytesIO()
                np.save(stream, value, allow_pickle=True)
                value = stream.getvalue()
            archive.writestr(f"{name}.npy", value)
    return buffer.getvalue()


def _huge_header() -> bytes:
    """An .npy member that declares 10^12 bytes and holds none."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 1000, 1000)})
    return stream.getvalue()


Z, Y, X = tiny_case().shape
SLICE = np.zeros((1, Y, X), np.uint8)
HOSTILE_CORRECTIONS = {
    "out of range": _npz(indices=np.array([Z]), slices=SLICE),
    "negative": _npz(indices=np.array([-1]), slices=SLICE),
    "listed twice": _npz(indices=np.array([1, 1]), slices=np.zeros((2, Y, X), np.uint8)),
    "count mismatch": _npz(indices=np.array([1, 2]), slices=SLICE),
    "wrong grid": _npz(indices=np.array([1]), slices=np.zeros((1, 4, 4), np.uint8)),
    "bad label": _npz(indices=np.array([1]), slices=SLICE + 7),
    "float indices": _npz(indices=np.array([1.5]), slices=SLICE),
    "no slices": _npz(indices=np.array([1])),
    "pickled objects": _npz(indices=np.array([1], dtype=object), slices=SLICE),
    "huge declared size": _npz(indices=np.array([1]), slices=_huge_header()),
    "not a zip": b"\x00" * 64,
}


@pytest.mark.parametrize("content", HOSTILE_CORRECTIONS.values(), ids=HOSTILE_CORRECTIONS.keys())
def test_hostile_corrections_files_are_one_line_errors(tmp_path, content):
    path = tmp_path / CORRECTIONS_FILE
    path.write_bytes(content)
    with pytest.raises(CaseError) as caught:
        read_corrections(path, tiny_case().shape)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    # Opening the case sets the file aside and says so, once.
    store, _ = corrected_store(tmp_path / "sessions")
    (store.folder / CORRECTIONS_FILE).write_bytes(content)
    restored = CorrectionStore(tiny_case(), root=tmp_path / "sessions").restore()
    assert restored.corrected == [] and len(restored.problems) == 1


def test_empty_corrections_are_valid(tmp_path):
    path = tmp_path / CORRECTIONS_FILE
    path.write_bytes(_npz(indices=np.zeros(0, np.int32), slices=np.zeros((0, Y, X), np.uint8)))
    assert read_corrections(path, tiny_case().shape)[0] == []
