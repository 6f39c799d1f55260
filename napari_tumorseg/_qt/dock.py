"""The "Tumour segmentation" dock widget: case, segment, correct, adapt, export — top to bottom.

Each section is a small panel in its own module; this widget owns what they
share: the viewer, the core ReviewState, the persisted settings, and the
layers the plugin made (it never touches the user's other layers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from ..workflow.settings import Settings
from ..workflow.state import ReviewState
from .pauses import settle_heap, warm_up_torch

if TYPE_CHECKING:
    import napari

    from ..io.case import Case

SEGMENTATION_LAYER = "Segmentation"
UNCERTAINTY_LAYER = "Uncertainty"


class TumourSegmentationWidget(QWidget):
    """Open a case, segment it, correct the mask, adapt the model, export the mask.

    Args:
        napari_viewer: the viewer (napari passes it when the widget is docked).
        state: the review state (default: a new one on the user's registry).
    """

    def __init__(self, napari_viewer: napari.Viewer, state: ReviewState | None = None) -> None:
        super().__init__()
        from .adapt_panel import AdaptPanel
        from .case_panel import CasePanel
        from .correct_panel import CorrectPanel
        from .export_panel import ExportPanel
        from .segment_panel import SegmentPanel

        self.viewer = napari_viewer
        self.state = state or ReviewState()
        self.settings = Settings.load()
        self._plugin_layers: list[Any] = []
        self._shown_case: Case | None = None

        self.case_panel = CasePanel(self)
        self.segment_panel = SegmentPanel(self)
        self.correct_panel = CorrectPanel(self)
        self.adapt_panel = AdaptPanel(self)
        self.export_panel = ExportPanel(self)

        content = QWidget()
        column = QVBoxLayout(content)
        for panel in (self.case_panel, self.segment_panel, self.correct_panel, self.adapt_panel, self.export_panel):
            column.addWidget(panel)
        column.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.setMinimumWidth(400)
        warm_up_torch()

    # --- layers the plugin owns ---------------------------------------------------------

    def show_case(self, case: Case) -> None:
        """Replace the previous case's layers with this case's images and reference mask."""
        from .._layers import case_to_layer_data

        self.remove_plugin_layers()
        self._shown_case = case
        for data, kwargs, layer_type in case_to_layer_data(case):
            layer = getattr(self.viewer, f"add_{layer_type}")(data, **kwargs)
            self._plugin_layers.append(layer)
        if case.label is not None:
            # The reference is for comparison; the editable mask is the segmentation.
            self._plugin_layers[-1].visible = False
        # The editable mask exists from the start (napari takes ~0.4 s to add a labels layer:
        # better now, while the case opens, than as a freeze when segmentation starts).
        self.segmentation_layer()
        settle_heap()

    def remove_plugin_layers(self) -> None:
        for layer in self._plugin_layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self._plugin_layers.clear()

    def segmentation_layer(self, create: bool = True):
        """The editable labels layer, made on first use with BraTS names, colours and geometry."""
        layer = self._own_layer(SEGMENTATION_LAYER)
        case = self._shown_case
        if layer is None and create and case is not None:
            from .._layers import labels_layer_kwargs

            layer = self.viewer.add_labels(np.zeros(case.shape, np.uint8), **labels_layer_kwargs(case, SEGMENTATION_LAYER))
            self._plugin_layers.append(layer)
            self.correct_panel.watch(layer)
        return layer

    def uncertainty_layer(self, show: bool):
        layer = self._own_layer(UNCERTAINTY_LAYER)
        uncertainty = self.state.uncertainty
        if not show or uncertainty is None:
            if layer is not None:
                layer.visible = False
            return layer
        if layer is None:
            layer = self.viewer.add_image(
                uncertainty,
                name=UNCERTAINTY_LAYER,
                scale=self.state.case.geometry.spacing,  # type: ignore[union-attr]
                colormap="magma",
                blending="additive",
                contrast_limits=(0.0, 1.0),
                opacity=0.6,
            )
            self._plugin_layers.append(layer)
        else:
            layer.data = uncertainty
            layer.visible = True
        return layer

    def _own_layer(self, name: str):
        for layer in self._plugin_layers:
            if layer.name == name and layer in self.viewer.layers:
                return layer
        return None

    def scroll_to(self, panel: QWidget) -> None:
        """Bring a section into view (after a long job, its result is what the user wants to see)."""
        # Vertical only: ensureWidgetVisible would also shift the panels sideways.
        top = panel.mapTo(self.scroll.widget(), panel.rect().topLeft()).y()
        self.scroll.verticalScrollBar().setValue(top)

    def current_slice(self) -> int:
        return int(self.viewer.dims.current_step[0])

    def go_to_slice(self, z: int) -> None:
        self.viewer.dims.set_current_step(0, int(z))

    def save_settings(self) -> None:
        try:
            self.settings.save()
        except Exception:  # settings are a convenience; never let them break the workflow
            pass

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        for panel in (self.segment_panel, self.adapt_panel):
            panel.cancel()
        self.save_settings()
        super().closeEvent(event)
