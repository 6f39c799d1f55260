"""Screenshots of each workflow step for the README (run under a display or `xvfb-run -a`).

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/screenshots.py docs/images

Drives the real dock widget on a synthetic metastasis case with the bundled
model: open, segment, correct (the reference painted on a few slices, as a
radiologist would), adapt (active meta-tune, defaults), export. A scratch
registry and session folder keep the user's own models untouched.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def wait(app, job, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while job is not None and job.is_running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(10):
        app.processEvents()


def shoot(viewer, app, path: Path) -> None:
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    print(f"wrote {path}")


def main(out: Path) -> int:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_tumorseg._qt.adapt_panel import scroll_into_view
    from napari_tumorseg._qt.dock import TumourSegmentationWidget
    from napari_tumorseg.models.registry import ModelRegistry
    from napari_tumorseg.synth import make_case
    from napari_tumorseg.workflow.state import ReviewState

    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="tumorseg-screenshots-"))
    case = make_case("metastasis", 20001)
    viewer = napari.Viewer(title=f"napari-tumorseg — {case.name}")
    viewer.window._qt_window.resize(1500, 950)
    state = ReviewState(registry=ModelRegistry(root=scratch / "models"), sessions_root=scratch / "sessions")
    dock = TumourSegmentationWidget(viewer, state=state)
    viewer.window.add_dock_widget(dock, name="Tumour segmentation", area="right")
    app = QApplication.instance()

    dock.case_panel.show_case(case)
    tumour = case.label.reshape(case.shape[0], -1).astype(bool).sum(axis=1)
    busiest = np.argsort(-tumour)
    dock.layers.go_to_slice(int(busiest[0]))
    shoot(viewer, app, out / "1-case.png")

    wait(app, dock.segment_panel.segment_volume())
    viewer.layers["T1c"].visible = True
    viewer.layers["FLAIR"].visible = False
    shoot(viewer, app, out / "2-segment.png")

    layer = dock.layers.segmentation(create=False)
    corrected = np.sort(busiest[:15:3])
    data = layer.data.copy()
    data[corrected] = case.label[corrected]
    layer.data = data
    dock.layers.save_edits_now()
    dock.correct_panel.uncertainty_box.setChecked(True)
    dock.layers.go_to_slice(int(corrected[0]))
    scroll_into_view(dock.correct_panel)
    shoot(viewer, app, out / "3-correct.png")
    dock.correct_panel.uncertainty_box.setChecked(False)

    wait(app, dock.adapt_panel.adapt())
    shoot(viewer, app, out / "4-adapt.png")

    wait(app, dock.segment_panel.segment_volume())
    wait(app, dock.export_panel.export(scratch / f"{case.name}_seg.nii.gz"))
    scroll_into_view(dock.export_panel)
    shoot(viewer, app, out / "5-export.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")))
