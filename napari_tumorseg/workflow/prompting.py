"""The correction prompts on the case under review (no Qt): which slices, which images, which model.

Each function reads what it needs from the review state and a copy of its
labels (so it may run off the GUI thread while the viewer stays live) and
returns the edit; ``ReviewState.apply_edit`` then applies, saves and records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PromptError
from ..prompts import LabelEdit, fill_between, grow_lesion, propagate, remove_lesion

if TYPE_CHECKING:
    from .state import ReviewState

TOOLS = ("remove", "grow")


def _case(state: ReviewState):
    if state.case is None:
        raise PromptError("open a case first")
    return state.case


def remove_at(state: ReviewState, labels: np.ndarray, point: Sequence[float]) -> LabelEdit:
    """Remove the lesion under the click, in 3D."""
    return remove_lesion(labels, point, _case(state).geometry.spacing)


def grow_at(state: ReviewState, labels: np.ndarray, point: Sequence[float], label: int) -> LabelEdit:
    """Grow a missed lesion of class ``label`` from the click, in 3D (the model's probabilities when kept)."""
    case = _case(state)
    probabilities = state.probabilities
    if probabilities is not None and probabilities.shape[1:] != labels.shape:
        probabilities = None
    return grow_lesion(labels, point, label, images=case.images, spacing=case.geometry.spacing,
                       probabilities=probabilities)


def fill_pair(corrected: Sequence[int], z: int) -> tuple[int, int]:
    """The two corrected slices to fill between, around slice ``z``.

    On an uncorrected slice: the nearest corrected slice below and above it.
    On a corrected slice: it and the next corrected slice above it with a gap,
    else the one below.

    Raises:
        PromptError: there is no such pair.
    """
    done = sorted(set(int(c) for c in corrected))
    below = [c for c in done if c < z]
    above = [c for c in done if c > z]
    if z in done:
        if above and above[0] - z >= 2:
            return z, above[0]
        if below and z - below[-1] >= 2:
            return below[-1], z
        raise PromptError(f"slice {z} has no corrected slice with a gap next to it: correct another slice first")
    if not below or not above:
        raise PromptError(f"slice {z} does not lie between two corrected slices: correct one on each side first")
    return below[-1], above[0]


def fill_around(state: ReviewState, labels: np.ndarray, z: int) -> LabelEdit:
    """Fill the slices between the corrected slices around ``z`` (shape interpolation)."""
    low, high = fill_pair(state.corrected, z)
    return fill_between(labels, low, high, _case(state).geometry.spacing)


def propagate_from(state: ReviewState, labels: np.ndarray, z: int, segmenter, reach: int = 3) -> LabelEdit:
    """Carry slice ``z``'s lesions to up to ``reach`` neighbours on each side with ``segmenter``'s model.

    Args:
        segmenter: anything with ``predict_slices(case, slices) -> (n, 4, Y, X)`` (the Segmenter, an
            imported model).
    """
    case = _case(state)
    return propagate(labels, z, lambda slices: segmenter.predict_slices(case, slices), reach=reach,
                     protected=state.corrected)
