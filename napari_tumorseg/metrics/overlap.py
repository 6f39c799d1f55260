"""Dice and the 95th-percentile Hausdorff distance of binary masks (2D or 3D).

Conventions (BraTS practice):

- Dice: both masks empty -> 1.0 (nothing to find, nothing found); exactly
  one empty -> 0.0.
- HD95: both empty -> 0.0; exactly one empty -> ``empty_value``, by default
  :data:`BRATS_EMPTY_HD95` = 373.13 mm, the diagonal of the 240x240x155 1-mm
  BraTS grid, which the BraTS 2020-2021 evaluation (CaPTk) reports there so a
  mean over cases stays finite. Pass ``empty_value=float("nan")`` for
  "undefined" instead.
- HD95 is surface-based, as in MONAI's ``HausdorffDistanceMetric(percentile=95)``:
  the surface of a mask is its voxels with a 6-connected (face) neighbour
  outside it (binary erosion XOR mask; the volume border counts as outside);
  the distances from each surface voxel of one mask to the nearest surface
  voxel of the other, in mm with the voxel spacing, are taken in both
  directions; HD95 is the larger of the two 95th percentiles (linear
  interpolation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BRATS_EMPTY_HD95 = float(np.sqrt(240.0**2 + 240.0**2 + 155.0**2))  # 373.128...


def _binary(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    return mask if mask.dtype == bool else mask != 0


def _check_pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = _binary(pred), _binary(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    return pred, ref


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """2 |P & R| / (|P| + |R|); 1.0 when both are empty."""
    pred, ref = _check_pair(pred, ref)
    total = int(pred.sum()) + int(ref.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, ref).sum()) / total


def _spacing(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        return (float(spacing),) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim:
        raise ValueError(f"spacing {spacing} does not match a {ndim}-D mask")
    return spacing


def surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (or on the array border)."""
    from scipy import ndimage

    return mask ^ ndimage.binary_erosion(mask, border_value=0)


def surface_distances(
    pred: np.ndarray, ref: np.ndarray, spacing: float | Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``pred`` to ``ref``'s surface, and back.

    Both masks must be non-empty. The work is done in the bounding box of
    their union (plus one voxel), which holds every surface voxel.
    """
    from scipy import ndimage

    pred, ref = _check_pair(pred, ref)
    if not pred.any() or not ref.any():
        raise ValueError("surface distances need two non-empty masks")
    sampling = _spacing(spacing, pred.ndim)
    union = np.argwhere(pred | ref)
    box = tuple(
        slice(max(int(lo) - 1, 0), min(int(hi) + 2, size))
        for lo, hi, size in zip(union.min(axis=0), union.max(axis=0), pred.shape)
    )
    # The one-voxel ring around the union is empty, and erosion treats the array
    # border as outside: surfaces found in the box are those of the full masks.
    pred_surface, ref_surface = surface(pred[box]), surface(ref[box])
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=sampling)[pred_surface]
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=sampling)[ref_surface]
    return to_ref, to_pred


def hd95(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: float | Sequence[float] | None = None,
    *,
    empty_value: float = BRATS_EMPTY_HD95,
) -> float:
    """Symmetric 95th-percentile Hausdorff distance in mm (see the module notes for empty masks)."""
    pred, ref = _check_pair(pred, ref)
    has_pred, has_ref = bool(pred.any()), bool(ref.any())
    if not has_pred and not has_ref:
        return 0.0
    if not (has_pred and has_ref):
        return float(empty_value)
    to_ref, to_pred = surface_distances(pred, ref, spacing)
    return float(max(np.percentile(to_ref, 95), np.percentile(to_pred, 95)))
