"""The Prepare step in the Case panel: raw scans are prepared in the background (progress, cancel keeps the
previous case), the brain mask is its own editable layer the model segments inside, and an unprepared scan
is never segmented in silence."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from prepare_fixtures import head_phantom, raw_stripped_scan  # noqa: F401 (fixtures)
from widget_fixtures import WAIT_MS, wait_for

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def head_t1c_folder(tmp_path_factory, head_phantom):  # noqa: F811
    """A single-sequence scan with its skull: T1c of the small head, as a scanner would give it."""
    from napari_tumorseg.io import write_case
    from napari_tumorseg.io.case import Case

    case = head_phantom.case
    single = Case("skull", {"t1c": case.images["t1c"]}, case.geometry)
    folder = tmp_path_factory.mktemp("skull") / "skull"
    write_case(single, folder)
    return folder


def test_a_raw_scan_is_prepared_when_it_opens_and_exports_on_any_grid(qtbot, dock, raw_stripped_scan, tmp_path):  # noqa: F811
    wait_for(qtbot, dock.case_panel.open_path(raw_stripped_scan.folder))
    state = dock.state
    qtbot.waitUntil(lambda: state.preparation is not None, timeout=WAIT_MS)
    reference = raw_stripped_scan.acquisitions["t1c"].grid
    assert state.preparation.reference == "t1c" and state.case.geometry.source_shape == reference.source_shape
    text = dock.case_panel.prepare_box.quality.text()
    assert "FLAIR NMI" in text and "registered FLAIR onto T1c" in text
    assert dock.case_panel.prepare_box.reference_box.currentData() == "t1c"
    grids = [dock.export_panel.grid_box.itemData(i) for i in range(dock.export_panel.grid_box.count())]
    assert grids[0] == "reference" and {"flair", "t1", "t2"} <= set(grids)

    wait_for(qtbot, dock.segment_panel.segment_volume())
    qtbot.waitUntil(lambda: state.prediction is not None, timeout=WAIT_MS)
    dock.export_panel.grid_box.setCurrentIndex(grids.index("flair"))
    out = tmp_path / "mask_on_flair.nii.gz"
    wait_for(qtbot, dock.export_panel.export(out))
    flair = nib.load(next(raw_stripped_scan.folder.glob("*_flair.nii.gz")))
    written = nib.load(out)
    assert written.shape == flair.shape
    np.testing.assert_allclose(written.affine, flair.affine, atol=1e-4)


def test_without_preparing_a_scan_with_skull_is_not_segmented_and_prepare_adds_the_brain_layer(
        qtbot, dock, head_t1c_folder, monkeypatch):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    monkeypatch.setattr("napari.utils.notifications.show_warning", shown.append)
    box = dock.case_panel.prepare_box
    box.auto_box.setChecked(False)
    wait_for(qtbot, dock.case_panel.open_path(head_t1c_folder))
    state = dock.state
    assert state.case is not None and state.preparation is None
    assert state.unprepared_problem() is not None and "skull" in box.quality.text()
    assert dock.segment_panel.segment_volume() is None  # refused, and said so in one line
    assert any("the head still has its skull" in str(m) and "\n" not in str(m) for m in shown)
    assert state.prediction is None

    wait_for(qtbot, box.prepare())
    qtbot.waitUntil(lambda: state.preparation is not None, timeout=WAIT_MS)
    brain_layer = dock.layers.brain_layer()
    assert brain_layer is not None and brain_layer.data is state.brain and state.brain.any()
    # A correction of the brain mask is what the model segments inside.
    state.brain[:] = 0
    state.brain[tuple(s // 2 for s in state.brain.shape)] = 1
    inside = state.segmentation_case()
    assert all(np.count_nonzero(v) <= 1 for v in inside.images.values())


def test_cancelling_a_preparation_keeps_the_case_on_screen(qtbot, dock, small_glioma_folder, raw_stripped_scan):  # noqa: F811
    from napari_tumorseg.io import read_sources

    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    before = dock.state.case
    box = dock.case_panel.prepare_box
    box.set_sources(read_sources(raw_stripped_scan.folder), "t1c")
    job = box.prepare()
    job.cancel()
    wait_for(qtbot, job)
    assert dock.state.case is before and dock.state.preparation is None
    assert "cancelled" in box.quality.text().lower()


def test_cancel_stops_the_preparation_that_runs_as_a_scan_opens(qtbot, dock, small_glioma_folder, raw_stripped_scan):  # noqa: F811
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    before = dock.state.case
    box = dock.case_panel.prepare_box
    assert box.automatic
    job = dock.case_panel.open_path(raw_stripped_scan.folder)
    assert box.cancel_button.isEnabled()  # the box follows the opening job
    box.cancel()
    wait_for(qtbot, job)
    qtbot.waitUntil(lambda: not box.cancel_button.isEnabled(), timeout=WAIT_MS)
    assert job.cancelled and dock.state.case is before and dock.state.preparation is None
    assert "cancelled" in box.quality.text().lower()
