"""Nothing saved is lost whichever file-system mutation a crash (SIGKILL) interrupts.

``crash_points.py`` runs each operation once per mutation, killed just before
it; here every resulting folder is reopened as the plugin would reopen it
after a crash, and what the operation had reported saved must be there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from crash_points import UNDO_STEPS, crash_case, painted, prediction, undo_labels

HELPER = Path(__file__).with_name("crash_points.py")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL")


def crash_runs(scenario: str, workdir: Path) -> list[dict]:
    subprocess.run([sys.executable, str(HELPER), scenario, str(workdir)], check=True, timeout=600)
    points = json.loads((workdir / "points.json").read_text(encoding="utf-8"))
    assert points[-1]["killed"] is False, "the last run completes"
    assert len(points) >= 5, "the operation mutates the file system several times"
    return points


def test_corrections_survive_a_kill_at_every_mutation_of_resegmenting_and_saving(tmp_path):
    from napari_tumorseg.workflow.session import CorrectionStore

    case = crash_case()
    points = crash_runs("review", tmp_path)
    for point in points:
        marks = set(point["marks"])
        restored = CorrectionStore(case, root=Path(point["folder"]) / "sessions").restore()
        where = f"killed before mutation {point['kill_at']} after {sorted(marks)}"
        assert restored is not None and not restored.problems, where
        # The corrections saved before the operation began survive every crash point...
        np.testing.assert_array_equal(restored.labels[1], painted(case.shape, 3, 1), err_msg=where)
        np.testing.assert_array_equal(restored.labels[2], painted(case.shape, 2, 2), err_msg=where)
        assert {1, 2} <= set(restored.corrected), where
        # ...and so does everything the operation reported saved.
        if "resegmented" in marks:
            assert restored.model_id == "m2", where
            np.testing.assert_array_equal(restored.labels[0], prediction(case.shape, 2)[0], err_msg=where)
        if "saved 3" in marks:
            np.testing.assert_array_equal(restored.labels[3], painted(case.shape, 1, 3), err_msg=where)
            assert 3 in restored.corrected, where
        if "segmented slice 4" in marks:
            np.testing.assert_array_equal(restored.labels[4], 2, err_msg=where)
        visible = {p.name for p in restored_folder(point).iterdir() if not p.name.startswith(".")}
        assert visible == {"prediction.npz", "corrections.npz", "history"}, where


@pytest.mark.parametrize("scenario", ["undo", "undo-background"])
def test_undo_history_survives_a_kill_at_every_mutation_and_still_undoes_to_the_model_output(tmp_path, scenario):
    """Written at once, and by the viewer's background writer (killed on its thread, mid-queue)."""
    from napari_tumorseg.workflow.state import ReviewState

    case = crash_case()
    points = crash_runs(scenario, tmp_path)
    for point in points:
        marks = tuple(point["marks"])
        where = f"killed before mutation {point['kill_at']} after {list(marks)}"
        state = ReviewState(sessions_root=Path(point["folder"]) / "sessions")
        restored = state.open_case(case)
        assert not restored.problems, where
        # What was reported done is there; the step in flight is there whole or not at all.
        done, in_flight = undo_labels(case.shape, marks), undo_labels(case.shape, UNDO_STEPS[: len(marks) + 1])
        assert np.array_equal(state.labels, done) or np.array_equal(state.labels, in_flight), where
        shown = state.labels.copy()
        # Every step the history lists still undoes, down to the model's output, and redoes back.
        position = state.history.position
        for _ in range(position):
            state.undo()
        np.testing.assert_array_equal(state.labels, prediction(case.shape, 1), err_msg=where)
        for _ in range(position):
            state.redo()
        np.testing.assert_array_equal(state.labels, shown, err_msg=where)
        if "prompted 5" in marks:
            assert [e.what for e in state.history.entries] == ["brush stroke", "prompt on 5"], where


def restored_folder(point: dict) -> Path:
    (folder,) = (Path(point["folder"]) / "sessions").iterdir()
    return folder


def test_the_registry_survives_a_kill_at_every_mutation_of_adapting(tmp_path):
    from napari_tumorseg.models.registry import CORRUPT, ModelRegistry

    points = crash_runs("adapt", tmp_path)
    for point in points:
        folder, marks = Path(point["folder"]), point["marks"]
        where = f"killed before mutation {point['kill_at']} after {marks}"
        registry = ModelRegistry(folder / "registry", pretrained_dirs=[folder / "shipped"])
        versions = {v.id: v for v in registry.list()}
        assert not [v for v in versions.values() if v.status == CORRUPT], where
        assert {"tiny-unet", "v1"} <= set(versions), where
        registry.load("v1")  # the version adapted from stays whole
        added = next((m.split()[1] for m in marks if m.startswith("added")), None)
        if added and "rolled back" not in marks:  # (after that it may be half way out: deleted)
            assert added in versions, where
        if added in versions:
            registry.load(added)
        # The memory of corrections: every entry readable; the earlier case never lost; the
        # later case's entry is the old one or, once reported kept, the new one.
        from napari_tumorseg.adapt.memory import CorrectionMemory

        entries = {e.case_name: e for e in CorrectionMemory.beside(folder / "registry").entries()}
        assert not [e for e in entries.values() if e.error], where
        assert entries["earlier"].slices == (10, 11, 12), where
        assert entries["later"].slices in ((10,), (10, 11)), where
        if "remembered" in marks:
            assert entries["later"].slices == (10, 11), where
        if "deleted" in marks:
            assert added not in versions, where
        # The active pointer names a whole version: the one last activated, or the one being activated.
        activated = [m.split()[1] for m in marks if m.startswith("activated")]
        if activated == [added, "v1"]:
            assert registry.active_id() == "v1", where  # rolled back
        elif activated == [added]:
            assert registry.active_id() in {added, "v1"}, where
        else:
            assert registry.active_id() in {"v1", added} - {None}, where
