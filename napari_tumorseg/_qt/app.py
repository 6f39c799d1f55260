"""Start napari with a case under review: the main job behind ``tumorseg view``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..io.case import Case

if TYPE_CHECKING:
    from ..prepare.pipeline import PreparedCase

SCREENSHOT_TIMEOUT_S = 600


def open_workflow(case: Case | PreparedCase, *, segment: bool = True, show: bool = True):
    """A viewer with the workflow dock, the case (or a prepared scan) shown and (optionally) its segmentation started.

    Returns ``(viewer, dock, job)``; ``job`` is the running segmentation, or None.
    """
    import napari

    from .dock import TumourSegmentationWidget

    prepared = None if isinstance(case, Case) else case
    case = case if prepared is None else prepared.case
    viewer = napari.Viewer(title=f"napari-tumorseg — {case.name}", show=show)
    dock = TumourSegmentationWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Tumour segmentation", area="right")
    if prepared is None:
        dock.case_panel.show_case(case)
    else:
        dock.case_panel.show_prepared(prepared)
    # Start mid-tumour when the reference says where it is, else mid-volume.
    dock.layers.go_to_slice(_interesting_slice(case))
    job = None
    if segment and dock.state.prediction is None:
        job = dock.segment_panel.segment_volume()
    return viewer, dock, job


def _interesting_slice(case: Case) -> int:
    if case.label is not None and case.label.any():
        per_slice = case.label.reshape(case.label.shape[0], -1).astype(bool).sum(axis=1)
        return int(per_slice.argmax())
    return case.shape[0] // 2


def launch(case: Case | PreparedCase, *, segment: bool = True, screenshot: Path | None = None) -> int:
    """Open the workflow; with ``screenshot``, wait for the segmentation, write a PNG of the window and return."""
    import napari

    viewer, _, job = open_workflow(case, segment=segment)
    if screenshot is None:
        napari.run()
        return 0
    return _screenshot_when_done(viewer, job, screenshot)


def _screenshot_when_done(viewer, job, path: Path) -> int:
    import time

    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    viewer.window._qt_window.resize(1500, 950)
    deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S
    while job is not None and job.is_running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):  # let Qt lay out the window and vispy draw the canvas
        app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    viewer.close()
    print(f"screenshot written to {path}")
    return 0
