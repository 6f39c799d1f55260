"""How late the GUI event loop runs while the widget segments and adapts (``tumorseg bench-gui``).

A QTimer asks to tick every 10 ms on the GUI thread; every tick records how
much later than asked it came. Anything the GUI thread does for long (a
heavy callback, a lock held by a worker) shows up as a late tick: that is
the freeze a user would feel. The benchmark drives the real dock widget in a
real viewer on a BraTS-size synthetic case, as a user would.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

TICK_MS = 10


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


def run_benchmark(domain: str = "metastasis", seed: int = 20000, corrected: int = 5, threads: int | None = None) -> dict:
    """Segment a BraTS-size case, correct ``corrected`` slices from its reference, adapt; time the loop."""
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
