"""Slice prompts: fill the slices between two corrected ones, propagate a corrected slice to its neighbours.

Both keep the BraTS nesting (enhancing tumour inside the tumour core inside
the whole tumour) by working on the three regions and composing the labels
from them, never on the classes one by one.

*Fill* interpolates each region's signed distance (negative inside) linearly
between the two slices and thresholds it at zero: a shape morphs into the
other, and a region present on one side only shrinks to nothing towards the
other side.

*Propagate* walks away from a corrected slice, one neighbour at a time, and
on each asks the model (a callable: slices in, class probabilities out)
what is tumour near the lesion on the slice before: its usual call
(probability of tumour at least 0.5), or a lower bar (``GUIDED_PROBABILITY``)
right next to the lesion, keeping only what touches it. Other lesions of the
slice are left alone. It stops where the model sees no more of the lesion,
at a slice the radiologist corrected, or after ``reach`` slices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import PromptError
from ..io.labels import ED, ET, NCR
from .edits import LabelEdit, edit_between

GUIDED_PROBABILITY = 0.2
GUIDE_VOXELS = 3  # how far a lesion may move from one slice to the next, in-plane
DEFAULT_REACH = 3
EMPTY_SIDE = 1.0  # the signed distance given to a slice without the region: it vanishes just before it


def _regions(plane: np.ndarray) -> list[np.ndarray]:
    """Whole tumour, tumour core, enhancing tumour of one slice."""
    return [plane > 0, (plane == NCR) | (plane == ET), plane == ET]


def _compose(whole: np.ndarray, core: np.ndarray, enhancing: np.ndarray) -> np.ndarray:
    core, enhancing = core & whole, enhancing & core & whole
    plane = np.zeros(whole.shape, np.uint8)
    plane[whole] = ED
    plane[core] = NCR
    plane[enhancing] = ET
    return plane


def _signed_distance(mask: np.ndarray, sampling: Sequence[float]) -> np.ndarray:
    from scipy import ndimage

    outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
    inside = ndimage.distance_transform_edt(mask, sampling=sampling)
    return (outside - inside).astype(np.float32)


def _interpolated(low: np.ndarray, high: np.ndarray, weights: np.ndarray, sampling: Sequence[float]) -> np.ndarray:
    """``(n, Y, X)`` masks between ``low`` (weight 0) and ``high`` (weight 1)."""
    if not low.any() and not high.any():
        return np.zeros((len(weights), *low.shape), bool)
    if low.any() and high.any():
        d_low, d_high = _signed_distance(low, sampling), _signed_distance(high, sampling)
    elif low.any():
        d_low = _signed_distance(low, sampling)
        d_high = np.full_like(d_low, EMPTY_SIDE)  # the shape shrinks to nothing near the empty side
    else:
        d_high = _signed_distance(high, sampling)
        d_low = np.full_like(d_high, EMPTY_SIDE)
    w = weights[:, None, None].astype(np.float32)
    return (1 - w) * d_low[None] + w * d_high[None] < 0


def fill_between(labels: np.ndarray, low: int, high: int, spacing: Sequence[float] | None = None) -> LabelEdit:
    """Replace the slices strictly between ``low`` and ``high`` by the interpolation of those two slices.

    Raises:
        PromptError: the slices are not at least two apart, or neither holds tumour.
    """
    low, high = sorted((int(low), int(high)))
    if not 0 <= low < high < labels.shape[0]:
        raise PromptError(f"slices {low} and {high} are not two slices of this case")
    if high - low < 2:
        raise PromptError(f"no slice lies between slices {low} and {high}")
    if not (labels[low].any() or labels[high].any()):
        raise PromptError(f"neither slice {low} nor slice {high} holds tumour: nothing to fill")
    sampling = tuple(spacing[1:]) if spacing is not None else (1.0, 1.0)
    box = _tumour_box(labels[low] | labels[high], margin=2)
    weights = (np.arange(low + 1, high) - low) / (high - low)
    regions = [
        _interpolated(a[box], b[box], weights, sampling) for a, b in zip(_regions(labels[low]), _regions(labels[high]))
    ]
    after = labels[low + 1 : high].copy()
    for n in range(len(weights)):
        after[n][...] = 0
        after[n][box] = _compose(regions[0][n], regions[1][n], regions[2][n])
    return _edit_of_slices(labels, low + 1, after, f"filled slices {low + 1}-{high - 1} from {low} and {high}")


def _tumour_box(plane: np.ndarray, margin: int) -> tuple[slice, slice]:
    rows, columns = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
    return (
        slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, plane.shape[0])),
        slice(max(int(columns[0]) - margin, 0), min(int(columns[-1]) + margin + 1, plane.shape[1])),
    )


def _edit_of_slices(labels: np.ndarray, first: int, planes: np.ndarray, what: str) -> LabelEdit:
    """The edit that writes ``planes`` over ``labels[first : first + len(planes)]``."""
    before = labels[first : first + len(planes)]
    edit = edit_between(before, planes, what)
    offset = first * labels.shape[1] * labels.shape[2]
    return LabelEdit(what, tuple(int(s) for s in labels.shape), edit.indices + offset, edit.old, edit.new)


Predict = Callable[[Sequence[int]], np.ndarray]  # slices -> (n, 4, Y, X) class probabilities


def propagation_targets(depth: int, z: int, reach: int, protected: set[int]) -> list[int]:
    """The slices a propagation from ``z`` may write: up to ``reach`` on each side, stopping at protected ones."""
    targets = []
    for step in (1, -1):
        for k in range(1, reach + 1):
            target = z + step * k
            if not 0 <= target < depth or target in protected:
                break
            targets.append(target)
    return targets


def propagate(
    labels: np.ndarray,
    z: int,
    predict: Predict,
    *,
    reach: int = DEFAULT_REACH,
    protected: Sequence[int] = (),
) -> LabelEdit:
    """Carry the lesions of slice ``z`` to its neighbours with the model (see the module's docstring).

    Args:
        labels: the current labels; slice ``z`` is the corrected one.
        z: the slice to propagate from.
        predict: the model: slice indices -> ``(n, 4, Y, X)`` probabilities (float, or uint8 x 255).
        reach: at most this many slices on each side.
        protected: slices never written (the other corrected slices).

    Raises:
        PromptError: slice ``z`` holds no tumour, or there is no neighbour to write.
    """
    if not labels[z].any():
        raise PromptError(f"slice {z} holds no tumour to propagate")
    targets = propagation_targets(labels.shape[0], z, reach, set(protected) - {z})
    if not targets:
        raise PromptError(f"the neighbours of slice {z} are corrected already")
    probabilities = np.asarray(predict(targets))
    by_slice = dict(zip(targets, probabilities))
    written: dict[int, np.ndarray] = {}
    for step in (1, -1):
        previous = labels[z]
        for target in (t for t in targets if (t - z) * step > 0):
            plane = _guided_slice(labels[target], previous, by_slice[target])
            if plane is None:
                break
            written[target] = previous = plane
    if not written:
        raise PromptError(f"the model sees none of slice {z}'s lesion on its neighbours")
    first, last = min(written), max(written)
    planes = labels[first : last + 1].copy()
    for target, plane in written.items():
        planes[target - first] = plane
    span = f"{first}-{last}" if first != last else f"{first}"
    return _edit_of_slices(labels, first, planes, f"propagated slice {z} to slices {span}")


def _guided_slice(current: np.ndarray, previous: np.ndarray, probabilities: np.ndarray) -> np.ndarray | None:
    """The slice's labels with the lesion(s) of ``previous`` redrawn from the model; None if it sees none."""
    from scipy import ndimage

    p = probabilities.astype(np.float32) / (255.0 if probabilities.dtype == np.uint8 else 1.0)
    tumour_probability = 1.0 - p[0]
    lesion = previous > 0
    near = ndimage.binary_dilation(lesion, iterations=GUIDE_VOXELS)
    tumour = (tumour_probability >= 0.5) | ((tumour_probability >= GUIDED_PROBABILITY) & near)
    components, _ = ndimage.label(tumour, structure=np.ones((3, 3), bool))
    touching = np.unique(components[near & tumour])
    kept = np.isin(components, touching[touching > 0])
    if not kept.any():
        return None
    # The old drawing of this lesion is replaced where it lies near the lesion; other lesions stay.
    region = ndimage.binary_dilation(lesion | kept, iterations=GUIDE_VOXELS)
    plane = current.copy()
    plane[region & (current > 0) & ~_other_lesions(current, region)] = 0
    classes = 1 + np.argmax(p[1:], axis=0).astype(np.uint8)
    plane[kept] = classes[kept]
    return plane


def _other_lesions(current: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Tumour of ``current`` in components that lie mostly outside ``region`` (another lesion passing by)."""
    from scipy import ndimage

    components, count = ndimage.label(current > 0, structure=np.ones((3, 3), bool))
    if count == 0:
        return np.zeros(current.shape, bool)
    inside = np.bincount(components[region].ravel(), minlength=count + 1)
    total = np.bincount(components.ravel(), minlength=count + 1)
    other = inside * 2 < total
    other[0] = False
    return other[components]
