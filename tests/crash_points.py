"""Kill an operation at each of its file-system mutations in turn (the way SQLite and ALICE test durability).

Run as a script by test_crash_points.py, never collected by pytest::

    python tests/crash_points.py SCENARIO WORKDIR

It prepares the scenario's saved state in ``WORKDIR/initial`` and then, for
k = 1, 2, ...: copies that state to ``WORKDIR/k<k>``, forks a child that runs
the operation on the copy with every file-system mutation counted (unlink,
rename, replace, link, mkdir, rmdir, a file opened to be created or
written), and kills the child with SIGKILL just before its k-th mutation.
The child records what it has finished ("marks") in ``k<k>.marks`` as it
goes. The loop ends at the first k the operation completes before reaching.
``WORKDIR/points.json`` lists every run; the test then reopens each copy and
checks that nothing the marks say was saved is lost.

Forking after one unarmed run keeps it fast (imports and first calls happen
once); torch runs single-threaded so a forked child never waits on a thread
pool it lost.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
MAX_POINTS = 200
WRITE_MODES = set("wax+")


# --- the case and labels both scenarios share -----------------------------------------------


def crash_case():
    """A small in-memory case (the session folder is keyed by its voxels)."""
    from napari_tumorseg.io.case import Case, Geometry

    rng = np.random.default_rng(7)
    geometry = Geometry(np.diag([1.0, 1.0, 1.0, 1.0]), (16, 12, 6))
    return Case("crash", {"flair": rng.random(geometry.canonical_shape, dtype=np.float32)}, geometry)


def painted(shape: tuple[int, ...], value: int, z: int) -> np.ndarray:
    """Slice ``z`` as the radiologist painted it: a square of ``value``."""
    labels = np.zeros(shape[1:], np.uint8)
    labels[2 + z % 3 : 6 + z % 3, 3:7] = value
    return labels


def prediction(shape: tuple[int, ...], value: int) -> np.ndarray:
    volume = np.zeros(shape, np.uint8)
    volume[:, 1:3, 1:3] = value
    return volume


# --- scenario "review": re-segment, save corrections, segment one slice ------------------------


def prepare_review(folder: Path) -> None:
    from napari_tumorseg.workflow.state import ReviewState

    case = crash_case()
    state = ReviewState(sessions_root=folder / "sessions")
    state.open_case(case)
    labels = state.accept_prediction(prediction(case.shape, 1), "m1")
    labels[1], labels[2] = painted(case.shape, 3, 1), painted(case.shape, 2, 2)
    state.record_edit(labels)


def run_review(folder: Path, mark: Callable[[str], None]) -> None:
    from napari_tumorseg.workflow.state import ReviewState

    case = crash_case()
    state = ReviewState(sessions_root=folder / "sessions")
    restored = state.open_case(case)
    mark("opened")
    labels = state.accept_prediction(prediction(case.shape, 2), "m2", current_labels=restored.labels)
    mark("resegmented")
    labels[3] = painted(case.shape, 1, 3)
    state.record_edit(labels)
    mark("saved 3")
    fresh = np.full(case.shape[1:], 2, np.uint8)
    labels[4] = fresh
    state.update_slice_prediction(4, fresh, None, labels)
    mark("segmented slice 4")


# --- scenario "undo": a stroke, undo twice, redo, a prompt that drops the redo branch -------------


UNDO_STEPS = ("edited 3", "undone 3", "undone 1", "redone 1", "prompted 5")


def undo_labels(shape: tuple[int, ...], marks: tuple[str, ...]) -> np.ndarray:
    """The labels after the undo scenario's steps ``marks`` (from the prepared stroke on slice 1)."""
    labels = prediction(shape, 1)
    strokes = {1: True, 3: False, 5: False}
    for mark in marks:
        verb, z = mark.split()
        strokes[int(z)] = verb in ("edited", "redone", "prompted")
    for z, on in strokes.items():
        if on:
            labels[z] = painted(shape, 3, z)
    return labels


def prepare_undo(folder: Path) -> None:
    from napari_tumorseg.workflow.state import ReviewState

    case = crash_case()
    state = ReviewState(sessions_root=folder / "sessions")
    state.open_case(case)
    labels = state.accept_prediction(prediction(case.shape, 1), "m1")
    labels[1] = painted(case.shape, 3, 1)
    state.record_edit(labels)


def run_undo(folder: Path, mark: Callable[[str], None], background: bool = False) -> None:
    """The undo scenario; ``background``: the files written by the viewer's background writer, each
    step marked done once the writer has flushed it (what the viewer's user is promised)."""
    from napari_tumorseg.prompts import edit_between
    from napari_tumorseg.workflow.state import ReviewState
    from napari_tumorseg.workflow.writer import SessionWriter

    case = crash_case()
    state = ReviewState(sessions_root=folder / "sessions", writer=SessionWriter(background=background))

    def done(what: str) -> None:
        state.writer.flush()
        mark(what)

    state.open_case(case)
    labels = state.labels.copy()
    labels[3] = painted(case.shape, 3, 3)
    state.record_edit(labels)
    done("edited 3")
    state.undo()
    done("undone 3")
    state.undo()
    done("undone 1")
    state.redo()
    done("redone 1")
    after = state.labels.copy()
    after[5] = painted(case.shape, 3, 5)
    state.apply_edit(edit_between(state.labels, after, "prompt on 5"))
    done("prompted 5")


# --- scenario "adapt": store and activate a version, roll back, delete it ----------------------


def registry_of(folder: Path):
    from napari_tumorseg.models.registry import ModelRegistry

    return ModelRegistry(folder / "registry", pretrained_dirs=[folder / "shipped"])


