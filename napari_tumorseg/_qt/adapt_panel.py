"""Adapt: learn from the corrected slices in the background; then compare, promote or roll back.

It adapts on the device the Segment panel chose (the review state's), so a
GPU that segments also adapts. The card after a run shows Dice before ->
after on every set, how much of the cumulative forgetting budget the
version has used since the original model, and the label-free check (the
slices the user looked at and left alone, the predicted tumour volume).
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .jobs import Job, notify_error

if TYPE_CHECKING:
    from ..adapt.report import AdaptationReport
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState
    from .layers import PluginLayers

METHOD_LABELS = {
    "active": "Active meta-tune (worst-learned first)",
    "passive": "Passive meta-tune (random order)",
    "naive": "Naive fine-tune",
    "dycnn": "Dy-CNN continual update",
}
SET_LABELS = {"corrections": "Corrected slices", "held_out": "Other slices of the case", "anchor": "Source anchor set",
              "memory": "Your earlier cases"}


class AdaptPanel(QGroupBox):
    """Adapts the state's selected model version to the corrected slices; then promote, roll back, re-segment.

    Args:
        state: the review state.
        layers: the plugin's layers (the labels as the radiologist left them).
        settings: the persisted settings (the method).
    """

    def __init__(self, state: ReviewState, layers: PluginLayers, settings: Settings) -> None:
        super().__init__("4 · Adapt")
        from ..adapt.config import default_config

        self.state, self.layers, self.settings = state, layers, settings
        self.job: Job | None = None
        self.report: AdaptationReport | None = None
        self.anchor_shape: tuple[int, int, int] | None = None  # tests use small anchor cases
        self._default_config = default_config

        self._make_method_controls(settings)
        self._make_advanced_controls()
        self._make_run_controls()
        self._lay_out()
        self._method_chosen()
        self._show_report_actions(False)
        self._refusal = ""  # why the chosen model cannot be adapted ("" when it can)
        state.case_opened.connect(lambda *_: self.cancel())
        state.model_selected.connect(self._model_selected)
        self._model_selected(state.selected_version)

    def _make_method_controls(self, settings: Settings) -> None:
        """The method and its main settings (filled with the method's defaults)."""
        self.method_box = QComboBox()
        for key, text in METHOD_LABELS.items():
            self.method_box.addItem(text, key)
        methods = list(METHOD_LABELS)
        self.method_box.setCurrentIndex(methods.index(settings.method) if settings.method in methods else 0)
        self.method_box.currentIndexChanged.connect(self._method_chosen)
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, 500)
        self.lr_box = _float_box(1e-5, 1e-1, 5)
        self.replay_box = QCheckBox("Replay source slices (limits forgetting)")

    def _make_advanced_controls(self) -> None:
        """The advanced settings, folded away until asked for."""
        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced ▸")
        self.advanced_button.setCheckable(True)
        self.advanced = QWidget()
        self.inner_lr_box = _float_box(1e-5, 1e-1, 5)
        self.first_order_box = QCheckBox("First-order MAML (faster)")
        self.meta_batch_box = QSpinBox()
        self.meta_batch_box.setRange(1, 16)
        self.tolerance_box = _float_box(0.0, 0.5, 3)
        self.budget_box = _float_box(0.0, 0.5, 3)
        self.force_box = QCheckBox("Activate even if the guard rejects it")
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 1_000_000)
        advanced_form = QFormLayout(self.advanced)
        advanced_form.addRow("Inner step α", self.inner_lr_box)
        advanced_form.addRow("", self.first_order_box)
        advanced_form.addRow("Meta batch", self.meta_batch_box)
        advanced_form.addRow("Guard tolerance", self.tolerance_box)
        advanced_form.addRow("Budget since original", self.budget_box)
        advanced_form.addRow("", self.force_box)
        advanced_form.addRow("Seed", self.seed_box)
        self.advanced.setVisible(False)
        self.advanced_button.toggled.connect(self._toggle_advanced)

    def _make_run_controls(self) -> None:
        """Adapt and cancel, progress and status, and what to do with the new version."""
        self.adapt_button = QPushButton("Adapt model")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.adapt_button.clicked.connect(self.adapt)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.card = QLabel()
        self.card.setWordWrap(True)
        self.promote_button = QPushButton("Promote")
        self.rollback_button = QPushButton("Roll back")
        self.resegment_button = QPushButton("Re-segment with new model")
        self.promote_button.clicked.connect(self.promote)
        self.rollback_button.clicked.connect(self.rollback)
        self.resegment_button.clicked.connect(self._resegment)

    def _lay_out(self) -> None:
        """The panel: main settings, advanced ones, the run, its report."""
        form = QFormLayout()
        form.addRow("Method", self.method_box)
        form.addRow("Steps", self.steps_box)
        form.addRow("Learning rate β", self.lr_box)
        form.addRow("", self.replay_box)
        run_row = QHBoxLayout()
        run_row.addWidget(self.adapt_button)
        run_row.addWidget(self.cancel_button)
        after_row = QHBoxLayout()
        for button in (self.promote_button, self.rollback_button, self.resegment_button):
            after_row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced)
        layout.addLayout(run_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.card)
        layout.addLayout(after_row)

    # --- settings -----------------------------------------------------------------------

    def method(self) -> str:
        return self.method_box.currentData()

    def _method_chosen(self) -> None:
        """Fill the boxes with the chosen method's defaults."""
        method = self.method()
        defaults = self._default_config(method)
        self.steps_box.setValue(defaults.steps)
        self.lr_box.setValue(defaults.lr)
        self.inner_lr_box.setValue(defaults.inner_lr)
        self.first_order_box.setChecked(defaults.first_order)
        self.meta_batch_box.setValue(defaults.meta_batch_size)
        self.tolerance_box.setValue(defaults.tolerance)
        self.budget_box.setValue(defaults.budget)
        self.seed_box.setValue(defaults.seed)
        self._default_replay = defaults.replay or 8
        self.replay_box.setChecked(defaults.replay > 0)
        meta = method in ("active", "passive")
        for widget in (self.inner_lr_box, self.first_order_box, self.meta_batch_box):
            widget.setEnabled(meta)
        self.settings.method = method
        self.settings.save_quietly()

    def config(self):
        return self._default_config(
            self.method(),
            steps=self.steps_box.value(),
            lr=self.lr_box.value(),
            inner_lr=self.inner_lr_box.value(),
            first_order=self.first_order_box.isChecked(),
            meta_batch_size=self.meta_batch_box.value(),
            tolerance=self.tolerance_box.value(),
            budget=self.budget_box.value(),
            seed=self.seed_box.value(),
            replay=self._default_replay if self.replay_box.isChecked() else 0,
        )

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setText("Advanced ▾" if shown else "Advanced ▸")

    # --- running ------------------------------------------------------------------------

    def adapt(self) -> Job | None:
        from ..workflow.adaptation import adapt_to_review

        state, version = self.state, self.state.selected_version
        layer = self.layers.segmentation(create=False)
        if state.case is None or version is None or layer is None:
            self.status.setText("Open a case and segment it first.")
            return None
        self.layers.save_edits_now()
        if not state.corrected:
            self.status.setText("Correct at least one slice first (paint on the Segmentation layer).")
            return None
        self.cancel()
        config, labels = self.config(), layer.data.copy()
        force, anchor_shape = self.force_box.isChecked(), self.anchor_shape
        device, viewed = state.device, list(state.viewed)

        def adapting(cancel):
            return (yield from adapt_to_review(state, labels, version.id, config, force=force,
                                               anchor_shape=anchor_shape, cancel=cancel, device=device, viewed=viewed))

        self._busy(True)
        self._show_report_actions(False)
        self.card.setText("")
        self.status.setText(f"Preparing {METHOD_LABELS[config.method].lower()} on {len(state.corrected)} slice(s) "
                            f"({device})…")
        self.job = Job(
            adapting,
            on_progress=self._progress,
            on_done=self._finished,
            on_cancelled=lambda: self.status.setText("Adaptation cancelled; the active model is unchanged."),
            on_failed=lambda _: self.status.setText("Adaptation failed; the active model is unchanged."),
            on_finished=lambda: self._busy(False),
            what="adaptation",
        )
        return self.job.start()

    def _progress(self, report) -> None:
        self.progress.setRange(0, max(report.total, 1))
        self.progress.setValue(report.done)
        loss = "" if math.isnan(report.loss) else f", loss {report.loss:.3f}"
        self.status.setText(f"{report.phase}: {report.done}/{report.total}{loss}, about {report.eta:.0f} s left")

    def _finished(self, outcome) -> None:
        self.report = outcome.report
        self.card.setText(report_card_html(outcome.report))
        self.status.setText(f"New version {outcome.report.version_id} (adapted on {outcome.report.where}): "
                            f"{outcome.report.reason}")
        self.state.model_changed.emit(outcome.report.version_id or "")
        self._show_report_actions(True)
        scroll_into_view(self.card)

    def _resegment(self) -> None:
        self.state.request_segmentation(self.report.version_id if self.report is not None else None)

    def promote(self) -> None:
        if self.report is None or not self.report.version_id:
            return
        try:
            self.state.activate(self.report.version_id, force=True)
            self.status.setText(f"{self.report.version_id} is now the active model.")
        except Exception as error:
            notify_error(error, "promoting the model")

    def rollback(self) -> None:
        try:
            parent = self.state.rollback()
            self.status.setText(f"Rolled back: {parent.id} is the active model again.")
        except Exception as error:
            notify_error(error, "rolling back")

    def cancel(self) -> None:
        if self.job is not None and self.job.is_running:
            self.job.cancel()

    def _busy(self, busy: bool) -> None:
        self.adapt_button.setEnabled(not busy and not self._refusal)
        self.cancel_button.setEnabled(busy)

    def _model_selected(self, version) -> None:
        """An imported model (ONNX, TorchScript, MONAI) segments as it is: Adapt is off, and says why."""
        from ..workflow.imported import adaptable

        can, reason = adaptable(version)
        self._refusal = "" if can or version is None else reason
        running = self.job is not None and self.job.is_running
        self.adapt_button.setEnabled(not running and not self._refusal)
        self.adapt_button.setToolTip(f"Not available: {self._refusal}" if self._refusal else
                                     "Learn from the corrected slices (a new version; the guard decides)")
        if self._refusal:
            self.status.setText(f"{version.id} cannot be adapted: {self._refusal}.")
        elif self.status.text().endswith("cannot be adapted") or " cannot be adapted: " in self.status.text():
            self.status.setText("")

    def _show_report_actions(self, shown: bool) -> None:
        for button in (self.promote_button, self.rollback_button, self.resegment_button):
            button.setVisible(shown)


