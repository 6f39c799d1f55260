"""Which slices to suggest to the radiologist: the ones most likely to hold something wrong.

The earlier ranking summed the model's uncertainty near the predicted
tumour only, so a lesion the model missed, or a false one far from the
rest, was never suggested. Each slice now gets the number of voxels
likely to be wrong on it, from several independent signs, added up:

- ``doubt``: over the whole brain, every voxel whose most likely class has
  probability under 0.9 counts ``1 - p_max`` (its expected error under the
  model's own probabilities); the confident rest counts nothing, so the
  faint doubt every network has everywhere does not drown real doubt;
- ``missed``: voxels called background although the tumour classes
  together have at least 0.2 (a lesion the model half sees), counted twice
  as much — an unseen lesion costs more than a blurred edge;
- ``flip``: voxels whose label changes when the input is mirrored
  left-right (when that second opinion was computed): the network
  disagreeing with itself is a strong sign it is wrong there;
- ``changed``: voxels whose label differs from the previous version's
  prediction (after an adaptation: what the new model changed deserves a look);
- ``isolated``: voxels of small tumour components apart from the largest
  one (a false positive in a vessel or the dura, or a small metastasis
  worth confirming), counted twice.

Suggestions are then picked greedily, highest score first, each suppressing
its neighbours (±2 slices) so that five suggestions are five different places,
and none next to a slice already corrected (±2) while any other is left: the
effort experiment found the suggestions clustering beside the slices just
corrected (82–87, 95–102), where the adapted model's changes keep the scores
high but a correction teaches little new.
Heavy for a full volume (connected components, a pass over the probabilities):
run it off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

DOUBT_BELOW = 0.9  # p_max under this counts as doubt
MISSED_ABOVE = 0.2  # summed tumour probability this high on a background voxel: a half-seen lesion
MISSED_WEIGHT = 2.0
ISOLATED_WEIGHT = 2.0
ISOLATED_MAX_FRACTION = 0.25  # a component under this fraction of the largest one is "small"
NEIGHBOURS = 2  # a pick suppresses the slices this close to it
REASONS = {
    "doubt": "model unsure",
    "missed": "possible missed lesion",
    "flip": "flipped input disagrees",
    "changed": "changed by the new version",
    "isolated": "isolated finding",
}


@dataclass
class SliceScores:
    """Per-slice signs that something is wrong, and their total.

    Args:
        parts: sign name (see REASONS) -> (Z,) float64 likely-wrong voxels per slice.
    """

    parts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def total(self) -> np.ndarray:
        arrays = list(self.parts.values())
        return np.sum(arrays, axis=0) if arrays else np.zeros(0)

    def reason(self, z: int) -> str:
        """The sign that weighs most on slice ``z``, in words."""
        if not self.parts:
            return ""
        name = max(self.parts, key=lambda key: (self.parts[key][z], key))
        return REASONS[name] if self.parts[name][z] > 0 else ""

    def update_slice(self, z: int, other: SliceScores) -> None:
        """Take slice ``z``'s values from ``other`` (a one-slice re-segmentation)."""
        for name, values in other.parts.items():
            if name in self.parts:
                self.parts[name][z] = values[0]


def _probabilities(probabilities: np.ndarray) -> np.ndarray:
    """(4, ...) float32 probabilities from uint8 (x/255) or float storage."""
    if probabilities.dtype == np.uint8:
        return probabilities.astype(np.float32) / 255.0
    return probabilities.astype(np.float32, copy=False)


def _per_slice(volume: np.ndarray) -> np.ndarray:
    return volume.reshape(volume.shape[0], -1).sum(axis=1).astype(np.float64)


def slice_scores(
    probabilities: np.ndarray | None,
    labels: np.ndarray,
    *,
    flipped_labels: np.ndarray | None = None,
    previous_labels: np.ndarray | None = None,
) -> SliceScores:
    """The signs of error on every axial slice of a segmented volume.

    Args:
        probabilities: (4, Z, Y, X) class probabilities (uint8 x/255 or float), or None.
        labels: (Z, Y, X) the predicted labels.
        flipped_labels: (Z, Y, X) the prediction on the left-right mirrored input, mirrored back, or None.
        previous_labels: (Z, Y, X) the previous version's prediction, or None.
    """
    parts: dict[str, np.ndarray] = {}
    depth = labels.shape[0]
    if probabilities is not None:
        doubt = np.zeros(depth)
        missed = np.zeros(depth)
        for z in range(depth):  # slice by slice: no volume-sized float copies
            p = _probabilities(probabilities[:, z])
            top = p.max(axis=0)
            doubt[z] = float(np.where(top < DOUBT_BELOW, 1.0 - top, 0.0).sum())
            tumour = 1.0 - p[0]
            missed[z] = float(np.count_nonzero((labels[z] == 0) & (tumour >= MISSED_ABOVE)))
        parts["doubt"] = doubt
        parts["missed"] = MISSED_WEIGHT * missed
    if flipped_labels is not None:
        parts["flip"] = _per_slice(flipped_labels != labels)
    if previous_labels is not None:
        parts["changed"] = _per_slice(previous_labels != labels)
    parts["isolated"] = ISOLATED_WEIGHT * _per_slice(isolated_components(labels > 0))
    return SliceScores(parts)


def isolated_components(tumour: np.ndarray) -> np.ndarray:
    """The voxels of tumour components smaller than a quarter of the largest one (bool, same shape)."""
    from scipy import ndimage

    if not tumour.any():
        return np.zeros_like(tumour, dtype=bool)
    components, count = ndimage.label(tumour, structure=ndimage.generate_binary_structure(3, 3))
    if count < 2:
        return np.zeros_like(tumour, dtype=bool)
    sizes = np.bincount(components.reshape(-1))[1:]
    small = np.flatnonzero(sizes < ISOLATED_MAX_FRACTION * sizes.max()) + 1
    return np.isin(components, small)


def pick_slices(scores: np.ndarray, k: int, exclude: Iterable[int] = (), neighbours: int = NEIGHBOURS) -> list[int]:
    """Up to ``k`` slices, highest score first, each ``neighbours`` slices away from the others and the corrected.

    Slices scoring 0 are never suggested; ``exclude`` (the corrected ones)
    neither, and their neighbours (within ``neighbours``) only when nothing
    else is left: a slice next to one just corrected mostly repeats it (its
    score stays high because the adapted model changed it too), so
    suggestions that follow their score cluster there. When the spacing
    leaves fewer than ``k``, the rest fill in by score: first those away from
    the corrected slices, then their neighbours.
    """
    excluded = {int(z) for z in exclude}
    order = [int(z) for z in np.argsort(-scores, kind="stable") if scores[z] > 0 and int(z) not in excluded]

    def near(z: int, others: Iterable[int]) -> bool:
        return any(abs(z - other) <= neighbours for other in others)

    picked: list[int] = []
    passes = (
        lambda z: not near(z, excluded) and not near(z, picked),  # a new place
        lambda z: not near(z, excluded),  # fewer distinct places than k: by score, still off the corrected
        lambda z: True,  # only neighbours of corrected slices are left
    )
    for allowed in passes:
        for z in order:
            if len(picked) == k:
                return picked
            if z not in picked and allowed(z):
                picked.append(z)
    return picked


def suggest(scores: SliceScores, k: int, exclude: Sequence[int] = ()) -> list[tuple[int, str]]:
    """The ``k`` slices most worth a look, with the reason for each."""
    return [(z, scores.reason(z)) for z in pick_slices(scores.total, k, exclude)]
