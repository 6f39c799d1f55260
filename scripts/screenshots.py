"""Screenshots of each workflow step for the README (run under a display or `xvfb-run -a`).

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/screenshots.py docs/images

Drives the real dock widget in a 1600 x 1000 window on a synthetic
metastasis case with the bundled model: open, segment, correct (the
reference painted on a few slices, as a radiologist would), adapt (active
meta-tune, defaults), export; then the clinic's steps: the four sequences at
once, a false lesion removed by one click (and the undo it leaves), a model of
your own (a small ONNX file made on the spot) that segments but is not adapted,
and the same case opened from DICOM series, its mask exported as a DICOM SEG
and read back on top (highdicom) to show it lands on the same voxels.
A scratch registry and session folder keep the user's own models untouched.
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
    from napari_tumorseg._qt.app import WINDOW_SIZE
    from napari_tumorseg._qt.dock import TumourSegmentationWidget
    from napari_tumorseg.models.registry import ModelRegistry
    from napari_tumorseg.synth import make_case
    from napari_tumorseg.workflow.state import ReviewState

    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="tumorseg-screenshots-"))
    case = make_case("metastasis", 20001)
    viewer = napari.Viewer(title=f"napari-tumorseg — {case.name}")
    viewer.window._qt_window.resize(*WINDOW_SIZE)
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

    clinic_steps(viewer, app, dock, case, out, scratch)
    viewer.close()
    return 0


def false_lesion(labels: np.ndarray, reference: np.ndarray) -> tuple[int, int, int] | None:
    """A voxel inside the largest predicted lesion that misses the reference (one the radiologist removes)."""
    from scipy import ndimage

    components, count = ndimage.label(labels > 0, structure=np.ones((3, 3, 3), bool))
    false = [n for n in range(1, count + 1) if not (reference[components == n] > 0).any()]
    if not false:
        return None
    biggest = max(false, key=lambda n: int((components == n).sum()))
    points = np.argwhere(components == biggest)
    return tuple(int(v) for v in points[len(points) // 2])  # type: ignore[return-value]


def clinic_steps(viewer, app, dock, case, out: Path, scratch: Path) -> None:
    from napari_tumorseg._qt.adapt_panel import scroll_into_view
    from napari_tumorseg.models.testing import write_onnx_threshold_model

    panel = dock.correct_panel
    panel.four_up_box.setChecked(True)
    shoot(viewer, app, out / "6-four-up.png")

    tools = panel.tools
    point = false_lesion(dock.state.labels, case.label)
    if point is None:  # the model found no false lesion: remove a true one, to show the tool
        point = tuple(int(v) for v in np.argwhere(dock.state.labels > 0)[0])
    dock.layers.go_to_slice(point[0])
    tools.set_tool("remove")
    wait(app, tools.click(point))
    scroll_into_view(panel)
    shoot(viewer, app, out / "7-prompts.png")
    tools.set_tool("brush")
    panel.four_up_box.setChecked(False)

    model = write_onnx_threshold_model(scratch / "threshold.onnx", {"name": "my-onnx-model",
                                                                     "sequences": ["flair"]})
    wait(app, dock.segment_panel.add_model(model))
    scroll_into_view(dock.segment_panel)
    shoot(viewer, app, out / "8-own-model.png")
    dock.segment_panel.model_box.setCurrentIndex(0)  # back to the bundled U-Net

    dicom_seg_step(viewer, app, dock, case, out, scratch)


def write_case_as_dicom(case, folder: Path) -> Path:
    """The case as four DICOM MR series (one per sequence, 16-bit), as a scanner's export would hold it."""
    import nibabel as nib

    from napari_tumorseg.io import write_case
    from napari_tumorseg.io.testing import write_dicom_series

    nifti = write_case(case, folder / "nifti", layout="brats2020")
    names = {"flair": "AX FLAIR", "t1": "AX T1", "t1ce": "AX T1 POST GD", "t2": "AX T2"}  # BraTS 2020 suffixes
    for number, (modality, description) in enumerate(names.items(), start=1):
        image = nib.load(next(nifti.glob(f"*_{modality}.nii.gz")))
        scaled = np.asarray(image.dataobj, dtype=np.float32)
        scaled = np.round(scaled / max(float(scaled.max()), 1e-6) * 2000).astype(np.int16)
        write_dicom_series(folder / case.name / modality, scaled, image.affine, description=description,
                           series_number=number)
    return folder / case.name


def dicom_seg_step(viewer, app, dock, case, out: Path, scratch: Path) -> None:
    """Open the case from DICOM, segment, export a DICOM SEG, read it back and show it over the T1c."""
    from napari_tumorseg._qt.adapt_panel import scroll_into_view
    from napari_tumorseg.io.dicom_seg import read_dicom_seg

    folder = write_case_as_dicom(case, scratch / "as-dicom")
    wait(app, dock.case_panel.open_path(folder))
    wait(app, dock.segment_panel.segment_volume())
    panel = dock.export_panel
    panel.format_box.setCurrentText("DICOM SEG (.dcm)")
    path = scratch / f"{case.name}_seg.dcm"
    wait(app, panel.export(path))
    read_back = read_dicom_seg(path, dock.state.case)
    shown = dock.layers.segmentation(create=False)
    shown.visible = False
    viewer.add_labels(read_back, name="DICOM SEG, read back", opacity=0.6, scale=shown.scale,
                      colormap=shown.colormap)
    tumour = read_back.reshape(read_back.shape[0], -1).astype(bool).sum(axis=1)
    dock.layers.go_to_slice(int(np.argmax(tumour)))
    viewer.layers["T1c"].visible = True
    scroll_into_view(panel)
    shoot(viewer, app, out / "9-dicom-seg.png")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")))
