"""How long each correction takes on a BraTS-size case: the figures behind ``tumorseg bench-prompts``.

Each action is timed as the plugin runs it: the prompt's computation (what
the dock runs in a worker thread), then the review state applying it (the
labels, the corrections file, the undo step on disk, on the GUI thread),
and their sum, the time from the click to the saved result. Beside each
wall-clock figure is the process's CPU time for the same span (all threads
together): on a machine shared with other work the wall clock also counts
the waits for a core, and the CPU time is what the action itself cost, an
upper bound of its wall time on idle cores. Every action is
undone after each run, so each repeat starts from the same labels. The case
is segmented first with the model (untimed): its labels and probabilities
are what the prompts work on, as in the dock.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..io.case import Case

TARGET_SECONDS = 0.5


def largest_lesion(labels: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int], int]:
    """The largest lesion (26-connected) of ``labels``, the voxel of it nearest its centre, and the lesion count.

    Where the benchmarks click: a voxel inside the lesion even when the lesion is a ring.

    Raises:
        ValueError: ``labels`` hold no tumour.
    """
    from scipy import ndimage

    components, count = ndimage.label(labels > 0, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        raise ValueError("no tumour in the labels: nothing to correct")
    lesion = components == 1 + int(np.argmax(np.bincount(components.ravel())[1:]))
    points = np.argwhere(lesion)
    middle = points.mean(axis=0)
    click = tuple(int(v) for v in points[np.argmin(((points - middle) ** 2).sum(axis=1))])
    return lesion, click, int(count)  # type: ignore[return-value]


def _timed(state, compute: Callable[[np.ndarray], Any], repeats: int, undo: bool = True) -> dict[str, Any]:
    """Median and max of compute, apply and total over ``repeats``; the edit undone after each."""
    compute_s, apply_s, cpu_s, what, voxels = [], [], [], "", 0
    for _ in range(repeats):
        labels = state.labels.copy()
        start, cpu_start = time.perf_counter(), time.process_time()
        edit = compute(labels)
        middle = time.perf_counter()
        state.apply_edit(edit)
        end = time.perf_counter()
        cpu_s.append(time.process_time() - cpu_start)
        compute_s.append(middle - start)
        apply_s.append(end - middle)
        what, voxels = edit.what, edit.voxels
        if undo and not edit.empty:  # an edit that changes nothing is no undo step
            state.undo()
    totals = [a + b for a, b in zip(compute_s, apply_s)]
    return {"what": what, "voxels": voxels, "compute_s": _stats(compute_s), "apply_s": _stats(apply_s), "total_s": _stats(totals),
            "cpu_s": _stats(cpu_s), "within_target": max(totals) <= TARGET_SECONDS}


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(values)), 4), "max": round(float(np.max(values)), 4)}


def bench_prompts(case: Case, segmenter, *, repeats: int = 5, reach: int = 3) -> dict[str, Any]:
    """Time every correction on ``case`` (see the module's docstring); returns the figures as a dict."""
    from ..jobs import drive
    from ..prompts import edit_between
    from ..workflow.prompting import fill_around, grow_at, propagate_from, remove_at
    from ..workflow.state import ReviewState

    started = time.perf_counter()
    result = drive(segmenter.run(case))
    segment_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="tumorseg-bench-prompts-") as scratch:
        state = ReviewState(sessions_root=Path(scratch))
        state.open_case(case)
        state.accept_prediction(result.labels, "bench", probabilities=result.probabilities)
        try:
            lesion, click, count = largest_lesion(state.labels)
        except ValueError:
            raise ValueError(f"the model finds no tumour in {case.name}: nothing to correct") from None
        figures: dict[str, Any] = {"case": case.name, "shape": list(case.shape), "lesions": int(count),
                                   "segmentation_s": round(segment_s, 2), "repeats": repeats}
        actions = figures["actions"] = {}
        actions["remove lesion (3D)"] = _timed(state, lambda labels: remove_at(state, labels, click), repeats)
        # A missed lesion: the model's lesion erased from the labels, then grown back from a click.
        erased = np.where(lesion, 0, state.labels).astype(np.uint8)
        state.apply_edit(edit_between(state.labels, erased, "erase a lesion"))
        actions["grow lesion, model probabilities"] = _timed(state, lambda labels: grow_at(state, labels, click, 2),
                                                             repeats)
        kept, state.probabilities = state.probabilities, None
        actions["grow lesion, image (no probabilities)"] = _timed(
            state, lambda labels: grow_at(state, labels, click, 2), repeats)
        state.probabilities = kept
        state.undo()
        # Two corrected slices 8 apart through the lesion: fill between them, propagate from one.
        z = click[0]
        from scipy import ndimage

        corrected = state.labels.copy()
        for k in (z - 4, z + 4):  # as a radiologist might: the lesion drawn a voxel wider, all oedema
            corrected[k] = np.where(ndimage.binary_dilation(corrected[k] > 0), 2, 0).astype(np.uint8)
        state.record_edit(corrected, "two corrected slices")
        actions["fill between corrected slices"] = _timed(state, lambda labels: fill_around(state, labels, z), repeats)
        actions[f"propagate to ±{reach} slices"] = _timed(
            state, lambda labels: propagate_from(state, labels, z - 4, segmenter, reach), repeats)
        actions["brush stroke saved (diff, corrections, undo step)"] = _stroke(state, z, repeats)
        actions["undo"], actions["redo"] = _undo_redo(state, repeats)
    return figures


