"""Segment: pick a model version and a device, segment the volume (or one slice) in the background.

The model rows (the versions, their provenance, Add model…) are ``model_choice``;
a whole-volume run's snapshot, worker and labels are ``volume_run``; what the
panel says is ``segment_wording``.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..errors import CaseError
from ..inference.mirroring import MIRROR_CHOICES
from ..jobs import Progress
from .jobs import Job, notify_error
from .model_choice import ModelChoice
from .segment_wording import MIRROR_TIP, flips_said, keep_uncertain_tip, legend_html, restored_text, uncertain_said
from .volume_run import VolumeRun

if TYPE_CHECKING:
    from ..io.case import Case
    from ..workflow.session import RestoredSession
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState
    from .layers import PluginLayers

DEVICES = ("auto", "cpu", "cuda", "mps")


class SegmentPanel(QGroupBox):
    """Chooses the model version (the state's selection) and fills the Segmentation layer with its output.

    Args:
        state: the review state.
        layers: the plugin's layers.
        settings: the persisted settings (the device).
    """

    def __init__(self, state: ReviewState, layers: PluginLayers, settings: Settings) -> None:
        super().__init__("2 · Segment")
        self.state, self.layers, self.settings = state, layers, settings
        self.job: Job | None = None
        self._last_refresh = 0.0

        self.models = ModelChoice(state, settings, parent=self, on_model_picked=self.add_model)
        self.model_box, self.add_model_button, self.provenance = (
            self.models.box, self.models.add_button, self.models.provenance)
        self._make_options(state, settings)
        self._make_run_controls()
        self._lay_out()
        state.model_changed.connect(lambda _: self.models.refresh())
        state.case_opened.connect(self._case_opened)
        state.segmentation_requested.connect(self._segmentation_requested)
        self.models.refresh()

    def _make_options(self, state: ReviewState, settings: Settings) -> None:
        """Device, flip averaging and the unsure spots: as last chosen (the settings), and told to the state."""
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        self.device_box.setCurrentText(settings.device if settings.device in DEVICES else "auto")
        self.device_box.currentTextChanged.connect(self._device_chosen)
        state.select_device(self.device_box.currentText())  # adaptation runs where segmentation does
        self.mirror_box = QComboBox()
        self.mirror_box.addItems(MIRROR_CHOICES)
        self.mirror_box.setToolTip(MIRROR_TIP)
        self.mirror_box.setCurrentText(settings.mirror if settings.mirror in MIRROR_CHOICES else "auto")
        self.mirror_box.currentTextChanged.connect(self._mirror_chosen)
        state.select_mirror(self.mirror_box.currentText())
        self.keep_uncertain_box = QCheckBox("Keep small unsure spots")
        self.keep_uncertain_box.setToolTip(keep_uncertain_tip())
        self.keep_uncertain_box.setChecked(settings.keep_uncertain)
        self.keep_uncertain_box.toggled.connect(self._keep_uncertain_chosen)
        state.select_keep_uncertain(settings.keep_uncertain)

    def _make_run_controls(self) -> None:
        """Segment the volume or this slice, cancel; the progress, the status line and the labels' legend."""
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
        self.status.setWordWrap(True)
        self.legend = QLabel(legend_html())
        self.legend.setWordWrap(True)

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Model", self.model_box)
        form.addRow("", self.add_model_button)
        form.addRow("", self.provenance)
        form.addRow("Device", self.device_box)
        form.addRow("Flip averaging", self.mirror_box)
        form.addRow("", self.keep_uncertain_box)
        # Two rows: three buttons side by side clip Cancel in a narrow dock.
        buttons = QGridLayout()
        buttons.addWidget(self.segment_button, 0, 0)
        buttons.addWidget(self.slice_button, 0, 1)
        buttons.addWidget(self.cancel_button, 1, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.legend)

    # --- options -------------------------------------------------------------------------

    def _device_chosen(self, device: str) -> None:
        self.settings.device = device
        self.settings.save_quietly()
        self.state.select_device(device)

    def _keep_uncertain_chosen(self, keep: bool) -> None:
        self.settings.keep_uncertain = keep
        self.settings.save_quietly()
        self.state.select_keep_uncertain(keep)

    def _mirror_chosen(self, mirror: str) -> None:
        self.settings.mirror = mirror
        self.settings.save_quietly()
        self.state.select_mirror(mirror)

    # --- following the state ------------------------------------------------------------

    def _case_opened(self, case: Case, restored: RestoredSession | None) -> None:
        self.cancel()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.resetFormat()
        if restored is None or restored.labels is None:
            self.status.setText("")
            return
        self.status.setText(restored_text(restored))
        # Not "0 %": the labels on screen are the saved session's.
        self.progress.setValue(1)
        self.progress.setFormat("restored session")

    def _segmentation_requested(self, version_id: str | None) -> None:
        if version_id:
            self.models.select(version_id)
        self.segment_volume()

    # --- segmentation -------------------------------------------------------------------

    def segment_volume(self) -> Job | None:
        """Segment the case in the background, filling the layer slice by slice; corrected slices are kept."""
        run = self._prepare_volume_run()
        if run is None:
            return None
        # Locked while the model writes into it: a stroke now would be mixed with half a prediction.
        run.layer.editable = False
        self._busy(True)
        self.job = Job(partial(run.segmenting, self.state), on_progress=partial(self._volume_progress, run),
                       on_done=partial(self._volume_done, run), on_cancelled=partial(self._volume_stopped, run, True),
                       on_failed=lambda _: self._volume_stopped(run, False),
                       on_finished=partial(self._volume_finished, run), what="segmentation")
        return self.job.start()

    def _prepare_volume_run(self) -> VolumeRun | None:
        """Stop a run in progress, keep the last stroke, and take what a new run starts from; None (said in the
        status line) when it cannot start."""
        state, version = self.state, self.state.selected_version
        if state.case is None or version is None:
            self.status.setText("Open a case first." if state.case is None else "No model to run.")
            return None
        problem = state.unprepared_problem()
        if problem is not None:
            # Never a silent mask over the skull: say what is wrong and what to do.
            self.status.setText("Not segmented: prepare the scan first (Case ▸ Prepare).")
            notify_error(CaseError(None, problem), "segmentation")
            return None
        self.cancel()
        self.layers.save_edits_now()  # a stroke just made is a correction: kept, not overwritten
        return VolumeRun.starting_now(state, self.layers.segmentation(), version.id, self.device_box.currentText())

    def _volume_progress(self, run: VolumeRun, report: Progress) -> None:
        if self.state.case is not run.case:
            return
        self.progress.setRange(0, max(report.total, 1))
        self.progress.setValue(report.done)
        self.status.setText(f"Segmenting… {report.done}/{report.total} slices, {report.elapsed:.1f} s")
        if report.data is not None and self._on_screen(run.fill(report.data)):
            run.layer.refresh()

    def _volume_done(self, run: VolumeRun, outcome: tuple) -> None:
        state = self.state
        if state.case is not run.case:
            return  # another case was opened meanwhile
        result = run.accept(state, outcome)
        self.progress.resetFormat()
        segmenter = state.segmenter(run.version_id, run.device)
        warning = getattr(segmenter, "spacing_warning", lambda _: "")(run.case)
        averaged, hint = flips_said(segmenter)
        self.status.setText(f"Segmented with {run.version_id} on {result.device}{averaged} in {result.seconds:.1f} s."
                            + uncertain_said(result) + hint + (f" Note: {warning}." if warning else ""))

    def _volume_stopped(self, run: VolumeRun, cancelled: bool) -> None:
        """Cancel (or failure) keeps the previous state: the labels as they were before this run."""
        if self.state.case is run.case and run.layer in self.layers.viewer.layers:
            run.put_back()
        self.progress.setValue(0)
        self.status.setText("Segmentation cancelled; the previous labels are kept." if cancelled
                            else "Segmentation failed; the previous labels are kept.")

    def _volume_finished(self, run: VolumeRun) -> None:
        run.layer.editable = True
        self._busy(False)

    def _on_screen(self, slices: list[int]) -> bool:
        """Whether new labels on these slices change what the viewer shows.

        A repaint costs 30-70 ms of the GUI thread under software OpenGL, so
        in the 2D view only the slice on screen is repainted as it arrives;
        napari reads the others from the filled array when the user scrolls.
        """
        if self.layers.viewer.dims.ndisplay != 2:
            now = time.monotonic()
            if now - self._last_refresh < 1.0:  # 3D: at most one repaint a second
                return False
            self._last_refresh = now
            return True
        return self.layers.current_slice() in slices

    def segment_current_slice(self) -> None:
        """Re-run the model on the slice on screen (fast enough to stay on the GUI thread)."""
        state, version = self.state, self.state.selected_version
        if state.case is None or version is None or state.prediction is None:
            self.status.setText("Segment the volume first.")
            return
        if state.unprepared_problem() is not None:
            self.status.setText("Not segmented: prepare the scan first (Case ▸ Prepare).")
            return
        z = self.layers.current_slice()
        if state.is_corrected(z):
            self.status.setText(f"Slice {z} holds your corrections; they are kept as they are.")
            return
        try:
            result = state.segmenter(version.id, self.device_box.currentText()).segment_slice(
                state.segmentation_case(), z)
        except Exception as error:
            notify_error(error, "segmenting the slice")
            return
        layer = self.layers.segmentation()
        layer.data[z] = result.labels
        layer.refresh()
        from ..workflow.review import entropy

        state.update_slice_prediction(z, result.labels, entropy(result.probabilities) / np.log(4), layer.data,
                                      probabilities_slice=result.probabilities)
        self.status.setText(f"Slice {z} segmented with {version.id}.")

    def cancel(self) -> None:
        if self.job is not None and self.job.is_running:
            self.job.cancel()

    def _busy(self, busy: bool) -> None:
        self.segment_button.setEnabled(not busy)
        self.slice_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    # --- bring your own model -----------------------------------------------------------
    # Add model… (model_choice) only picks the file: loading it is this panel's job, like a segmentation.

    def add_model(self, path: Path, trust: bool | None = None) -> Job | None:
        """Load a model in the background and list it (TorchScript only after the user said it is trusted)."""
        from ..models.external import model_kind
        from ..workflow.imported import load_model

        if model_kind(path) == "torchscript" and trust is None:
            answer = QMessageBox.question(
                self, "Load TorchScript?", f"{path.name} is TorchScript: loading it runs code stored in the file. "
                "Load it only if you trust where it came from. Load it?")
            trust = answer == QMessageBox.StandardButton.Yes
            if not trust:
                return None
        registry = self.state.registry

        def loading(cancel):
            yield Progress(0, 1, "loading the model")
            return load_model(path, registry, trust=bool(trust))

        def loaded(result) -> None:
            version = result.version or self.state.add_imported(result.imported)
            if result.version is not None:
                self.state.model_changed.emit(version.id)
            self.models.select(version.id)
            self.status.setText(f"Added {version.id}." + ("" if result.version else " It segments as it is; "
                                                            "it is not adapted (see the Adapt panel)."))

        self.status.setText(f"Loading {path.name}…")
        self.job = Job(loading, on_done=loaded, what=f"loading {path.name}")
        return self.job.start()
