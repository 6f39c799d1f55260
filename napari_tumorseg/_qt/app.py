"""Start napari with a case loaded: the main job behind ``tumorseg view``."""

from __future__ import annotations

from pathlib import Path

from ..io.case import Case


def open_viewer(case: Case, *, show: bool = True):
    """A napari viewer with the case's image layers and reference mask, if any."""
    import napari

    from .._layers import case_to_layer_data

    viewer = napari.Viewer(title=f"napari-tumorseg — {case.name}", show=show)
    for data, kwargs, layer_type in case_to_layer_data(case):
        getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    # Start mid-tumour when the reference says where it is, else mid-volume.
    viewer.dims.set_current_step(0, _interesting_slice(case))
    return viewer


def _interesting_slice(case: Case) -> int:
    if case.label is not None and case.label.any():
        per_slice = case.label.reshape(case.label.shape[0], -1).astype(bool).sum(axis=1)
        return int(per_slice.argmax())
    return case.shape[0] // 2


def launch(case: Case, *, segment: bool = True, screenshot: Path | None = None) -> int:
    """Open the viewer; with ``screenshot``, write a PNG of the window and return instead of blocking."""
    import napari

    viewer = open_viewer(case)
    if screenshot is None:
        napari.run()
        return 0
    return _screenshot_and_close(viewer, screenshot)


def _screenshot_and_close(viewer, path: Path) -> int:
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    viewer.window._qt_window.resize(1400, 900)
    for _ in range(20):  # let Qt lay out the window and vispy draw the canvas
        app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    viewer.close()
    print(f"screenshot written to {path}")
    return 0
