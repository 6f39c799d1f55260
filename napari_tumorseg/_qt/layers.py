"""The layers the plugin made, and the viewer's slice: what the panels share besides the review state.

It follows the review state: when a case opens it replaces the previous
case's layers with the new ones and fills the Segmentation layer with the
restored labels. Edits of the Segmentation layer are saved to the session a
moment after each stroke (crash safety). The session's files are written by
the state's writer on a thread of its own (``workflow.writer``: 30-50 ms of
fsync per edit, off the GUI thread); a failed write comes back here as a
notification. It never touches the user's other layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from .jobs import notify_error
from .pauses import settle_heap

if TYPE_CHECKING:
    import napari

    from ..io.case import Case
    from ..workflow.session import RestoredSession
    from ..workflow.state import ReviewState

SEGMENTATION_LAYER = "Segmentation"
BRAIN_LAYER = "Brain mask"
BRAIN_COLOUR = (0.2, 0.75, 1.0, 1.0)
UNCERTAINTY_LAYER = "Uncertainty"
SAVE_DELAY_MS = 300


class _FailureRelay(QObject):
    """Carries a background write's failure from the writer's thread to the GUI thread (a queued signal)."""

    failed = Signal(object)


class PluginLayers:
    """The case's image layers, the editable Segmentation layer and the uncertainty overlay.

    Args:
        viewer: the napari viewer.
        state: the review state it follows and saves edits to.
    """

    def __init__(self, viewer: napari.Viewer, state: ReviewState) -> None:
        self.viewer = viewer
        self.state = state
        self._layers: list[Any] = []
        self._images: list[Any] = []  # the case's sequences, in channel order
        self._case: Case | None = None
        self._save_timer = QTimer()
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_edits_now)
        self._relay = _FailureRelay()
        self._relay.failed.connect(lambda error: notify_error(error, "saving the corrections"))
        state.writer.start_background(self._relay.failed.emit)
        state.case_opened.connect(self._show_case)
        state.labels_edited.connect(self._show_edit)
        state.preparation_changed.connect(self._show_brain)

    # --- following the state ------------------------------------------------------------

    def _show_case(self, case: Case, restored: RestoredSession | None) -> None:
        """Replace the previous case's layers with this case's images, reference and labels."""
        from .._layers import case_to_layer_data

        self.remove_all()
        self._case = case
        for data, kwargs, layer_type in case_to_layer_data(case):
            self._layers.append(getattr(self.viewer, f"add_{layer_type}")(data, **kwargs))
            if layer_type == "image":
                self._images.append(self._layers[-1])
        if case.label is not None:
            # The reference is for comparison; the editable mask is the segmentation.
            self._layers[-1].visible = False
        # The editable mask exists from the start (napari takes ~0.4 s to add a labels layer:
        # better now, while the case opens, than as a freeze when segmentation starts).
        self._show_banner(case)
        layer = self.segmentation()
        if restored is not None and restored.labels is not None:
            layer.data = restored.labels.copy()  # the layer's own array: the state keeps its copy to diff against
            self._save_timer.stop()  # restored, not edited: nothing new to save
        settle_heap()

    def _show_edit(self, edit) -> None:
        """A prompt, an undo or a redo changed the state's labels: the same change on the layer."""
        layer = self.segmentation(create=False)
        if layer is None or layer.data.shape != tuple(edit.shape):
            return
        # (A stroke not saved yet stays on the layer: the next save records it as its own step.)
        edit.apply(layer.data)
        layer.refresh()

    def _show_banner(self, case: Case) -> None:
        """The case's name on the canvas, and whether it is a synthetic phantom or a scan."""
        from ..io.origin import banner, is_synthetic

        overlays = getattr(getattr(self.viewer, "canvas", None), "overlays", None)
        text = getattr(overlays, "text", None) if overlays is not None else None
        if text is None:
            return
        text.text = banner(case)
        text.color = (1.0, 0.65, 0.2, 1.0) if is_synthetic(case) else (0.55, 0.8, 1.0, 1.0)
        text.position = "top_left"
        text.font_size = 11
        text.visible = True

    def _show_brain(self, preparation) -> None:
        """The brain mask of a prepared case, as its own editable layer: its array is the state's, so a
        correction painted there is what the tumour model segments inside."""
        brain = self.state.brain
        if brain is None or self._case is None:
            return
        from napari.utils.colormaps import DirectLabelColormap

        from .._layers import case_metadata

        layer = self.viewer.add_labels(
            brain, name=BRAIN_LAYER, scale=self._case.geometry.spacing, metadata=case_metadata(self._case),
            colormap=DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: BRAIN_COLOUR}),
            opacity=0.25,
        )
        self._layers.append(layer)
        # The tumour labels stay the layer a brush paints on unless the user picks the brain mask.
        segmentation = self.segmentation(create=False)
        if segmentation is not None:
            self.viewer.layers.selection.active = segmentation

    def brain_layer(self):
        return self._own(BRAIN_LAYER)

    def remove_all(self) -> None:
        self._save_timer.stop()
        for layer in self._layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self._layers.clear()
        self._images.clear()

    # --- the layers ---------------------------------------------------------------------

    def segmentation(self, create: bool = True):
        """The editable labels layer, made on first use with BraTS names, colours and geometry."""
        layer = self._own(SEGMENTATION_LAYER)
        if layer is None and create and self._case is not None:
            from .._layers import labels_layer_kwargs

            shape = self._case.shape
            layer = self.viewer.add_labels(np.zeros(shape, np.uint8), **labels_layer_kwargs(self._case, SEGMENTATION_LAYER))
            self._layers.append(layer)
            layer.events.paint.connect(self._edited)
            layer.events.data.connect(self._edited)
        return layer

    def show_uncertainty(self, show: bool):
        """The uncertainty overlay of the state's last prediction, shown or hidden."""
        layer = self._own(UNCERTAINTY_LAYER)
        uncertainty = self.state.uncertainty
        if not show or uncertainty is None:
            if layer is not None:
                layer.visible = False
            return layer
        if layer is None:
            layer = self.viewer.add_image(
                uncertainty, name=UNCERTAINTY_LAYER, scale=self.state.case.geometry.spacing,  # type: ignore[union-attr]
                colormap="magma", blending="additive", contrast_limits=(0.0, 1.0), opacity=0.6,
            )
            self._layers.append(layer)
        else:
            layer.data = uncertainty
            layer.visible = True
        return layer

    def image_layers(self) -> list[Any]:
        """The case's sequences (FLAIR, T1, T1c, T2, those present), still in the viewer."""
        return [layer for layer in self._images if layer in self.viewer.layers]

    def adopt(self, layer: Any) -> None:
        """A layer made for the case (e.g. a read-only overlay): removed with the case's other layers."""
        self._layers.append(layer)

    def release(self, layer: Any) -> None:
        """Remove one of the plugin's layers now."""
        if layer in self._layers:
            self._layers.remove(layer)
        if layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    def _own(self, name: str):
        for layer in self._layers:
            if layer.name == name and layer in self.viewer.layers:
                return layer
        return None

    # --- the viewer's slice -------------------------------------------------------------

    def current_slice(self) -> int:
        return int(self.viewer.dims.current_step[0])

    def go_to_slice(self, z: int) -> None:
        self.viewer.dims.set_current_step(0, int(z))

    # --- edits --------------------------------------------------------------------------

    def _edited(self, event=None) -> None:
        self._save_timer.start()

    def save_edits_now(self) -> None:
        """Save the Segmentation layer's corrected slices to the session now."""
        self._save_timer.stop()
        layer = self.segmentation(create=False)
        case = self.state.case
        if layer is None or case is None or layer.data.shape != case.shape:
            return
        try:
            self.state.record_edit(layer.data)
        except Exception as error:
            notify_error(error, "saving the corrections")