def _stroke(state, z: int, repeats: int) -> dict[str, Any]:
    totals, cpu_s = [], []
    for n in range(repeats):
        labels = state.labels.copy()
        labels[z, 10 + n : 20 + n, 10:20] = 3
        start, cpu_start = time.perf_counter(), time.process_time()
        state.record_edit(labels)
        totals.append(time.perf_counter() - start)
        cpu_s.append(time.process_time() - cpu_start)
        state.undo()
    return {"what": "a 10 x 10 voxel stroke", "total_s": _stats(totals), "cpu_s": _stats(cpu_s), "within_target": max(totals) <= TARGET_SECONDS}


def _undo_redo(state, repeats: int) -> tuple[dict[str, Any], dict[str, Any]]:
    undo_s, redo_s, undo_cpu, redo_cpu = [], [], [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        state.undo()
        middle, cpu_middle = time.perf_counter(), time.process_time()
        state.redo()
        undo_s.append(middle - start)
        redo_s.append(time.perf_counter() - middle)
        undo_cpu.append(cpu_middle - cpu_start)
        redo_cpu.append(time.process_time() - cpu_middle)
    return ({"what": f"undo '{state.history.undo_what}'", "total_s": _stats(undo_s), "cpu_s": _stats(undo_cpu),
             "within_target": max(undo_s) <= TARGET_SECONDS},
            {"what": "redo it", "total_s": _stats(redo_s), "cpu_s": _stats(redo_cpu),
             "within_target": max(redo_s) <= TARGET_SECONDS})


def format_table(figures: dict[str, Any]) -> str:
    """The figures as a plain table, one action a line."""
    rows = [f"{'action (medians; max of the total)':52s} {'compute':>9s} {'apply':>9s} {'total':>9s} {'max':>9s} "
            f"{'CPU':>9s}  ≤ {TARGET_SECONDS} s"]
    for name, entry in figures["actions"].items():
        compute = entry.get("compute_s", {}).get("median")
        apply = entry.get("apply_s", {}).get("median")
        rows.append(f"{name:52s} {_s(compute):>9s} {_s(apply):>9s} {_s(entry['total_s']['median']):>9s} "
                    f"{_s(entry['total_s']['max']):>9s} {_s(entry['cpu_s']['median']):>9s}  "
                    f"{'yes' if entry['within_target'] else 'NO'}")
    return "\n".join(rows)


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"
