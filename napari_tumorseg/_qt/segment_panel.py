"""Segment: pick a model version and a device, segment the volume (or one slice) in the background."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..io.labels import CLASS_ABBREVIATIONS, CLASS_COLORS, CLASS_NAMES
from ..workflow.review import slice_uncertainty_scores
from .jobs import Job, notify_error

if TYPE_CHECKING:
    from ..workflow.session import RestoredSession
    from .dock import TumourSegmentationWidget

DEVICES = ("auto", "cpu", "cuda", "mps")


def legend_html() -> str:
    rows = []
    for value, (r, g, b, _) in CLASS_COLORS.items():
        swatch = f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})"
        rows.append(f"<span style='color:{swatch}'>■</span> {value} {CLASS_ABBREVIATIONS[value]} — {CLASS_NAMES[value]}")
    return "<br>".join(rows)


class SegmentPanel(QGroupBox):
    def __init__(self, dock: TumourSegmentationWidget) -> None:
        super().__init__("2 · Segment")
        self.dock = dock
        self.job: Job | None = None
        self._previous: np.ndarray | None = None
        self._created_layer = False
        self._last_refresh = 0.0

        self.model_box = QComboBox()
        self.model_box.currentIndexChanged.connect(self._show_provenance)
        self.provenance = QLabel()
        self.provenance.setWordWrap(True)
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        self.device_box.setCurrentText(dock.settings.device if dock.settings.device in DEVICES else "auto")
        self.device_box.currentTextChanged.connect(self._device_chosen)
        self.segment_button = QPushButton("Segment volume")
        self.slice_button = QPushButton("Segment this slice")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.segment_button.clicked.connect(self.segment_volume)
        self.slice_button.clicked.connect(self.segment_current_slice)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.status = QLabel()
        self.legend = QLabel(legend_html())

        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("", self.provenance)
        form.addRow("Device", self.device_box)
        buttons = QHBoxLayout()
        for button in (self.segment_button, self.slice_button, self.cancel_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.legend)
        dock.state.model_changed.connect(lambda _: self.refresh_models())
        self.refresh_models()

    # --- models -------------------------------------------------------------------------

    def refresh_models(self) -> None:
        registry = self.dock.state.registry
        self.model_box.blockSignals(True)
        self.model_box.clear()
        try:
            versions = [v for v in registry.list() if v.status != "corrupt"]
        except Exception as error:  # an unreadable registry must not break the panel
            notify_error(error, "listing the model versions")
            versions = []
        active = next((v.id for v in versions if v.active), versions[0].id if versions else None)
        for version in versions:
            self.model_box.addItem(f"{version.id}  [{version.display_status}]", version)
        index = next((i for i, v in enumerate(versions) if v.id == active), -1)
        self.model_box.setCurrentIndex(index)
        self.model_box.blockSignals(False)
        self._show_provenance()

    def selected_version(self):
        return self.model_box.currentData()

    def _show_provenance(self) -> None:
        version = self.selected_version()
        if version is None:
            self.provenance.setText("No model found.")
            return
        parts = [f"{version.arch or '?'}", version.status]
        if version.method:
            parts.append(f"adapted by {version.method} from {version.parent}")
        if version.created:
            parts.append(version.created)
        self.provenance.setText(" · ".join(parts))

    def _device_chosen(self, device: str) -> None:
        self.dock.settings.device = device
        self.dock.save_settings()

    # --- segmentation -------------------------------------------------------------------

    def case_opened(self, restored: RestoredSession | None) -> None:
        """A new case is shown: restore its saved corrections, or segment it."""
        self.progress.setValue(0)
        if restored is not None:
            layer = self.dock.segmentation_layer()
            layer.data = restored.labels
            self.dock.correct_panel.refresh()
            self.status.setText(f"Restored the saved session: {len(restored.corrected)} corrected slice(s).")
        else:
            self.status.setText("")

    def segment_volume(self) -> Job | None:
        state, version = self.dock.state, self.selected_version()
        if state.case is None or version is None:
            self.status.setText("Open a case first." if state.case is None else "No model to run.")
            return None
        self.cancel()
        existing = self.dock.segmentation_layer(create=False)
        self._created_layer = existing is None
        layer = self.dock.segmentation_layer()
        self._previous = None if self._created_layer else layer.data.copy()
        device, case = self.device_box.currentText(), state.case
        protected = set(state.corrected)

        def segmenting(cancel):
            segmenter = state.segmenter(version.id, device)
            result = yield from segmenter.run(case, cancel=cancel)
            if result is None:
                return None
            # Entropy and the per-slice doubt are heavy numpy work: do them here, off the GUI thread.
            uncertainty = result.entropy()
            return result, uncertainty, slice_uncertainty_scores(uncertainty, result.labels)

        def on_progress(report) -> None:
            self.progress.setRange(0, max(report.total, 1))
            self.progress.setValue(report.done)
            self.status.setText(f"Segmenting… {report.done}/{report.total} slices, {report.elapsed:.1f} s")
            if report.labels is not None and len(report.z_indices):
                # Fill in slice by slice, leaving the radiologist's corrected slices alone.
                written = []
                for z, labels in zip(report.z_indices.tolist(), report.labels):
                    if z not in protected:
                        layer.data[z] = labels
                        written.append(z)
                if self._on_screen(written):
                    layer.refresh()

        def on_done(outcome) -> None:
            result, uncertainty, scores = outcome
            labels = state.accept_prediction(
                result.labels, version.id, uncertainty=uncertainty, current_labels=layer.data, slice_scores=scores
            )
            # In place: assigning layer.data makes napari rebuild the layer (a visible stall on big volumes).
            np.copyto(layer.data, labels)
            layer.refresh()
            self.status.setText(f"Segmented with {version.id} on {result.device} in {result.seconds:.1f} s.")
            self.dock.correct_panel.refresh()

        self._busy(True)
        self.job = Job(
            segmenting,
            on_progress=on_progress,
            on_done=on_done,
            on_cancelled=self._restore_previous,
            on_failed=lambda _: self._restore_previous(cancelled=False),
            on_finished=lambda: self._busy(False),
            what="segmentation",
        )
        return self.job.start()

    def _on_screen(self, slices: list[int]) -> bool:
        """Whether new labels on these slices change what the viewer shows.

        A repaint costs 30-70 ms of the GUI thread under software OpenGL, so
        in the 2D view only the slice on screen is repainted as it arrives;
        napari reads the others from the filled array when the user scrolls.
        """
        if self.dock.viewer.dims.ndisplay != 2:
            now = time.monotonic()
            if now - self._last_refresh < 1.0:  # 3D: at most one repaint a second
                return False
            self._last_refresh = now
            return True
        return self.dock.current_slice() in slices

    def segment_current_slice(self) -> None:
        """Re-run the model on the slice on screen (fast enough to stay on the GUI thread)."""
        state, version = self.dock.state, self.selected_version()
        if state.case is None or version is None or state.prediction is None:
            self.status.setText("Segment the volume first.")
            return
        z = self.dock.current_slice()
        if state.is_corrected(z):
            self.status.setText(f"Slice {z} holds your corrections; they are kept as they are.")
            return
        try:
            result = state.segmenter(version.id, self.device_box.currentText()).segment_slice(state.case, z)
        except Exception as error:
            notify_error(error, "segmenting the slice")
            return
        layer = self.dock.segmentation_layer()
        layer.data[z] = result.labels
        layer.refresh()
        from ..workflow.review import entropy

        state.update_slice_prediction(z, result.labels, entropy(result.probabilities) / np.log(4), layer.data)
        self.status.setText(f"Slice {z} segmented with {version.id}.")

    def cancel(self) -> None:
        if self.job is not None and self.job.is_running:
            self.job.cancel()

    def _restore_previous(self, cancelled: bool = True) -> None:
        """Cancel keeps the previous state: the labels as they were before this run."""
        layer = self.dock.segmentation_layer(create=False)
        if layer is not None:
            if self._created_layer:
                self.dock.viewer.layers.remove(layer)
            elif self._previous is not None:
                layer.data = self._previous
        self.progress.setValue(0)
        self.status.setText("Segmentation cancelled; the previous labels are kept." if cancelled else "Segmentation failed.")

    def _busy(self, busy: bool) -> None:
        self.segment_button.setEnabled(not busy)
        self.slice_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
