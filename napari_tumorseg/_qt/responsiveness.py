"""How late the GUI event loop runs while the widget segments, corrects and adapts (``tumorseg bench-gui``).

A QTimer asks to tick every 10 ms on the GUI thread; every tick records how
much later than asked it came. Anything the GUI thread does for long (a
heavy callback, a lock held by a worker) shows up as a late tick: that is
the freeze a user would feel. The benchmark drives the real dock widget in a
real viewer on a BraTS-size synthetic case, as a user would: segment, then
each correction prompt through the Correct panel's own tools (remove a lesion,
grow it back, fill between two corrected slices, propagate, undo, redo), then
adapt. A prompt's phase lasts until its edit is applied and saved, plus
``SETTLE_S`` of the viewer repainting it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

TICK_MS = 10
SETTLE_S = 0.3  # after an edit lands: the repaint of the new labels belongs to the action


@dataclass
class LoopDelay:
    phase: str
    seconds: float
    ticks: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class TickRecorder:
    """Records the extra delay of a 10 ms QTimer's ticks."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.delays: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.delays.append(max(0.0, (now - self._last) * 1000 - TICK_MS))
        self._last = now

    def start(self) -> None:
        self.delays.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self, phase: str, seconds: float) -> LoopDelay:
        self.timer.stop()
        delays = np.asarray(self.delays or [0.0])
        return LoopDelay(
            phase, round(seconds, 2), len(self.delays),
            round(float(np.percentile(delays, 50)), 1), round(float(np.percentile(delays, 99)), 1),
            round(float(delays.max()), 1),
        )


def _wait(app, job, timeout_s: float = 900.0) -> None:
    deadline = time.monotonic() + timeout_s
    while job.is_running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)


def _settle(app, seconds: float = SETTLE_S) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)


def _run_queued(app, recorder: TickRecorder, action) -> tuple[list[float], float]:
    """Run ``action`` (returns a Job, or None when it ran on the GUI thread) with the recorder on.

    Returns the ticks' delays (the edit's repaint included) and the seconds from the click to the edit applied.
    """
    from qtpy.QtCore import QTimer

    recorder.start()
    started = time.perf_counter()
    jobs = []
    # Queued like a click: the action runs inside the event loop the recorder measures.
    QTimer.singleShot(0, lambda: jobs.append(action()))
    while not jobs:
        app.processEvents()
        time.sleep(0.001)
    if jobs[0] is not None:
        _wait(app, jobs[0])
    seconds = time.perf_counter() - started
    _settle(app)
    recorder.timer.stop()
    return list(recorder.delays), seconds


def _repeated(app, dock, recorder: TickRecorder, name: str, action, reset, repeats: int, before=None,
              steps: int = 1, redoes: bool = False) -> LoopDelay:
    """``action`` timed ``repeats`` times, ``before`` and ``reset`` around each untimed; the ticks pooled.

    Each action must move the undo history by ``steps`` (a prompt or a redo adds its step, an undo takes one
    back) and, when it adds one, leave on top a step of its own (a prompt's) or, when it ``redoes``, the step
    that was there to redo: labels that merely changed could be the layer's save of a refused prompt's
    strokes, the very thing a refusal must not time as a success.

    Raises:
        RuntimeError: the action changed no label or no history step (a prompt refused: the panel's line says why).
    """
    delays, seconds = [], []
    history = dock.state.history
    for _ in range(repeats):
        if before is not None:
            before()
        labels, position, to_redo = dock.state.labels.copy(), history.position, history.redo_what
        ticks, took = _run_queued(app, recorder, action)
        moved = history.position - position
        applied = not np.array_equal(labels, dock.state.labels) and moved == steps
        if not (applied and _own_step(history, steps, redoes, to_redo)):
            raise RuntimeError(f"{name}: not applied (history moved {moved}, newest step "
                               f"{history.undo_what!r}; {dock.correct_panel.tools.status.text()})")
        delays += ticks
        seconds.append(took)
        reset()
        _settle(app)
    recorder.delays = delays
    return recorder.stop(name, float(np.median(seconds)))


def _own_step(history, steps: int, redoes: bool, to_redo: str) -> bool:
    """The step on top of the history is the action's: the one redone, a prompt's (not a stroke), any after undo."""
    if steps < 0:
        return True
    if redoes:
        return history.undo_what == to_redo
    return history.undo_what not in ("", "brush stroke")


