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

from ..io.case import Case
from .review import changed_slices
from .session import CorrectionStore, RestoredSession
from .suggest import SliceScores, slice_scores as score_slices, suggest

MAX_VIEWED = 200  # slices remembered as looked at (the most recent)

if TYPE_CHECKING:
    from ..inference.segmenter import Segmenter
    from ..models.registry import ModelRegistry, ModelVersion


class ReviewState:
    """One case under review.

    Args:
        registry: the model versions (default: the user's registry).
        sessions_root: where corrections are kept (default: the user's sessions folder).
    """

    case_opened = Signal(object, object)  # the case, and its RestoredSession (or None)
    prediction_changed = Signal()
    corrections_changed = Signal(object)  # the corrected slices
    model_changed = Signal(str)  # the active version changed, or a new version was stored
    model_selected = Signal(object)  # the ModelVersion chosen to segment and adapt with (or None)
    segmentation_requested = Signal(object)  # "segment the volume with this version id"
    device_changed = Signal(str)  # where the model runs: segmentation and adaptation alike

    def __init__(self, registry: ModelRegistry | None = None, sessions_root: Path | None = None) -> None:
        self._registry = registry
        self.sessions_root = sessions_root
        self.case: Case | None = None
        self.store: CorrectionStore | None = None
        self.prediction: np.ndarray | None = None
        self.uncertainty: np.ndarray | None = None
        self.slice_scores: SliceScores | None = None  # per-slice signs of error, for the suggestions
        self.prediction_model: str | None = None
        self.corrected: list[int] = []
        self.viewed: list[int] = []  # slices the user looked at, most recent last
        self.selected_version: ModelVersion | None = None
        self.device = "auto"
        self._segmenters: dict[tuple[str, str], Segmenter] = {}

    # --- models ------------------------------------------------------------------------

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from ..models.registry import ModelRegistry

            self._registry = ModelRegistry()
        return self._registry

    def segmenter(self, version_id: str, device: str = "auto") -> Segmenter:
        """A Segmenter for a model version (kept, so a second run is warm)."""
        key = (version_id, device)
        if key not in self._segmenters:
            from ..inference.segmenter import Segmenter

            loaded, _ = self.registry.load(version_id)
            self._segmenters.clear()  # one network in memory at a time
            self._segmenters[key] = Segmenter(
                loaded.model, config=loaded.config, preprocessing=loaded.preprocessing, device=device
            )
        return self._segmenters[key]

    def activate(self, version_id: str, force: bool = False) -> None:
        self.registry.activate(version_id, force=force)
        self.model_changed.emit(version_id)

    def rollback(self) -> ModelVersion:
        """Activate the active version's parent; returns it."""
        parent = self.registry.rollback()
        self.model_changed.emit(parent.id)
        return parent

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

    def open_case(self, case: Case) -> RestoredSession | None:
        """Make ``case`` current; returns what was saved for it earlier, if anything.

        Damaged session files are renamed aside; ``RestoredSession.problems`` says where.
        """
        self.case = case
        self.store = CorrectionStore(case, root=self.sessions_root)
        self.prediction = self.uncertainty = self.prediction_model = self.slice_scores = None
        self.corrected = []
        self.viewed = []
        restored = self.store.restore()
        if restored is not None:
            self.prediction = restored.prediction
            self.prediction_model = restored.model_id
            self.corrected = restored.corrected
        self.case_opened.emit(case, restored)
        return restored

    def accept_prediction(
        self,
        prediction: np.ndarray,
        model_id: str,
        uncertainty: np.ndarray | None = None,
        current_labels: np.ndarray | None = None,
        slice_scores: SliceScores | None = None,
    ) -> np.ndarray:
        """A new model output; returns the labels to show.

        The radiologist's corrected slices are never overwritten: they are
        carried over from ``current_labels`` and stay recorded as corrections
        against the new prediction. ``slice_scores`` (see
        ``suggest.slice_scores``: computed off the GUI thread from the
        probabilities) rank the suggestions; without them only the
        prediction's own signs (isolated components, changes since the last
        prediction) are used, computed here.
        """
        previous = self.prediction
        store = self._require_store()
        labels = prediction.astype(np.uint8, copy=True)
        if current_labels is not None and self.corrected:
            labels[self.corrected] = current_labels[self.corrected]
        self.corrected = store.start(prediction, model_id, labels)
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
        if self.uncertainty is not None and uncertainty_slice is not None:
            self.uncertainty[z] = uncertainty_slice
        if self.slice_scores is not None and probabilities_slice is not None:
            self.slice_scores.update_slice(z, score_slices(probabilities_slice[:, None], labels_slice[None]))
        self.prediction_changed.emit()

    def record_edit(self, labels: np.ndarray) -> list[int]:
        """The user painted: save the corrected slices at once (crash safety); returns them.

        Before any prediction, every painted slice counts as corrected.
        """
        self.corrected = self._require_store().save(labels)
        self.corrections_changed.emit(list(self.corrected))
        return self.corrected

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
