"""The "Tumour segmentation" dock widget: case, segment, correct, adapt, export — top to bottom.

The dock only builds. What the sections share lives outside them: the
Qt-free review state (the case, the model's output, the corrections, the
chosen model), the plugin's layers and the persisted settings. Each section
is a small panel in its own module that listens to the review state's
signals; no panel calls another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFormLayout, QScrollArea, QVBoxLayout, QWidget

from ..workflow.settings import Settings
from ..workflow.state import ReviewState
from .adapt_panel import AdaptPanel
from .case_panel import CasePanel
from .correct_panel import CorrectPanel
from .export_panel import ExportPanel
from .layers import PluginLayers
from .pauses import warm_up_torch
from .segment_panel import SegmentPanel

if TYPE_CHECKING:
    import napari

MINIMUM_WIDTH = 380


def fit_to_width(content: QWidget) -> None:
    """Let every panel shrink to the dock's width (at 1600 x 1000 the dock is ~400 px wide).

    A combo box is as wide as its longest entry unless told otherwise, and a
    form keeps its labels beside its fields: either pushes the panels wider
    than the dock. Combo boxes now shrink (their lists still show whole
    entries) and a form row that does not fit puts its field under its label.
    """
    for box in content.findChildren(QComboBox):
        box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        box.setMinimumContentsLength(min(box.minimumContentsLength() or 12, 12))
    for form in content.findChildren(QFormLayout):
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)


class TumourSegmentationWidget(QWidget):
    """Open a case, segment it, correct the mask, adapt the model, export the mask.

    Args:
        napari_viewer: the viewer (napari passes it when the widget is docked).
        state: the review state (default: a new one on the user's registry).
    """

    def __init__(self, napari_viewer: napari.Viewer, state: ReviewState | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state or ReviewState()
        self.settings = Settings.load()
        # The layers follow the state first, so a panel told of a new case finds its layers made.
        self.layers = PluginLayers(napari_viewer, self.state)
        shared = (self.state, self.layers, self.settings)
        self.case_panel = CasePanel(self.state, self.settings)
        self.segment_panel = SegmentPanel(*shared)
        self.correct_panel = CorrectPanel(*shared)
        self.adapt_panel = AdaptPanel(*shared)
        self.export_panel = ExportPanel(*shared)

        content = QWidget()
        column = QVBoxLayout(content)
        for panel in self.panels:
            column.addWidget(panel)
        column.addStretch(1)
        fit_to_width(content)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(content)
        # Vertical scrolling only: the panels fit the dock's width instead of hiding their right side.
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.setMinimumWidth(MINIMUM_WIDTH)
        warm_up_torch()

    @property
    def panels(self) -> tuple[QWidget, ...]:
        return (self.case_panel, self.segment_panel, self.correct_panel, self.adapt_panel, self.export_panel)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        for panel in (self.case_panel, self.segment_panel, self.adapt_panel):
            panel.cancel()
        self.correct_panel.close_tools()  # the Segmentation layer's clicks and keys back to napari's
        self.layers.save_edits_now()
        self.state.writer.flush()  # the last edits on disk before the dock goes (failures were notified)
        self.settings.save_quietly()
        super().closeEvent(event)