def _prompt_phases(app, dock, recorder: TickRecorder, repeats: int) -> list[LoopDelay]:
    """Each correction prompt ``repeats`` times through the Correct panel's tools, on the segmented case.

    A phase's seconds are the median per action (click to applied edit); its ticks pool all repeats.
    """
    from scipy import ndimage

    from ..prompts import edit_between
    from ..workflow.bench_prompts import largest_lesion

    state, tools, layers = dock.state, dock.correct_panel.tools, dock.layers
    lesion, click, _ = largest_lesion(state.labels)
    z = click[0]
    layers.go_to_slice(z)
    _settle(app)
    phases = []
    tools.set_tool("remove")
    phases.append(_repeated(app, dock, recorder, "prompt: remove lesion (3D)", lambda: tools.click(click), state.undo,
                            repeats))
    _wait(app, tools.click(click))
    phases.append(_repeated(app, dock, recorder, "prompt: undo", tools.undo, state.redo, repeats, steps=-1))
    state.undo()
    # A missed lesion: the model's lesion erased, then grown back from a click.
    state.apply_edit(edit_between(state.labels, np.where(lesion, 0, state.labels).astype(np.uint8), "erase a lesion"))
    tools.set_tool("grow")
    phases.append(_repeated(app, dock, recorder, "prompt: grow lesion (3D)", lambda: tools.click(click), state.undo,
                            repeats))
    state.undo()
    # Two corrected slices 8 apart through the lesion (drawn a voxel wider, as oedema): fill, propagate.
    corrected = state.labels.copy()
    for k in (z - 4, z + 4):
        corrected[k] = np.where(ndimage.binary_dilation(corrected[k] > 0), 2, 0).astype(np.uint8)
    # Painted on the layer and saved, as a user's strokes are (the state alone would be out of step with the
    # layer, and the prompt's save of the layer would undo the two slices before the fill).
    layers.segmentation().data = corrected
    layers.save_edits_now()
    phases.append(_repeated(app, dock, recorder, "prompt: fill between corrected slices", tools.fill, state.undo, repeats))
    layers.go_to_slice(z - 4)
    phases.append(_repeated(app, dock, recorder, f"prompt: propagate ±{tools.reach_box.value()}", tools.propagate,
                            state.undo, repeats))
    phases.append(_repeated(app, dock, recorder, "prompt: redo", tools.redo, lambda: None, repeats, before=state.undo,
                            redoes=True))
    tools.set_tool("brush")
    return phases


def run_benchmark(domain: str = "metastasis", seed: int = 20000, corrected: int = 5, threads: int | None = None,
                  prompts: int = 3) -> dict:
    """Segment a BraTS-size case, correct ``corrected`` slices from its reference, adapt, run each prompt
    ``prompts`` times (0: none).

    Returns the GUI loop's delay in each phase, as a dict (the JSON the command prints).
    """
    import tempfile

    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from ..machine import describe_machine
    from ..models.registry import ModelRegistry
    from ..synth import make_case
    from ..workflow.state import ReviewState
    from .dock import TumourSegmentationWidget

    if threads:
        torch.set_num_threads(threads)
    case = make_case(domain, seed)
    viewer = napari.Viewer(show=True)
    # A throw-away registry and session folder: the benchmark leaves the user's models alone.
    scratch = tempfile.mkdtemp(prefix="tumorseg-bench-gui-")
    state = ReviewState(registry=ModelRegistry(root=f"{scratch}/models"), sessions_root=Path(scratch) / "sessions")
    dock = TumourSegmentationWidget(viewer, state=state)
    viewer.window.add_dock_widget(dock)
    app = QApplication.instance()
    dock.case_panel.show_case(case)
    for _ in range(10):
        app.processEvents()
    recorder = TickRecorder()
    results = []

    recorder.start()
    started = time.perf_counter()
    job = dock.segment_panel.segment_volume()
    if job is None:
        raise RuntimeError(dock.segment_panel.status.text())
    _wait(app, job)
    results.append(recorder.stop("segment volume", time.perf_counter() - started))

    # The radiologist's corrections: the reference on the slices with the most tumour.
    layer = dock.layers.segmentation(create=False)
    tumour = case.label.reshape(case.shape[0], -1).astype(bool).sum(axis=1)
    slices = np.sort(np.argsort(-tumour)[: corrected * 3 : 3])
    data = layer.data.copy()
    data[slices] = case.label[slices]
    layer.data = data
    dock.layers.save_edits_now()

    recorder.start()
    started = time.perf_counter()
    job = dock.adapt_panel.adapt()
    if job is None:
        raise RuntimeError(dock.adapt_panel.status.text())
    _wait(app, job)
    results.append(recorder.stop(f"adapt ({dock.adapt_panel.method()}, {len(slices)} slices)", time.perf_counter() - started))
    if prompts:  # after adapting, so that the adaptation learns from the reference slices alone
        results.extend(_prompt_phases(app, dock, recorder, prompts))
    viewer.close()
    return {
        "machine": describe_machine(),
        "tick_ms": TICK_MS,
        "case": f"synthetic {domain} seed {seed}, {case.shape}",
        "phases": [asdict(r) for r in results],
    }


def main(output: Path | None = None, overwrite: bool = False, **kwargs) -> int:
    from ..io.atomic import atomic_write_text

    result = run_benchmark(**kwargs)
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        atomic_write_text(output, text + "\n", overwrite=overwrite, make_folder=True)
    return 0
