"""Correct: napari's brush or the prompt tools; this panel lists what changed and what deserves a look.

Edits are saved to the case's session folder a moment after each stroke (see
``layers.PluginLayers``), with each stroke and prompt an undo step kept there
too, so a crash or a closed window loses nothing. The prompt tools (click to
remove or grow a lesion, fill, propagate, undo/redo) are in ``prompt_tools``;
the four-up view of every sequence in ``four_up``. The suggestions are the
slices most likely to hold an error (see ``workflow.suggest``), each with its
reason. A slice shown for at least a second counts as looked at: the
adaptation's label-free check compares the looked-at, uncorrected slices
before and after.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
)

from .four_up import FourUpView
from .prompt_tools import PromptTools

LOOKED_AT_S = 1.0  # shown at least this long: the slice was looked at, not scrolled past

if TYPE_CHECKING:
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState
    from .layers import PluginLayers


class CorrectPanel(QGroupBox):
    """Lists the corrected slices and the least certain ones, from the review state.

    Args:
        state: the review state.
        layers: the plugin's layers (to go to a slice, to show the uncertainty overlay).
        settings: the persisted settings (how many suggestions).
    """

    def __init__(self, state: ReviewState, layers: PluginLayers, settings: Settings) -> None:
        super().__init__("3 · Correct")
        self.state, self.layers, self.settings = state, layers, settings
        hint = QLabel("Paint on the <b>Segmentation</b> layer, or click with a tool below; every edit is "
                      "saved as you go and can be undone (Ctrl+Z).")
        hint.setWordWrap(True)
        self.tools = PromptTools(state, layers, settings)
        self.four_up = FourUpView(layers.viewer, layers)
        self.four_up_box = QCheckBox("All four sequences at once (grid)")
        self.four_up_box.setToolTip("napari's grid: FLAIR, T1, T1c and T2 side by side, the segmentation on each")
        self.four_up_box.toggled.connect(self.four_up.show)
        self.corrected_list = QListWidget()
        self.corrected_list.setMaximumHeight(90)
        self.suggestion_list = QListWidget()
        self.suggestion_list.setMaximumHeight(90)
        for widget in (self.corrected_list, self.suggestion_list):
            widget.itemClicked.connect(self._go_to_item)
        self.count_box = QSpinBox()
        self.count_box.setRange(1, 50)
        self.count_box.setValue(settings.suggestions)
        self.count_box.valueChanged.connect(self._count_changed)
        self.uncertainty_box = QCheckBox("Show uncertainty overlay")
        self.uncertainty_box.toggled.connect(layers.show_uncertainty)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Corrected slices", self.corrected_list)
        form.addRow("Worth a look, top", self.count_box)
        form.addRow("", self.suggestion_list)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.tools)
        layout.addLayout(form)
        layout.addWidget(self.uncertainty_box)
        layout.addWidget(self.four_up_box)
        state.case_opened.connect(lambda *_: self._case_opened())
        state.corrections_changed.connect(lambda _: self.refresh())
        state.prediction_changed.connect(self.refresh)
        self._shown: tuple[int, float] | None = None  # the slice on screen, since when
        layers.viewer.dims.events.current_step.connect(self._slice_shown)

    def _case_opened(self) -> None:
        self.refresh()
        if self.four_up_box.isChecked():
            self.four_up.show(True)  # the new case's layers

    def close_tools(self) -> None:
        """Unbind the prompt tools from the layer (the dock is closing)."""
        self.tools.unbind()

    def refresh(self) -> None:
        self.corrected_list.clear()
        for z in self.state.corrected:
            self._add(self.corrected_list, z, f"slice {z}")
        self.suggestion_list.clear()
        for z, reason in self.state.suggestions(self.count_box.value()):
            self._add(self.suggestion_list, z, f"slice {z}" + (f" — {reason}" if reason else ""))
        if self.uncertainty_box.isChecked():
            self.layers.show_uncertainty(True)

    @staticmethod
    def _add(widget: QListWidget, z: int, text: str) -> None:
        item = QListWidgetItem(text)
        item.setData(256, z)  # Qt.UserRole
        widget.addItem(item)

    def _slice_shown(self, event=None) -> None:
        """Count the slice that was on screen as looked at when it stayed there long enough."""
        now, z = time.monotonic(), self.layers.current_slice()
        if self._shown is not None and self._shown[0] != z:
            if now - self._shown[1] >= LOOKED_AT_S and self.state.case is not None:
                self.state.mark_viewed(self._shown[0])
            self._shown = None
        if self._shown is None:
            self._shown = (z, now)

    def _go_to_item(self, item: QListWidgetItem) -> None:
        self.layers.go_to_slice(int(item.data(256)))

    def _count_changed(self, value: int) -> None:
        self.settings.suggestions = value
        self.settings.save_quietly()
        self.refresh()
