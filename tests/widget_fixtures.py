"""The dock widget in a real viewer, on a tiny network: fixtures and steps the widget tests share (no tests here)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.io.labels import ET

ANCHOR_SHAPE = (32, 48, 48)
WAIT_MS = 60_000


@pytest.fixture
def registry(tmp_path, torch_single_thread):
    from napari_tumorseg.models.registry import ModelRegistry
    from napari_tumorseg.models import build_model
    from napari_tumorseg.models.checkpoint import save_checkpoint

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    torch_single_thread.manual_seed(0)
    save_checkpoint(shipped / "tiny-unet.safetensors", build_model("unet", base_width=4, depth=2))
    return ModelRegistry(root=tmp_path / "registry", pretrained_dirs=[shipped])


@pytest.fixture
def dock(make_napari_viewer, registry, tmp_path):
    from napari_tumorseg._qt.dock import TumourSegmentationWidget
    from napari_tumorseg.workflow.state import ReviewState

    viewer = make_napari_viewer()
    widget = TumourSegmentationWidget(viewer, state=ReviewState(registry=registry, sessions_root=tmp_path / "sessions"))
    widget.adapt_panel.anchor_shape = ANCHOR_SHAPE
    viewer.window.add_dock_widget(widget)
    return widget


def wait_for(qtbot, job):
    qtbot.waitUntil(lambda: not job.is_running, timeout=WAIT_MS)


def open_and_segment(qtbot, dock, folder):
    wait_for(qtbot, dock.case_panel.open_path(folder))
    assert dock.state.case is not None
    job = dock.segment_panel.segment_volume()
    wait_for(qtbot, job)
    qtbot.waitUntil(lambda: dock.state.prediction is not None, timeout=WAIT_MS)
    return dock.layers.segmentation(create=False)


def paint_correction(dock, layer, z):
    """What a brush stroke does: napari's paint API, which emits the paint event."""
    coords = np.array([[z, y, x] for y in range(20, 26) for x in range(20, 26)])
    layer.selected_label = ET
    layer.data_setitem(tuple(coords.T), ET)
    dock.layers.save_edits_now()
