"""The whole review workflow through the dock widget in a real napari viewer.

A tiny network stands in for the shipped one so the suite stays fast; the
wiring under test (threads, layers, registry, files) is the same.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from widget_fixtures import WAIT_MS, open_and_segment, paint_correction, wait_for

from napari_tumorseg.io.labels import ED, ET

pytestmark = pytest.mark.gui


def test_open_segment_correct_adapt_export(qtbot, dock, small_glioma_folder, tmp_path):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    assert [l.name for l in dock.viewer.layers][:4] == ["FLAIR", "T1", "T1c", "T2"]
    assert layer.data.shape == dock.state.case.shape
    np.testing.assert_array_equal(layer.data, dock.state.prediction)
    assert dock.correct_panel.suggestion_list.count() > 0  # least-certain slices are offered

    z = dock.state.case.shape[0] // 2
    paint_correction(dock, layer, z)
    assert dock.state.corrected == [z]
    assert dock.correct_panel.corrected_list.count() == 1

    panel = dock.adapt_panel
    assert panel.method() == "active"  # the default method
    panel.steps_box.setValue(2)
    panel.tolerance_box.setValue(0.5)
    parent = dock.state.selected_version.id
    wait_for(qtbot, panel.adapt())
    assert panel.report is not None and panel.report.parent_id == parent
    active = dock.state.registry.active()
    assert active.id == panel.report.version_id and active.parent == parent
    assert "Corrected slices" in panel.card.text()

    out = tmp_path / "export" / "mask.nii.gz"
    out.parent.mkdir()
    wait_for(qtbot, dock.export_panel.export(out))
    source = nib.load(next(small_glioma_folder.glob("*_seg.nii.gz")))
    written = nib.load(out)
    assert written.shape == source.shape
    np.testing.assert_allclose(written.affine, source.affine)
    back = dock.state.case.geometry.to_canonical(np.asarray(written.dataobj))
    expected = np.where(layer.data == ET, 4, layer.data)  # the case came in the 2020 convention
    np.testing.assert_array_equal(back, expected)


def test_corrections_survive_reopening(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    z = 5
    paint_correction(dock, layer, z)
    painted = layer.data.copy()
    # A new widget state (as after a crash) opening the same case gets the corrections back.
    dock.state.case = None
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    restored = dock.layers.segmentation(create=False)
    np.testing.assert_array_equal(restored.data, painted)
    assert dock.state.corrected == [z]


def test_cancel_segmentation_keeps_previous_labels(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    layer.data = np.full_like(layer.data, ED)
    before = layer.data.copy()
    dock.segment_panel.segment_volume()
    job = dock.segment_panel.job
    job.cancel()
    wait_for(qtbot, job)
    qtbot.waitUntil(lambda: "cancelled" in dock.segment_panel.status.text(), timeout=WAIT_MS)
    np.testing.assert_array_equal(dock.layers.segmentation(create=False).data, before)


def test_cancel_adaptation_keeps_active_model(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    paint_correction(dock, layer, 20)
    registry = dock.state.registry
    active_before = registry.active().id
    versions_before = [v.id for v in registry.list()]
    panel = dock.adapt_panel
    panel.steps_box.setValue(200)
    job = panel.adapt()
    qtbot.waitUntil(lambda: "adapting" in panel.status.text(), timeout=WAIT_MS)
    job.cancel()
    wait_for(qtbot, job)
    qtbot.waitUntil(lambda: "cancelled" in panel.status.text(), timeout=WAIT_MS)
    assert registry.active().id == active_before
    assert [v.id for v in registry.list()] == versions_before


def test_bad_file_notifies_and_keeps_viewer_usable(qtbot, dock, tmp_path, monkeypatch):
    import napari_tumorseg._qt.jobs as jobs

    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    bad = tmp_path / "broken_flair.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    wait_for(qtbot, dock.case_panel.open_path(bad))
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    assert "broken_flair.nii.gz" in shown[0] and "\n" not in shown[0]
    assert dock.state.case is None and dock.case_panel.open_folder_button.isEnabled()
    assert jobs  # the module under test is the one patched


def test_segmentation_layer_is_ready_when_the_case_opens(qtbot, dock, small_glioma_folder):
    # Made while the case opens, so starting a segmentation does not stall the GUI adding it.
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    layer = dock.layers.segmentation(create=False)
    assert layer is not None and layer.data.shape == dock.state.case.shape and not layer.data.any()


def test_only_the_slice_on_screen_is_repainted_while_segmenting(qtbot, dock, small_glioma_folder):
    # A repaint is tens of ms of GUI thread: the batches that do not hold the slice on screen must not cost one.
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    dock.layers.go_to_slice(7)
    panel = dock.segment_panel
    assert panel._on_screen([6, 7, 8])
    assert not panel._on_screen([0, 1, 2])

    layer = dock.layers.segmentation(create=False)
    repaints, reports = [], []
    original = layer.refresh
    layer.refresh = lambda *args, **kwargs: (repaints.append(1), original(*args, **kwargs))
    job = panel.segment_volume()
    job.progress.connect(reports.append)
    wait_for(qtbot, job)
    batches = sum(1 for report in reports if report.data is not None and len(report.data.z))
    assert batches >= 3  # several batches arrived...
    assert len(repaints) <= 2  # ...but only the one holding slice 7, and the final result, were repainted


def test_opening_a_case_settles_the_heap(qtbot, dock, small_glioma_folder):
    # Long-lived objects are frozen when the case opens, so later full collections do not walk them mid-job.
    import gc

    gc.unfreeze()
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    assert gc.get_freeze_count() > 0
