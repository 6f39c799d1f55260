"""One whole-volume segmentation of the Segment panel: what it starts from, the worker's part, its labels.

A run is a snapshot taken as it starts (the case, the model version, the
layer's labels, the corrected slices, the brain mask), so neither what the
worker computes nor what a cancel puts back depends on what the user does
meanwhile. Its batches fill the Segmentation layer slice by slice, never over
a corrected slice; a cancel or a failure puts back the labels it started from.
The panel keeps the rest: the progress bar, the status line, the repaints.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..jobs import Progress
from ..workflow.suggest import slice_scores

if TYPE_CHECKING:
    from napari.layers import Labels

    from ..io.case import Case
    from ..workflow.state import ReviewState


@dataclass
class VolumeRun:
    """What a whole-volume segmentation started from: what it fills, and what a cancel puts back."""

    case: Case
    version_id: str
    device: str
    layer: Labels
    previous: np.ndarray  # the layer's labels before the run
    protected: set[int]  # corrected slices: never overwritten
    brain: np.ndarray | None
    last_prediction: np.ndarray | None

    @classmethod
    def starting_now(cls, state: ReviewState, layer: Labels, version_id: str, device: str) -> VolumeRun:
        """The snapshot of the state and the layer that a run starting now works from."""
        return cls(
            case=state.case, version_id=version_id, device=device, layer=layer,
            previous=layer.data.copy(), protected=set(state.corrected),
            brain=None if state.brain is None else state.brain.copy(),  # as corrected now, on the Brain mask layer
            last_prediction=state.prediction,  # never edited in place: the state replaces it
        )

    def segmenting(self, state: ReviewState, cancel) -> Generator[Progress, None, tuple]:
        """The worker thread's part: the segmenter inside the brain, then the uncertainty and the slices' scores."""
        from ..prepare.pipeline import strip

        segmenter = state.segmenter(self.version_id, self.device)
        # The model segments inside the brain: every image 0 outside it, before its normalisation.
        inside_brain = self.case if self.brain is None else strip(self.case, self.brain > 0)
        result = yield from segmenter.run(inside_brain, cancel=cancel)
        # Entropy and the suggestions' per-slice signs are heavy numpy work: here, off the GUI thread.
        uncertainty = result.entropy()
        last = self.last_prediction
        same_grid = last is not None and last.shape == result.labels.shape
        scores = slice_scores(result.probabilities, result.labels, previous_labels=last if same_grid else None)
        return result, uncertainty, scores

    def fill(self, batch) -> list[int]:
        """Write a batch of the model's slices into the layer, leaving the radiologist's corrected slices alone;
        the slices written."""
        written = [z for z in batch.z.tolist() if z not in self.protected]
        for z, labels in zip(batch.z.tolist(), batch.labels):
            if z not in self.protected:
                self.layer.data[z] = labels
        return written

    def accept(self, state: ReviewState, outcome: tuple):
        """Hand the worker's outcome to the state and show the labels it keeps; the segmenter's result."""
        result, uncertainty, scores = outcome
        labels = state.accept_prediction(
            result.labels, self.version_id, uncertainty=uncertainty, current_labels=self.layer.data,
            slice_scores=scores, probabilities=result.probabilities,
        )
        # In place: assigning layer.data makes napari rebuild the layer (a visible stall on big volumes).
        np.copyto(self.layer.data, labels)
        self.layer.refresh()
        return result

    def put_back(self) -> None:
        """Cancel (or failure) keeps the previous state: the labels as they were before this run."""
        self.layer.data = self.previous
