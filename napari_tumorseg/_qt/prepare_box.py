"""The Prepare step inside the Case panel: reference sequence, Prepare / Cancel, progress, the quality figure.

Scans straight from the scanner (sequences on different grids or apart, the
skull still there, thick slices) are prepared in the background by the core's
long job (``prepare.pipeline.prepare_sources``); the prepared case opens only
when the job ends, so Cancel leaves the case on screen as it was. The box
follows the review state: it shows what the open case's preparation found
and did, and the registration quality of every sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ..io.case import DISPLAY_NAMES, MODALITIES
from .jobs import Job

if TYPE_CHECKING:
    from ..io.assemble import SourceSet
    from ..prepare.pipeline import Preparation, PreparedCase
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState


class PrepareBox(QWidget):
    """Prepare a raw scan: choose the reference, run, cancel, see the quality figures.

    Args:
        state: the review state (its preparation is what the box shows).
        settings: the persisted settings (whether scans are prepared automatically).
        on_prepared: called on the GUI thread with the PreparedCase (the Case panel opens it).
    """

    def __init__(self, state: ReviewState, settings: Settings, on_prepared: Callable[[PreparedCase], None]) -> None:
        super().__init__()
        self.state, self.settings, self.on_prepared = state, settings, on_prepared
        self.sources: SourceSet | None = None
        self.job: Job | None = None
        self.auto_box = QCheckBox("Prepare scans from the scanner automatically")
        self.auto_box.setChecked(settings.auto_prepare)
        self.auto_box.setToolTip("Co-register the sequences, extract the brain and bring thick slices to 1 mm when "
                                 "a scan needs it; otherwise such a scan is opened with a warning and not segmented")
        self.auto_box.toggled.connect(self._auto_toggled)
        self.reference_box = QComboBox()
        self.reference_box.setToolTip("The sequence the others are registered onto; the mask is exported on its grid")
        self.prepare_button = QPushButton("Prepare")
        self.cancel_button = QPushButton("Cancel")
        self.prepare_button.clicked.connect(lambda: self.prepare())
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.quality = QLabel("")
        self.quality.setWordWrap(True)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(self.auto_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reference_box, 1)
        buttons.addWidget(self.prepare_button)
        buttons.addWidget(self.cancel_button)
        form.addRow("Reference", buttons)
        form.addRow(self.progress)
        form.addRow(self.quality)
        self._busy(False)
        state.preparation_changed.connect(self._preparation_changed)

    @property
    def automatic(self) -> bool:
        return self.auto_box.isChecked()

    def set_sources(self, sources: SourceSet, reference: str) -> None:
        """The raw scan the Prepare button works on, and its reference sequence (chosen by the checks)."""
        self.sources = sources
        self.reference_box.blockSignals(True)
        self.reference_box.clear()
        for key in MODALITIES:
            if key in sources.volumes:
                self.reference_box.addItem(DISPLAY_NAMES[key], key)
        self.reference_box.setCurrentIndex(max(self.reference_box.findData(reference), 0))
        self.reference_box.blockSignals(False)
        self._busy(False)

    def prepare(self, reference: str | None = None) -> Job | None:
        """Prepare the raw scan in the background; the prepared case opens when it ends."""
        from ..prepare.pipeline import PrepareOptions, prepare_sources

        if self.sources is None:
            self.quality.setText("Open a scan first.")
            return None
        self.cancel()
        sources = self.sources
        options = PrepareOptions(reference=reference or self.reference_box.currentData(), brain="auto")

        def on_done(prepared) -> None:
            self.on_prepared(prepared)

        def on_stopped(message: str) -> None:
            self.progress.setValue(0)
            self.quality.setText(message)

        self._busy(True)
        self.job = Job(lambda cancel: prepare_sources(sources, options, cancel), on_progress=self.show_progress,
                       on_done=on_done, on_cancelled=lambda: on_stopped("Preparation cancelled; nothing changed."),
                       on_failed=lambda _: on_stopped("Preparation failed; nothing changed."),
                       on_finished=lambda: self._busy(False), what="preparing the scan")
        return self.job.start()

    def show_progress(self, report) -> None:
        """A preparation's progress (this box's own, or the Case panel's when it prepares a scan as it opens)."""
        self.progress.setRange(0, max(report.total, 1))
        self.progress.setValue(report.done)
        self.quality.setText(f"{report.phase.capitalize()}… {report.detail}")

    def track(self, job: Job) -> None:
        """Follow a job that prepares (opening with automatic preparation): Cancel stops it."""
        self.job = job
        self._busy(True)
        job.worker.finished.connect(lambda: self._busy(False))

    def cancel(self) -> None:
        if self.job is not None and self.job.is_running:
            self.job.cancel()

    def _auto_toggled(self, checked: bool) -> None:
        self.settings.auto_prepare = bool(checked)
        self.settings.save_quietly()

    def _busy(self, busy: bool) -> None:
        self.prepare_button.setEnabled(not busy and self.sources is not None)
        self.reference_box.setEnabled(not busy and self.sources is not None)
        self.cancel_button.setEnabled(busy)
        if not busy and self.job is not None and self.job.cancelled:
            self.progress.setValue(0)
            self.quality.setText("Preparation cancelled; nothing changed.")

    def _preparation_changed(self, preparation: Preparation | None) -> None:
        self.progress.setValue(0)
        problem = self.state.unprepared_problem()
        if preparation is not None:
            self.quality.setText(describe(preparation, self.state))
        elif problem is not None:
            self.quality.setText(f"<span style='color:#e0a000'>Not prepared:</span> {problem}")
        else:
            self.quality.setText("")


def describe(preparation: Preparation, state: ReviewState) -> str:
    """Rich text: what was done, each sequence's registration quality, the brain's volume."""
    import numpy as np

    lines = [f"Prepared onto <b>{DISPLAY_NAMES[preparation.reference]}</b>."]
    lines += [step for step in preparation.steps]
    lines.append(f"Registration quality (normalised mutual information, before → after): {preparation.quality_line()}")
    if state.brain is not None:
        millilitres = float(state.brain.sum() * np.prod(preparation.working.spacing)) / 1000.0
        lines.append(f"Brain mask: {millilitres:.0f} ml ({preparation.brain_source}); correct it on the "
                     "<i>Brain mask</i> layer, the model segments inside it.")
    return "<br>".join(lines)