def prepare_adapt(folder: Path) -> None:
    from test_adapt_helpers import tiny_model

    from napari_tumorseg.models.checkpoint import save_checkpoint

    (folder / "shipped").mkdir(parents=True)
    save_checkpoint(folder / "shipped" / "tiny-unet.safetensors", tiny_model())
    registry = registry_of(folder)
    first = registry.add(tiny_model(seed=1), parent="tiny-unet", method="naive", hyperparameters={},
                         corrections_hash="0", metrics={}, status="candidate", reason="first", version_id="v1")
    registry.activate(first.id)
    from test_adapt_helpers import toy_corrections

    from napari_tumorseg.adapt.memory import CorrectionMemory

    memory = CorrectionMemory.beside(registry.root)
    memory.put(toy_corrections(3, seed=7, name="earlier").cases[0], context=0)
    memory.put(toy_corrections(1, seed=8, name="later").cases[0], context=0)


def run_adapt(folder: Path, mark: Callable[[str], None]) -> None:
    from test_adapt_helpers import toy_anchor, toy_corrections

    from napari_tumorseg.adapt.config import default_config
    from napari_tumorseg.adapt.run import run_adaptation
    from napari_tumorseg.jobs import drive

    registry = registry_of(folder)
    loaded, _ = registry.load("v1")
    add, activate = registry.add, registry.activate
    registry.add = lambda *args, **kwargs: _marked(mark, "added", add(*args, **kwargs))
    registry.activate = lambda *args, **kwargs: _marked(mark, "activated", activate(*args, **kwargs))
    from napari_tumorseg.adapt.memory import CorrectionMemory

    config = default_config("naive", steps=1, replay=0, crop=16)
    corrections = toy_corrections(2, name="later")
    outcome = drive(run_adaptation(loaded.model, corrections, config, anchor=toy_anchor(2),
                                   registry=registry, parent_id="v1", force=True))
    # What adapt_loaded_model does next: keep the case's corrections for replay (replacing its old entry).
    CorrectionMemory.beside(registry.root).put(corrections.cases[0], context=0)
    mark("remembered")
    registry.rollback()
    mark("rolled back")
    registry.delete(outcome.report.version_id)
    mark("deleted")


def _marked(mark: Callable[[str], None], what: str, version):
    mark(f"{what} {version.id}")
    return version


SCENARIOS = {"review": (prepare_review, run_review), "undo": (prepare_undo, run_undo),
             "undo-background": (prepare_undo, lambda folder, mark: run_undo(folder, mark, background=True)),
             "adapt": (prepare_adapt, run_adapt)}


# --- counting mutations, and the kill -------------------------------------------------------


def arm(kill_at: int) -> None:
    """Count file-system mutations from now on; SIGKILL this process just before mutation ``kill_at``."""
    count = 0

    def counted(real: Callable, is_mutation: Callable[..., bool] = lambda *a, **k: True) -> Callable:
        def wrapper(*args, **kwargs):
            nonlocal count
            if is_mutation(*args, **kwargs):
                count += 1
                if count == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return wrapper

    for name in ("replace", "rename", "renames", "unlink", "remove", "link", "symlink", "mkdir", "makedirs",
                 "rmdir", "truncate"):
        setattr(os, name, counted(getattr(os, name)))
    os.open = counted(os.open, lambda path, flags, *a, **k: bool(flags & (os.O_CREAT | os.O_TRUNC | os.O_WRONLY)))
    opener = counted(io.open, lambda file, mode="r", *a, **k: bool(WRITE_MODES & set(mode)) and not isinstance(file, int))
    builtins.open = io.open = opener


def run_points(scenario: str, workdir: Path) -> list[dict]:
    prepare, operation = SCENARIOS[scenario]
    initial = workdir / "initial"
    prepare(initial)
    # Once unarmed first: the lazy imports and first-call costs are then paid once, not in every child.
    shutil.copytree(initial, workdir / "warm-up")
    operation(workdir / "warm-up", lambda text: None)
    points = []
    for kill_at in range(1, MAX_POINTS + 1):
        folder = workdir / f"k{kill_at}"
        shutil.copytree(initial, folder)
        marks_path = workdir / f"k{kill_at}.marks"
        pid = os.fork()
        if pid == 0:
            _child(operation, folder, marks_path, kill_at)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not killed and os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the operation failed at k={kill_at} (status {status}); see its output above")
        marks = marks_path.read_text(encoding="utf-8").splitlines() if marks_path.exists() else []
        points.append({"kill_at": kill_at, "killed": killed, "folder": str(folder), "marks": marks})
        if not killed:
            return points
    raise SystemExit(f"more than {MAX_POINTS} mutations: not a small operation")


def _child(operation: Callable, folder: Path, marks_path: Path, kill_at: int) -> None:
    try:
        descriptor = os.open(marks_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

        def mark(text: str) -> None:
            os.write(descriptor, (text + "\n").encode())

        arm(kill_at)
        operation(folder, mark)
        os._exit(0)
    except BaseException:  # noqa: BLE001 - report and leave the forked process at once
        import traceback

        traceback.print_exc()
        os._exit(1)


if __name__ == "__main__":
    os.environ["OMP_NUM_THREADS"] = "1"
    sys.path.insert(0, str(TESTS))
    if sys.argv[1] == "adapt":
        import torch

        torch.set_num_threads(1)
    work = Path(sys.argv[2])
    (work / "points.json").write_text(json.dumps(run_points(sys.argv[1], work), indent=1))
