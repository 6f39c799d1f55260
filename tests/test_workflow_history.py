"""Undo and redo of strokes and prompts, kept in the session: reopened after a crash, bounded, never wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_tumorseg.errors import PromptError
from napari_tumorseg.io.case import Case, Geometry
from napari_tumorseg.io.labels import ED, ET, NCR
from napari_tumorseg.prompts import edit_between
from napari_tumorseg.workflow.history import EditHistory
from napari_tumorseg.workflow.state import ReviewState

SHAPE = (10, 16, 12)


def tiny_case() -> Case:
    rng = np.random.default_rng(3)
    geometry = Geometry(np.eye(4), SHAPE[::-1])  # RAS files: the canonical grid is (z, y, x) = SHAPE
    return Case("tiny", {"flair": rng.random(geometry.canonical_shape, dtype=np.float32) + 0.5}, geometry)


def prediction() -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[3:7, 4:9, 4:8] = ED
    return labels


def opened(root: Path) -> ReviewState:
    state = ReviewState(sessions_root=root)
    state.open_case(tiny_case())
    return state


def stroke(labels: np.ndarray, z: int, value: int) -> np.ndarray:
    out = labels.copy()
    out[z, 1:3, 1:3] = value
    return out


def test_strokes_and_prompts_undo_and_redo_and_the_corrected_slices_follow(tmp_path):
    state = opened(tmp_path)
    labels = state.accept_prediction(prediction(), "m1")
    state.record_edit(stroke(labels, 2, ET))
    prompt = edit_between(state.labels, np.where(state.labels == ED, 0, state.labels).astype(np.uint8), "removed")
    state.apply_edit(prompt)
    assert state.corrected == [2, 3, 4, 5, 6], "the prompt's slices count as corrections"
    shown = []
    state.labels_edited.connect(shown.append)
    undone = state.undo()
    assert undone.what == "undo removed" and shown == [undone]
    assert state.corrected == [2]
    np.testing.assert_array_equal(state.labels, stroke(prediction(), 2, ET))
    state.undo()
    assert state.corrected == [] and not state.history.can_undo
    with pytest.raises(PromptError, match="nothing to undo"):
        state.undo()
    state.redo()
    state.redo()
    assert state.corrected == [2, 3, 4, 5, 6] and not state.history.can_redo


def test_a_new_edit_after_undo_drops_the_redo_branch_and_its_files(tmp_path):
    state = opened(tmp_path)
    labels = state.accept_prediction(prediction(), "m1")
    for z in (1, 2, 8):
        labels = stroke(labels, z, NCR)
        state.record_edit(labels)
    state.undo()
    state.undo()
    state.record_edit(stroke(state.labels, 9, ET))
    history = state.history
    assert history.position == len(history.entries) == 2 and not history.can_redo
    assert len(list(history.folder.glob("e*.npz"))) == 2


def test_the_history_comes_back_when_the_case_is_opened_again(tmp_path):
    state = opened(tmp_path)
    labels = state.accept_prediction(prediction(), "m1")
    state.record_edit(stroke(labels, 1, ET))
    state.record_edit(stroke(stroke(labels, 1, ET), 8, NCR))
    state.undo()
    again = opened(tmp_path)  # a crash or a new session: nothing was closed
    assert again.history.position == 1 and again.history.can_redo
    again.redo()
    np.testing.assert_array_equal(again.labels, stroke(stroke(labels, 1, ET), 8, NCR))
    again.undo()
    again.undo()
    np.testing.assert_array_equal(again.labels, labels)


def test_a_crash_between_the_corrections_and_the_index_is_adopted_on_opening(tmp_path):
    state = opened(tmp_path)
    labels = state.accept_prediction(prediction(), "m1")
    state.record_edit(stroke(labels, 1, ET))
    # What record_edit does, killed before its last write (the index):
    edit = edit_between(state.labels, stroke(state.labels, 8, NCR), "stroke before the crash")
    state.history.stage(edit)
    edit.apply(state.labels)
    state.store.save(state.labels)
    again = opened(tmp_path)
    assert again.history.position == 2 and again.history.undo_what == "stroke before the crash"
    again.undo()
    np.testing.assert_array_equal(again.labels, stroke(labels, 1, ET))


def test_a_crash_between_an_undos_corrections_and_its_index_is_found_by_the_labels(tmp_path):
    state = opened(tmp_path)
    labels = state.accept_prediction(prediction(), "m1")
    state.record_edit(stroke(labels, 1, ET))
    step = state.history.peek_undo()
    step.inverse().apply(state.labels)
    state.store.save(state.labels)  # killed before the index moved
    again = opened(tmp_path)
    assert again.history.position == 0 and again.history.can_redo


def test_an_undo_whose_voxels_were_changed_since_is_refused_and_clears_older_steps(tmp_path):
    state = opened(tmp_path)
    labels = state.accept_prediction(prediction(), "m1")
    state.record_edit(stroke(labels, 1, ET))
    state.record_edit(stroke(stroke(labels, 1, ET), 2, ET))
    # Slice 2 stays a correction, but something outside the history rewrote it meanwhile:
    state.labels[2, 1:3, 1:3] = NCR
    with pytest.raises(PromptError, match="cannot undo 'brush stroke': its voxels were changed since"):
        state.undo()
    assert not state.history.can_undo


def test_the_history_is_bounded_and_the_oldest_steps_go_first(tmp_path):
    history = EditHistory(tmp_path / "history", SHAPE, max_entries=3, max_voxels=1000)
    labels = np.zeros(SHAPE, np.uint8)
    for z in range(6):
        edit = edit_between(labels, stroke(labels, z, ET), f"stroke {z}")
        entry = history.stage(edit)
        edit.apply(labels)
        history.commit(entry)
    assert [e.what for e in history.entries] == ["stroke 3", "stroke 4", "stroke 5"]
    assert len(list(history.folder.glob("e*.npz"))) == 3
    big = edit_between(labels, np.full(SHAPE, NCR, np.uint8), "everything")
    history.commit(history.stage(big))
    assert [e.what for e in history.entries] == ["everything"], "over the voxel budget, the older steps go"


def test_a_damaged_index_is_set_aside_and_the_session_still_opens(tmp_path):
    state = opened(tmp_path)
    labels = state.accept_prediction(prediction(), "m1")
    state.record_edit(stroke(labels, 1, ET))
    index = state.history.folder / "index.json"
    index.write_text("{not json")
    restored = ReviewState(sessions_root=tmp_path).open_case(tiny_case())
    assert any("undo history unreadable" in p and "kept as index.damaged-" in p for p in restored.problems)
    assert list(index.parent.glob("index.damaged-*.json"))
    np.testing.assert_array_equal(restored.labels, stroke(labels, 1, ET)), "the corrections are untouched"


def test_an_index_of_another_grid_is_refused(tmp_path):
    state = opened(tmp_path)
    state.accept_prediction(prediction(), "m1")
    state.record_edit(stroke(state.labels, 1, ET))
    index = state.history.folder / "index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    index.write_text(json.dumps({**data, "shape": [1, 2, 3]}))
    problems = EditHistory(index.parent, SHAPE).restore(state.labels)
    assert problems and "not an undo history of this case" in problems[0]
