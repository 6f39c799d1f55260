"""Correct: napari's own paint, erase and fill; this panel lists what changed and what deserves a look.

Edits are saved to the case's session folder a moment after each stroke, so
a crash or a closed window loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
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

from .jobs import notify_error

if TYPE_CHECKING:
    from .dock import TumourSegmentationWidget

SAVE_DELAY_MS = 300


class CorrectPanel(QGroupBox):
    def __init__(self, dock: TumourSegmentationWidget) -> None:
        super().__init__("3 · Correct")
        self.dock = dock
        self._watched = None
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_now)

        hint = QLabel("Paint, erase or fill on the <b>Segmentation</b> layer; edits are saved as you go.")
        hint.setWordWrap(True)
        self.corrected_list = QListWidget()
        self.corrected_list.setMaximumHeight(90)
        self.suggestion_list = QListWidget()
        self.suggestion_list.setMaximumHeight(90)
        for widget in (self.corrected_list, self.suggestion_list):
            widget.itemClicked.connect(self._go_to_item)
        self.count_box = QSpinBox()
        self.count_box.setRange(1, 50)
        self.count_box.setValue(dock.settings.suggestions)
        self.count_box.valueChanged.connect(self._count_changed)
        self.uncertainty_box = QCheckBox("Show uncertainty overlay")
        self.uncertainty_box.toggled.connect(lambda on: self.dock.uncertainty_layer(on))

        form = QFormLayout()
        form.addRow("Corrected slices", self.corrected_list)
        form.addRow("Least sure, top", self.count_box)
        form.addRow("", self.suggestion_list)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addLayout(form)
        layout.addWidget(self.uncertainty_box)
        dock.state.corrections_changed.connect(lambda _: self.refresh())
        dock.state.prediction_changed.connect(self.refresh)

    def watch(self, layer) -> None:
        """Follow the edits of the segmentation layer."""
        self._watched = layer
        layer.events.paint.connect(self._edited)
        layer.events.data.connect(self._edited)

    def _edited(self, event=None) -> None:
        self._save_timer.start()

    def save_now(self) -> None:
        layer = self._watched
        if layer is None or layer not in self.dock.viewer.layers or self.dock.state.prediction is None:
            return
        if layer.data.shape != self.dock.state.prediction.shape:
            return
        try:
            self.dock.state.record_edit(layer.data)
        except Exception as error:
            notify_error(error, "saving the corrections")

    def refresh(self) -> None:
        state = self.dock.state
        self.corrected_list.clear()
        for z in state.corrected:
            self._add(self.corrected_list, z, f"slice {z}")
        self.suggestion_list.clear()
        for z in state.suggestions(self.count_box.value()):
            self._add(self.suggestion_list, z, f"slice {z}")
        if self.uncertainty_box.isChecked():
            self.dock.uncertainty_layer(True)

    @staticmethod
    def _add(widget: QListWidget, z: int, text: str) -> None:
        item = QListWidgetItem(text)
        item.setData(256, z)  # Qt.UserRole
        widget.addItem(item)

    def _go_to_item(self, item: QListWidgetItem) -> None:
        self.dock.go_to_slice(int(item.data(256)))

    def _count_changed(self, value: int) -> None:
        self.dock.settings.suggestions = value
        self.dock.save_settings()
        self.refresh()
