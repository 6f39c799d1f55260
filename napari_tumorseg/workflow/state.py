"""What the review panels share, without Qt: the case, the model's output, the corrections, the chosen model.

The review state owns the workflow's facts and emits a signal (psygnal, which
needs no Qt) for each change; the napari dock's panels listen to these
signals and never call each other, so each panel is a thin view and the logic
is testable without a viewer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from ..errors import PromptError
from ..io.case import Case
from ..prompts.edits import LabelEdit, edit_between
from .history import EditHistory
from .review import changed_slices
from .session import CorrectionStore, RestoredSession
from .writer import SessionWriter
from .suggest import SliceScores, suggest
from .suggest import slice_scores as score_slices

MAX_VIEWED = 200  # slices remembered as looked at (the most recent)

if TYPE_CHECKING:
    from ..inference.segmenter import Segmenter
    from ..models.external import ImportedModel
    from ..models.registry import ModelRegistry, ModelVersion
    from ..prepare.detect import Findings
    from ..prepare.pipeline import Preparation


class ReviewState:
    """One case under review.

    Args:
        registry: the model versions (default: the user's registry).
        sessions_root: where corrections are kept (default: the user's sessions folder).
        writer: who writes the session's files (default: at once; the viewer writes them in the
            background, see ``workflow.writer``).
    """

    case_opened = Signal(object, object)  # the case, and its RestoredSession (or None)
    prediction_changed = Signal()
    corrections_changed = Signal(object)  # the corrected slices
    model_changed = Signal(str)  # the active version changed, or a new version was stored
    model_selected = Signal(object)  # the ModelVersion chosen to segment and adapt with (or None)
    segmentation_requested = Signal(object)  # "segment the volume with this version id"
    device_changed = Signal(str)  # where the model runs: segmentation and adaptation alike
    labels_edited = Signal(object)  # a LabelEdit the state applied (a prompt, an undo, a redo): show it
    history_changed = Signal()  # what undo and redo would do now
    preparation_changed = Signal(object)  # the case's Preparation (or None), after case_opened

    def __init__(self, registry: ModelRegistry | None = None, sessions_root: Path | None = None,
                 writer: SessionWriter | None = None) -> None:
        self._registry = registry
        self.sessions_root = sessions_root
        self.writer = writer or SessionWriter()
        self.case: Case | None = None
        self.store: CorrectionStore | None = None
        self.prediction: np.ndarray | None = None
        self.uncertainty: np.ndarray | None = None
        self.slice_scores: SliceScores | None = None  # per-slice signs of error, for the suggestions
        self.prediction_model: str | None = None
        self.corrected: list[int] = []
        self.viewed: list[int] = []  # slices the user looked at, most recent last
        self.labels: np.ndarray | None = None  # the labels as last saved: what edits are measured from
        self.probabilities: np.ndarray | None = None  # the last volume prediction's (4, Z, Y, X), if kept
        self.history: EditHistory | None = None
        self.selected_version: ModelVersion | None = None
        self.imported: dict[str, tuple[ModelVersion, ImportedModel]] = {}  # the user's own models, by id
        self.device = "auto"
        self.mirror = "auto"  # flip averaging of our networks (inference/mirroring.py)
        self.keep_uncertain = False  # keep the small uncertain components the clean-up removes (postprocess.py)
        # The Prepare step: how the case was prepared, the brain the tumour model runs inside (the
        # array the Brain mask layer shows and the user corrects), and what an unprepared scan still needs.
        self.preparation: Preparation | None = None
        self.brain: np.ndarray | None = None
        self.findings: Findings | None = None
        self._segmenters: dict[tuple[str, str, str, bool], Segmenter] = {}

    # --- models ------------------------------------------------------------------------

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from ..models.registry import ModelRegistry

            self._registry = ModelRegistry()
        return self._registry

    def segmenter(self, version_id: str, device: str = "auto") -> Segmenter:
        """A Segmenter for a model version or an imported model (kept, so a second run is warm)."""
        key = (version_id, device, self.mirror, self.keep_uncertain)
        if key not in self._segmenters:
            from ..inference.segmenter import Segmenter

            self._segmenters.clear()  # one network in memory at a time
            if version_id in self.imported:
                from ..inference.external import ImportedSegmenter

                self._segmenters[key] = ImportedSegmenter(self.imported[version_id][1], device=device)  # type: ignore[assignment]
                return self._segmenters[key]
            loaded, _ = self.registry.load(version_id)
            self._segmenters[key] = Segmenter(
                loaded.model, config=loaded.config, preprocessing=loaded.preprocessing, device=device,
                mirror=self.mirror, **({"uncertain_max_ml": 0.0} if self.keep_uncertain else {}),
            )
        return self._segmenters[key]

    def add_imported(self, imported: ImportedModel) -> ModelVersion:
        """List a model the user brought (ONNX, TorchScript, MONAI bundle) beside the registry's versions."""
        from .imported import imported_version

        version = imported_version(imported, set(self.imported))
        self.imported[version.id] = (version, imported)
        self.model_changed.emit(version.id)
        return version

    def imported_versions(self) -> list[ModelVersion]:
        return [version for version, _ in self.imported.values()]

    def activate(self, version_id: str, force: bool = False) -> None:
        self.registry.activate(version_id, force=force)
        self.model_changed.emit(version_id)

    def rollback(self) -> ModelVersion:
        """Activate the active version's parent; returns it."""
        parent = self.registry.rollback()
        self.model_changed.emit(parent.id)
        return parent

    def select_mirror(self, mirror: str) -> None:
        """The flips our networks' softmax is averaged over (the Segment panel's choice): the next segmentation's."""
        from ..inference.mirroring import resolve_mirror

        resolve_mirror(mirror, "cpu")  # a ValueError for an unknown name, now
        self.mirror = mirror

    def select_keep_uncertain(self, keep: bool) -> None:
        """Whether the next segmentation keeps the small uncertain components (the Segment panel's choice)."""
        self.keep_uncertain = bool(keep)

    def select_device(self, device: str) -> None:
        """Where the model runs ("auto", "cpu", "cuda", ...): the Segment panel's choice, used to adapt too."""
        self.device = device
        self.device_changed.emit(device)

    def select_model(self, version: ModelVersion | None) -> None:
        """The version the user chose to segment and adapt with."""
        self.selected_version = version
        self.model_selected.emit(version)

    def request_segmentation(self, version_id: str | None = None) -> None:
        """Ask for the volume to be segmented again (with ``version_id``, else the selected version)."""
        self.segmentation_requested.emit(version_id)

    # --- the case and its labels ----------------------------------------------------------

    def open_case(self, case: Case, *, preparation: Preparation | None = None, brain: np.ndarray | None = None,
                  findings: Findings | None = None) -> RestoredSession | None:
        """Make ``case`` current; returns what was saved for it earlier, if anything.

        Damaged session files are renamed aside; ``RestoredSession.problems`` says where.

        Args:
            case: the case (a prepared one lies on its working grid, the head kept).
            preparation: how it was prepared, if it was.
            brain: the brain mask the tumour model runs inside (a prepared case with its skull).
            findings: what the scan needs; an unprepared scan that needs preparing is not segmented.
        """
        self.preparation, self.findings = preparation, findings
        self.brain = None if brain is None else np.asarray(brain, dtype=np.uint8)
        self.writer.flush()  # what the last case asked to be written is on disk before a session is read
        self.case = case
        self.store = CorrectionStore(case, root=self.sessions_root, writer=self.writer)
        self.prediction = self.uncertainty = self.prediction_model = self.slice_scores = self.probabilities = None
        self.corrected = []
        self.viewed = []
        restored = self.store.restore()
        if restored is not None:
            self.prediction = restored.prediction
            self.prediction_model = restored.model_id
            self.corrected = restored.corrected
        has_labels = restored is not None and restored.labels is not None
        self.labels = restored.labels.copy() if has_labels else np.zeros(case.shape, np.uint8)  # type: ignore[union-attr]
        self.history = EditHistory(self.store.folder / "history", case.shape, writer=self.writer)
        problems = self.history.restore(self.labels)
        if restored is not None:
            restored.problems.extend(problems)
            restored.undo_steps = self.history.position
        elif problems:
            restored = RestoredSession(None, None, None, [], problems)
        self.case_opened.emit(case, restored)
        self.history_changed.emit()
        self.preparation_changed.emit(preparation)
        return restored

    def unprepared_problem(self) -> str | None:
        """The one line saying why this scan must be prepared before the tumour model sees it, or None."""
        if self.preparation is None and self.findings is not None and self.findings.needs_preparation:
            return self.findings.summary()
        return None

    def segmentation_case(self) -> Case | None:
        """What the tumour model segments: the case, every image 0 outside the (corrected) brain mask if there is one."""
        if self.case is None or self.brain is None:
            return self.case
        from ..prepare.pipeline import strip

        return strip(self.case, self.brain > 0)

    def accept_prediction(
        self,
        prediction: np.ndarray,
        model_id: str,
        uncertainty: np.ndarray | None = None,
        current_labels: np.ndarray | None = None,
        slice_scores: SliceScores | None = None,
        probabilities: np.ndarray | None = None,
    ) -> np.ndarray:
        """A new model output; returns the labels to show.

        The radiologist's corrected slices are never overwritten: they are
        carried over from ``current_labels`` and stay recorded as corrections
        against the new prediction. ``slice_scores`` (see
        ``suggest.slice_scores``: computed off the GUI thread from the
        probabilities) rank the suggestions; without them only the
        prediction's own signs (isolated components, changes since the last
        prediction) are used, computed here.
        ``probabilities`` (the model's ``(4, Z, Y, X)``) let the grow prompt
        follow the model.
        """
        previous = self.prediction
        store = self._require_store()
        labels = prediction.astype(np.uint8, copy=True)
        if current_labels is not None and self.corrected:
            labels[self.corrected] = current_labels[self.corrected]
        self.corrected = store.start(prediction, model_id, labels)
        self.labels = labels.copy()
        self.probabilities = probabilities
        self.prediction, self.uncertainty, self.prediction_model = store.prediction, uncertainty, model_id
        if slice_scores is None:
            same_grid = previous is not None and previous.shape == prediction.shape
            slice_scores = score_slices(None, self.prediction, previous_labels=previous if same_grid else None)
        self.slice_scores = slice_scores
        self.prediction_changed.emit()
        self.corrections_changed.emit(list(self.corrected))
        return labels

    def update_slice_prediction(
        self,
        z: int,
        labels_slice: np.ndarray,
        uncertainty_slice: np.ndarray | None,
        current_labels: np.ndarray,
        probabilities_slice: np.ndarray | None = None,
    ) -> None:
        """A fresh prediction of one uncorrected slice (``Segment this slice``).

        ``current_labels`` must already show ``labels_slice`` at ``z``; the
        other corrected slices stay corrections against the updated prediction.
        ``probabilities_slice`` ((4, Y, X)) updates the slice's suggestion score.
        """
        store = self._require_store()
        if self.prediction is None:
            raise RuntimeError("segment the volume first")
        if z in self.corrected:
            raise ValueError(f"slice {z} holds corrections; they are never overwritten")
        prediction = self.prediction.copy()
        prediction[z] = labels_slice
        self.corrected = store.start(prediction, self.prediction_model or "unknown", current_labels)
        self.prediction = store.prediction
        self.labels = np.array(current_labels, dtype=np.uint8, copy=True)
        if self.probabilities is not None and probabilities_slice is not None:
            if self.probabilities.dtype == np.uint8:
                probabilities_slice = np.rint(np.clip(probabilities_slice, 0, 1) * 255)
            self.probabilities[:, z] = probabilities_slice
        if self.uncertainty is not None and uncertainty_slice is not None:
            self.uncertainty[z] = uncertainty_slice
        if self.slice_scores is not None and probabilities_slice is not None:
            self.slice_scores.update_slice(z, score_slices(probabilities_slice[:, None], labels_slice[None]))
        self.prediction_changed.emit()

    def record_edit(self, labels: np.ndarray, what: str = "brush stroke") -> list[int]:
        """The user painted: save the corrected slices at once (crash safety) and the edit as an undo step;
        returns the corrected slices.

        Before any prediction, every painted slice counts as corrected.
        """
        store = self._require_store()
        edit = edit_between(self.labels, labels, what) if self.labels is not None else None
        if edit is None or edit.empty:
            self.corrected = store.save(labels)
            self.corrections_changed.emit(list(self.corrected))
            return self.corrected
        return self._save_edit(edit)

    def apply_edit(self, edit: LabelEdit) -> list[int]:
        """A prompt's edit: applied to the labels, saved, counted as a correction and an undo step.

        ``labels_edited`` tells the viewer to show it. Returns the corrected slices.
        """
        if edit.empty:
            return self.corrected
        self._require_labels()
        return self._save_edit(edit, show=True)

    def undo(self) -> LabelEdit:
        """Undo the newest step; returns the edit applied (its inverse). Raises PromptError when there is none
        or it no longer fits the labels (those voxels changed since: the older steps are then forgotten)."""
        history, labels = self._require_history(), self._require_labels()
        if not history.can_undo:
            raise PromptError("nothing to undo")
        step = history.peek_undo()
        if not step.is_applied(labels):
            history.cut_below()
            self.history_changed.emit()
            raise PromptError(f"cannot undo '{step.what}': its voxels were changed since; older steps are cleared")
        return self._move(step.inverse(), -1)

    def redo(self) -> LabelEdit:
        """Redo the step undone last; returns the edit applied."""
        history, labels = self._require_history(), self._require_labels()
        if not history.can_redo:
            raise PromptError("nothing to redo")
        step = history.peek_redo()
        if not step.is_unapplied(labels):
            history.drop_redo()
            self.history_changed.emit()
            raise PromptError(f"cannot redo '{step.what}': its voxels were changed since")
        return self._move(step, +1)

    def _move(self, edit: LabelEdit, step: int) -> LabelEdit:
        edit.apply(self.labels)  # type: ignore[arg-type]
        self.corrected = self._require_store().save(self.labels)  # type: ignore[arg-type]
        self.history.moved(step)  # type: ignore[union-attr]
        self._announce(edit)
        return edit

    def _save_edit(self, edit: LabelEdit, show: bool = False) -> list[int]:
        """The write order the history's crash safety relies on: the step, the corrections, the index."""
        history = self._require_history()
        entry = history.stage(edit)
        edit.apply(self.labels)  # type: ignore[arg-type]
        self.corrected = self._require_store().save(self.labels)  # type: ignore[arg-type]
        history.commit(entry)
        if show:
            self._announce(edit)
        else:
            self.corrections_changed.emit(list(self.corrected))
            self.history_changed.emit()
        return self.corrected

    def _announce(self, edit: LabelEdit) -> None:
        self.labels_edited.emit(edit)
        self.corrections_changed.emit(list(self.corrected))
        self.history_changed.emit()

    def _require_labels(self) -> np.ndarray:
        if self.labels is None:
            raise RuntimeError("open a case first")
        return self.labels

    def _require_history(self) -> EditHistory:
        if self.history is None:
            raise RuntimeError("open a case first")
        return self.history

    def is_corrected(self, z: int) -> bool:
        return z in self.corrected

    def mark_viewed(self, z: int) -> None:
        """The user looked at slice ``z`` (the label-free check compares such slices before/after adapting)."""
        z = int(z)
        if self.viewed and self.viewed[-1] == z:
            return
        if z in self.viewed:
            self.viewed.remove(z)
        self.viewed.append(z)
        del self.viewed[:-MAX_VIEWED]

    def suggestions(self, k: int) -> list[tuple[int, str]]:
        """The slices most likely to hold something wrong, not yet corrected, with the reason for each."""
        if self.slice_scores is None:
            return []
        return suggest(self.slice_scores, k, exclude=self.corrected)

    def changed_against_prediction(self, labels: np.ndarray) -> list[int]:
        return [] if self.prediction is None else changed_slices(labels, self.prediction)

    def _require_store(self) -> CorrectionStore:
        if self.store is None:
            raise RuntimeError("open a case first")
        return self.store
