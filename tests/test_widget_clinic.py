"""The clinic's additions through the dock in a real viewer: prompts and undo, the four-up view, imported
models, DICOM SEG export, a restored session that says so."""

from __future__ import annotations

import numpy as np
import pytest
from widget_fixtures import WAIT_MS, open_and_segment, paint_correction, wait_for

from napari_tumorseg.io.labels import ED, ET

pytestmark = pytest.mark.gui


class FakeMouse:
    """What napari hands a mouse callback: a type, a world position, a canvas position."""

    def __init__(self, position, pos=(10, 10)):
        self.type, self.position, self.pos = "mouse_press", position, pos


def click(layer, tools, position, moved=False):
    """Drive the Segmentation layer's mouse callback through a press, (a drag,) a release."""
    event = FakeMouse(position)
    callback = tools._on_press(layer, event)
    next(callback)
    if moved:
        event.type, event.pos = "mouse_move", (40, 40)
        next(callback, None)
    event.type = "mouse_release"
    next(callback, None)


def lesion_labels(shape):
    labels = np.zeros(shape, np.uint8)
    labels[10:14, 20:26, 20:26] = ED
    labels[11:13, 22:24, 22:24] = ET
    return labels


def test_a_click_removes_a_lesion_counts_as_corrected_and_undo_redo_bring_it_back(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    tools = dock.correct_panel.tools
    layer.data = lesion_labels(layer.data.shape)  # as if painted: saved, recorded
    dock.layers.save_edits_now()
    before = layer.data.copy()
    tools.set_tool("remove")
    assert layer.mode == "pan_zoom" and dock.viewer.layers.selection.active is layer
    click(layer, tools, np.array([12, 23, 23]) * np.asarray(layer.scale), moved=True)  # a pan: nothing
    assert tools.job is None
    click(layer, tools, np.array([12, 23, 23]) * np.asarray(layer.scale))
    wait_for(qtbot, tools.job)
    assert not layer.data[10:14, 20:26, 20:26].any()
    assert set(range(10, 14)) <= set(dock.state.corrected)
    assert "removed a lesion" in tools.status.text().lower()
    layer.bind_key  # the keys are the layer's own
    assert any("Z" in str(key) for key in layer.keymap), "Ctrl+Z bound on the Segmentation layer"
    tools.undo()
    np.testing.assert_array_equal(layer.data, before)
    tools.redo()
    assert not layer.data[10:14, 20:26, 20:26].any()
    dock.close()
    assert not layer.keymap and tools._on_press not in layer.mouse_drag_callbacks, "unbound on close"


def test_fill_and_propagate_from_the_panel(qtbot, dock, small_glioma_folder, monkeypatch):
    import napari_tumorseg._qt.jobs as jobs

    errors = []
    monkeypatch.setattr(jobs, "notify_error", lambda error, what: errors.append(error))
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    tools, z = dock.correct_panel.tools, 20
    labels = layer.data.copy()  # the model's output, two slices corrected
    labels[z - 3, 20:30, 20:30] = ET
    labels[z + 3, 22:28, 22:28] = ET
    layer.data = labels
    dock.layers.save_edits_now()
    assert dock.state.corrected == [z - 3, z + 3]
    dock.layers.go_to_slice(z + 6)  # above both corrected slices: a line in the panel, not an error
    wait_for(qtbot, tools.fill())
    assert tools.status.text() == (f"Slice {z + 6} does not lie between two corrected slices: correct one on each "
                                   "side first.") and not errors
    dock.layers.go_to_slice(z)
    wait_for(qtbot, tools.fill())
    assert all((layer.data[k] == ET).any() for k in range(z - 2, z + 3)), tools.status.text()
    assert set(range(z - 3, z + 4)) <= set(dock.state.corrected)
    wait_for(qtbot, tools.propagate())  # the tiny model sees nothing: a line says so, nothing breaks
    assert tools.status.text() and not errors


def test_the_four_up_view_shows_every_sequence_with_the_segmentation_over_each(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    dock.correct_panel.four_up_box.setChecked(True)
    grid = dock.viewer.canvas.grid
    assert grid.enabled and grid.stride == 2
    names = [l.name for l in dock.viewer.layers]
    assert names[:8] == ["FLAIR", "Segmentation", "T1", "Segmentation on T1", "T1c", "Segmentation on T1c",
                         "T2", "Segmentation on T2"]
    overlays = [l for l in dock.viewer.layers if l.name.startswith("Segmentation on ")]
    assert all(o.data is layer.data and not o.editable for o in overlays)
    assert all(dock.viewer.layers[n].visible for n in ("FLAIR", "T1", "T1c", "T2"))
    assert [grid.position(dock.viewer.layers.index(n), dock.viewer.layers) for n in ("FLAIR", "T2")] == [(0, 0), (1, 1)]
    dock.correct_panel.four_up_box.setChecked(False)
    assert not grid.enabled and not any(l.name.startswith("Segmentation on ") for l in dock.viewer.layers)


def test_an_imported_onnx_model_segments_and_says_it_cannot_be_adapted(qtbot, dock, small_glioma_folder, tmp_path):
    from napari_tumorseg.models.testing import write_onnx_threshold_model

    path = write_onnx_threshold_model(tmp_path / "threshold.onnx", {"name": "threshold", "sequences": ["flair"]})
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    wait_for(qtbot, dock.segment_panel.add_model(path))
    assert dock.state.selected_version.id == "threshold (ONNX)"
    assert not dock.adapt_panel.adapt_button.isEnabled()
    assert "cannot be adapted" in dock.adapt_panel.status.text()
    assert "imported ONNX model segments as it is" in dock.adapt_panel.adapt_button.toolTip()
    wait_for(qtbot, dock.segment_panel.segment_volume())
    qtbot.waitUntil(lambda: dock.state.prediction_model == "threshold (ONNX)", timeout=WAIT_MS)
    assert (dock.layers.segmentation().data == ED).any()
    dock.segment_panel.model_box.setCurrentIndex(0)  # back to the tiny U-Net: adaptable again
    assert dock.adapt_panel.adapt_button.isEnabled()


def test_dicom_seg_export_from_the_dock(qtbot, dock, tmp_path):
    from napari_tumorseg.io.dicom_seg import read_dicom_seg
    from napari_tumorseg.io.testing import ORIENTATIONS, write_dicom_series

    volume = (np.indices((24, 28, 12)).sum(axis=0) * 7 % 300 + 50).astype(np.int16)
    for n, name in enumerate(("FLAIR", "T1 POST GD")):
        write_dicom_series(tmp_path / "case" / f"s{n}", volume, ORIENTATIONS["oblique"], description=name,
                           series_number=n + 1)
    # A DICOM SEG lies on the series' own grid, so it is offered for a scan that was not moved by preparing
    # (this small pattern looks unprepared to the checks: opened as it is).
    dock.case_panel.prepare_box.auto_box.setChecked(False)
    wait_for(qtbot, dock.case_panel.open_path(tmp_path / "case"))
    panel = dock.export_panel
    assert panel.format_box.model().item(1).isEnabled()
    layer = dock.layers.segmentation()
    layer.data = lesion_labels(layer.data.shape)
    wait_for(qtbot, panel.export(tmp_path / "mask.dcm"))
    assert "DICOM SEG" in panel.status.text()
    np.testing.assert_array_equal(read_dicom_seg(tmp_path / "mask.dcm", dock.state.case), layer.data)


def test_a_second_run_says_it_restored_the_session(qtbot, dock, small_glioma_folder):
    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    paint_correction(dock, layer, 7)
    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))  # the same case, opened again
    panel = dock.segment_panel
    assert "Restored the saved session" in panel.status.text() and "1 corrected slice" in panel.status.text()
    assert panel.progress.format() == "restored session" and panel.progress.value() == panel.progress.maximum()
    assert not dock.export_panel.format_box.model().item(1).isEnabled(), "DICOM SEG only for DICOM cases"


