"""Which slices the radiologist changed, and which ones the model is least sure of."""

from __future__ import annotations

import numpy as np


def changed_slices(labels: np.ndarray, prediction: np.ndarray) -> list[int]:
    """Axial slices (axis 0) where the labels differ from the model's prediction."""
    if labels.shape != prediction.shape:
        raise ValueError(f"labels {labels.shape} and prediction {prediction.shape} differ in shape")
    differs = (labels != prediction).reshape(labels.shape[0], -1).any(axis=1)
    return np.flatnonzero(differs).tolist()


def entropy(probabilities: np.ndarray, axis: int = 0) -> np.ndarray:
    """Shannon entropy (nats) of class probabilities along ``axis``, as float32.

    Accepts float probabilities or uint8-quantised ones (0..255): each voxel is
    renormalised, so quantisation does not bias it.
    """
    p = probabilities.astype(np.float32)
    total = p.sum(axis=axis, keepdims=True)
    p = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis).astype(np.float32)


def slice_uncertainty_scores(uncertainty: np.ndarray, prediction: np.ndarray, margin: int = 5) -> np.ndarray:
    """How doubtful each axial slice is: its summed entropy near the predicted tumour.

    Only voxels within ``margin`` voxels (in-plane) of the predicted tumour
    count, so a large doubtful tumour boundary outranks the faint doubt every
    network has at the brain's edge on the first and last slices. With no
    tumour predicted anywhere, the whole slice counts. Heavy for a full
    volume (a 3D dilation): run it off the GUI thread.
    """
    tumour = prediction > 0
    if tumour.any():
        from scipy.ndimage import binary_dilation

        # In-plane dilation only: each slice is judged by its own boundary.
        structure = np.zeros((1, 3, 3), bool)
        structure[0, 1, :] = structure[0, :, 1] = True
        region = binary_dilation(tumour, structure=structure, iterations=margin)
        uncertainty = np.where(region, uncertainty, 0)
    return uncertainty.reshape(uncertainty.shape[0], -1).sum(axis=1).astype(np.float64)


def rank_slices(scores: np.ndarray, k: int = 5, exclude: set[int] | None = None) -> list[int]:
    """The ``k`` slices with the highest score (above 0), skipping ``exclude``."""
    order = np.argsort(-scores, kind="stable")
    exclude = exclude or set()
    return [int(z) for z in order if scores[z] > 0 and int(z) not in exclude][:k]


def least_certain_slices(
    uncertainty: np.ndarray,
    prediction: np.ndarray,
    k: int = 5,
    exclude: set[int] | None = None,
    margin: int = 5,
) -> list[int]:
    """The ``k`` axial slices most worth a radiologist's look, least certain first.

    See :func:`slice_uncertainty_scores`; slices already corrected (``exclude``) are skipped.
    """
    return rank_slices(slice_uncertainty_scores(uncertainty, prediction, margin), k, exclude)
