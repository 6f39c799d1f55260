"""The README's promises about the dock that the main workflow test does not walk through.

Promote, roll back and re-segment with the new model; Segment this slice
keeps the corrections; the uncertainty overlay; settings that persist; a
damaged session file reported and set aside, the corrections restored.
"""

from __future__ import annotations

import numpy as np
import pytest
from widget_fixtures import WAIT_MS, open_and_segment, paint_correction, wait_for

from napari_tumorseg.io.labels import ED, ET

pytestmark = pytest.mark.gui


def adapt(qtbot, dock):
    panel = dock.adapt_panel
    panel.steps_box.setValue(2)
    panel.tolerance_box.setValue(0.5)
    wait_for(qtbot, panel.adapt())
    assert panel.report is not None and panel.report.version_id
    return panel.report


def test_roll_back_promote_and_resegment_with_the_new_model(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    z = dock.state.case.shape[0] // 2
    paint_correction(dock, layer, z)
    painted = layer.data[z].copy()
    parent = dock.state.selected_version.id
    report = adapt(qtbot, dock)
    registry, panel = dock.state.registry, dock.adapt_panel
    assert registry.active_id() == report.version_id

    panel.rollback_button.click()
    assert registry.active_id() == parent and dock.state.selected_version.id == parent
    panel.promote_button.click()
    assert registry.active_id() == report.version_id

    panel.resegment_button.click()
    wait_for(qtbot, dock.segment_panel.job)
    qtbot.waitUntil(lambda: dock.state.prediction_model == report.version_id, timeout=WAIT_MS)
    np.testing.assert_array_equal(layer.data[z], painted)  # the correction is kept
    assert z in dock.state.corrected


def test_segment_this_slice_updates_the_prediction_and_leaves_corrections(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    z = dock.state.case.shape[0] // 2
    paint_correction(dock, layer, z)
    painted = layer.data[z].copy()
    dock.layers.go_to_slice(z)
    dock.segment_panel.slice_button.click()
    assert "holds your corrections" in dock.segment_panel.status.text()
    np.testing.assert_array_equal(layer.data[z], painted)

    other = z - 3
    dock.layers.go_to_slice(other)
    layer.data[other] = ED  # whatever was shown is replaced by the model's output
    dock.segment_panel.slice_button.click()
    np.testing.assert_array_equal(dock.state.prediction[other], layer.data[other])
    assert not (layer.data[other] == ED).all()
    assert dock.state.corrected == [z]


def test_flip_averaging_chosen_in_the_panel_segments_and_says_so(qtbot, dock, small_glioma_folder):
    panel = dock.segment_panel
    assert panel.mirror_box.currentText() == "auto"
    panel.device_box.setCurrentText("cpu")
    open_and_segment(qtbot, dock, small_glioma_folder)
    assert "averaged over flips" not in panel.status.text()  # auto on the CPU: one pass, and the option said
    assert "in one pass in" in panel.status.text() and "Flip averaging ▸ all" in panel.status.text()
    panel.mirror_box.setCurrentText("all")
    wait_for(qtbot, panel.segment_volume())
    version = dock.state.selected_version.id
    assert dock.state.segmenter(version, "cpu").mirror == "all"
    assert "averaged over flips (all)" in panel.status.text()


def test_keep_small_unsure_spots_chosen_in_the_panel(qtbot, dock, small_glioma_folder, monkeypatch):
    """The clean-up's count reaches the status line; the checkbox makes the next segmentation keep the spots."""
    from napari_tumorseg.inference import postprocess

    monkeypatch.setattr(postprocess, "DEFAULT_UNCERTAIN_MEAN", 1.01)  # every small component is "unsure" here
    monkeypatch.setattr(postprocess, "DEFAULT_UNCERTAIN_MAX_ML", 1e6)
    panel = dock.segment_panel
    assert not panel.keep_uncertain_box.isChecked()
    panel.device_box.setCurrentText("cpu")
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    version = dock.state.selected_version.id
    assert dock.state.segmenter(version, "cpu").uncertain_max_ml == 1e6
    assert "small unsure spot(s)" in panel.status.text() and not layer.data.any()
    panel.keep_uncertain_box.setChecked(True)
    assert dock.settings.keep_uncertain
    wait_for(qtbot, panel.segment_volume())
    assert dock.state.segmenter(version, "cpu").uncertain_max_ml == 0
    assert "unsure spot" not in panel.status.text() and layer.data.any()


def test_uncertainty_overlay_follows_the_checkbox(qtbot, dock, small_glioma_folder):
    open_and_segment(qtbot, dock, small_glioma_folder)
    dock.correct_panel.uncertainty_box.setChecked(True)
    overlay = next(layer for layer in dock.viewer.layers if layer.name == "Uncertainty")
    assert overlay.visible and overlay.data.shape == dock.state.case.shape
    dock.correct_panel.uncertainty_box.setChecked(False)
    assert not overlay.visible


def test_settings_persist_in_a_new_dock(qtbot, make_napari_viewer, dock, small_glioma_folder):
    from napari_tumorseg._qt.dock import TumourSegmentationWidget

    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    dock.adapt_panel.method_box.setCurrentIndex(dock.adapt_panel.method_box.findData("naive"))
    dock.segment_panel.device_box.setCurrentText("cpu")
    dock.segment_panel.mirror_box.setCurrentText("lr")
    dock.segment_panel.keep_uncertain_box.setChecked(True)
    dock.correct_panel.count_box.setValue(7)
    again = TumourSegmentationWidget(make_napari_viewer(), state=dock.state)
    assert again.adapt_panel.method() == "naive"
    assert again.segment_panel.device_box.currentText() == "cpu"
    assert again.segment_panel.mirror_box.currentText() == "lr"
    assert again.segment_panel.keep_uncertain_box.isChecked() and again.state.keep_uncertain
    assert again.correct_panel.count_box.value() == 7
    assert again.settings.last_folder == str(small_glioma_folder)


def test_a_damaged_session_file_is_reported_set_aside_and_the_corrections_come_back(
    qtbot, dock, small_glioma_folder, monkeypatch
):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    z = dock.state.case.shape[0] // 2
    paint_correction(dock, layer, z)
    painted = layer.data.copy()
    folder = dock.state.store.folder
    # The viewer's writes run on a thread of their own: the prediction's must land before it is torn.
    dock.state.writer.flush()
    (folder / "prediction.npz").write_bytes(b"torn by a crash")
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", shown.append)

    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    assert len(shown) == 1 and "prediction.npz" in shown[0] and "kept as prediction.damaged-" in shown[0]
    assert list(folder.glob("prediction.damaged-*.npz"))
    restored = dock.layers.segmentation(create=False).data
    np.testing.assert_array_equal(restored[z], painted[z])
    assert dock.state.corrected == [z] and "segment the volume again" in dock.segment_panel.status.text()
    # Segmenting again keeps the restored correction.
    wait_for(qtbot, dock.segment_panel.segment_volume())
    qtbot.waitUntil(lambda: dock.state.prediction is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(dock.layers.segmentation(create=False).data[z], painted[z])
    assert (painted[z] == ET).any()


def test_the_segmentation_layer_is_locked_while_the_model_writes_into_it(qtbot, dock, small_glioma_folder):
    # A stroke during the run would be mixed with half a prediction, and the final labels would overwrite it.
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    layer = dock.layers.segmentation(create=False)
    job = dock.segment_panel.segment_volume()
    assert not layer.editable
    wait_for(qtbot, job)
    assert layer.editable


def test_the_viewer_writes_the_session_in_the_background_and_a_failed_write_is_notified(qtbot, dock, monkeypatch,
                                                                                         tmp_path):
    import napari_tumorseg._qt.layers as layers_module
    from napari_tumorseg.errors import WriteError

    heard = []
    monkeypatch.setattr(layers_module, "notify_error", lambda error, what: heard.append((str(error), what)))
    assert dock.state.writer.background  # turned on by the dock's layers

    def full_disk():
        raise WriteError(tmp_path / "corrections.npz", "no space left on device")

    dock.state.writer.run(full_disk)
    qtbot.waitUntil(lambda: bool(heard), timeout=5000)  # from the writer's thread to the GUI's
    assert "no space left" in heard[0][0] and heard[0][1] == "saving the corrections"
    dock.state.writer.flush()  # heard already: not raised again