def report_card_html(report: AdaptationReport) -> str:
    """Before -> after Dice per evaluation set, the budget used, the label-free check, the guard's verdict."""
    from ..adapt.report import absent_class_line, budget_line, label_free_line

    rows = []
    for name, scores in report.dice.items():
        before, after = scores.before.get("mean", float("nan")), scores.after.get("mean", float("nan"))
        arrow = "▲" if after > before + 1e-3 else "▼" if after < before - 1e-3 else "="
        rows.append(
            f"<tr><td>{SET_LABELS.get(name, name)} ({scores.slices})</td>"
            f"<td align=right>{before:.3f}</td><td align=right>{after:.3f}</td><td>{arrow}</td></tr>"
        )
    # The guard's own sentence: which check decided (anchor or the case's other slices), with numbers.
    reason = html.escape(report.reason)
    if report.status == "rejected":
        reason = reason.replace("rejected", "<b>rejected</b>", 1)
    elif report.details.get("step", 1.0) < 1.0:  # the full step was refused; part of it was kept
        reason = reason.replace("stepped back", "<b>stepped back</b>", 1)
    extra = ""
    budget = budget_line(report.lineage) if report.lineage else ""
    if budget:
        extra += f"<br>Forgetting budget: {html.escape(budget)}"
    if report.label_free is not None:
        line = html.escape(label_free_line(report.label_free)).replace("warning:", "<b>warning:</b>")
        extra += f"<br>Check {line}"
    kept = absent_class_line(report.details)
    if kept:
        extra += f"<br>{html.escape(kept[0].upper() + kept[1:])}"
    return (
        "<table><tr><th align=left>Dice</th><th>before</th><th>after</th><th></th></tr>"
        + "".join(rows)
        + f"</table>{extra}<br>Guard: {reason}"
    )


def scroll_into_view(widget: QWidget) -> None:
    """Bring a widget into view in the scroll area around it (after a long job, its result is what the user wants)."""
    area = widget.parentWidget()
    while area is not None and not isinstance(area, QScrollArea):
        area = area.parentWidget()
    if area is None or area.widget() is None:
        return
    # Vertical only: ensureWidgetVisible would also shift the panels sideways.
    top = widget.mapTo(area.widget(), widget.rect().topLeft()).y()
    area.verticalScrollBar().setValue(top)


def _float_box(low: float, high: float, decimals: int) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setSingleStep(10 ** -(decimals - 1))
    return box
