"""Start napari with a case under review: the main job behind ``tumorseg view``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..io.case import Case

if TYPE_CHECKING:
    from ..prepare.pipeline import PreparedCase

SCREENSHOT_TIMEOUT_S = 600
WINDOW_SIZE = (1600, 1000)


def open_workflow(case: Case | PreparedCase, *, segment: bool = True, show: bool = True, four_up: bool = True):
    """A viewer with the workflow dock, the case (or a prepared scan) shown and (optionally) its segmentation started.

    A case whose session was saved comes back as it was left (and says so); it is not segmented again.
    Returns ``(viewer, dock, job)``; ``job`` is the running segmentation, or None.
    """
    import napari

    from ..io.origin import is_synthetic
    from .dock import TumourSegmentationWidget

    prepared = None if isinstance(case, Case) else case
    case = case if prepared is None else prepared.case
    kind = "synthetic phantom" if is_synthetic(case) else "scan"
    viewer = napari.Viewer(title=f"napari-tumorseg — {case.name} ({kind})", show=show)
    dock = TumourSegmentationWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Tumour segmentation", area="right")
    restored = dock.case_panel.show_case(case) if prepared is None else dock.case_panel.show_prepared(prepared)
    if four_up:
        dock.correct_panel.four_up_box.setChecked(True)
    # Start mid-tumour when the reference says where it is, else mid-volume.
    dock.layers.go_to_slice(_interesting_slice(case))
    job = None
    if restored is not None and restored.labels is not None:
        from .segment_wording import restored_text

        print(f"{case.name}: {restored_text(restored)}")
    elif segment:
        job = dock.segment_panel.segment_volume()
    return viewer, dock, job


def _interesting_slice(case: Case) -> int:
    if case.label is not None and case.label.any():
        per_slice = case.label.reshape(case.label.shape[0], -1).astype(bool).sum(axis=1)
        return int(per_slice.argmax())
    return case.shape[0] // 2


def launch(case: Case | PreparedCase, *, segment: bool = True, screenshot: Path | None = None, four_up: bool = True) -> int:
    """Open the workflow; with ``screenshot``, wait for the segmentation, write a PNG of the window and return."""
    import napari

    viewer, _, job = open_workflow(case, segment=segment, four_up=four_up)
    if screenshot is None:
        napari.run()
        return 0
    return _screenshot_when_done(viewer, job, screenshot)


def _screenshot_when_done(viewer, job, path: Path) -> int:
    import time

    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    viewer.window._qt_window.resize(*WINDOW_SIZE)
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