def test_the_dock_fits_a_1600_by_1000_window_and_marks_a_phantom(qtbot, dock, small_glioma_folder):
    from napari_tumorseg._qt.dock import MINIMUM_WIDTH

    wait_for(qtbot, dock.case_panel.open_path(small_glioma_folder))
    content = dock.scroll.widget()
    content.adjustSize()
    # At 1600 x 1000 napari gives the dock about its minimum width: every panel must fit in it, scrollbar included.
    room = MINIMUM_WIDTH - dock.scroll.verticalScrollBar().sizeHint().width()
    assert content.minimumSizeHint().width() <= room, content.minimumSizeHint()
    for panel in dock.panels:
        assert panel.minimumSizeHint().width() <= room, (panel.title(), panel.minimumSizeHint())
    assert "Synthetic phantom" in dock.case_panel.summary.text()
    overlay = dock.viewer.canvas.overlays.text
    assert overlay.visible and overlay.text.startswith("SYNTHETIC PHANTOM")


def test_bench_gui_runs_every_prompt_through_the_panel_and_times_the_loop(qtbot, dock, small_glioma_folder,
                                                                         small_glioma):
    """``tumorseg bench-gui``'s prompt phases: each prompt really runs (the review state applies its edit)."""
    from qtpy.QtWidgets import QApplication

    from napari_tumorseg._qt.responsiveness import TickRecorder, _prompt_phases, _repeated

    layer = open_and_segment(qtbot, dock, small_glioma_folder)
    # The tiny model finds nothing: the phantom's tumour stands in for its output, no slice corrected yet.
    layer.data = dock.state.accept_prediction(small_glioma.label.copy(), dock.state.prediction_model)
    applied, apply_edit = [], dock.state.apply_edit

    def spy(edit):
        applied.append(edit.what)
        return apply_edit(edit)

    dock.state.apply_edit = spy
    phases = _prompt_phases(QApplication.instance(), dock, TickRecorder(), repeats=2)
    names = [phase.phase for phase in phases]
    assert names == ["prompt: remove lesion (3D)", "prompt: undo", "prompt: grow lesion (3D)",
                     "prompt: fill between corrected slices", "prompt: propagate ±3", "prompt: redo"]
    assert all(phase.ticks > 0 and phase.max_ms >= phase.p99_ms >= phase.p50_ms for phase in phases)
    what = " | ".join(applied).lower()
    assert what.count("removed a lesion") >= 3 and "grew" in what and "filled" in what, what
    assert dock.state.history.can_undo
    # A prompt that only left the layer's strokes saved (what a refusal looked like) is not timed as applied.
    stroke = dock.state.labels.copy()
    stroke[stroke.shape[0] // 2, :2, :2] = 2

    def strokes_only():
        dock.state.record_edit(stroke)

    with pytest.raises(RuntimeError, match="not applied"):
        _repeated(QApplication.instance(), dock, TickRecorder(), "prompt: refused", strokes_only, dock.state.undo, 1)
