"""Random appearance of a training crop: contrast curve, bias, blur and noise, per modality; resampling smoothness.

The phantoms already draw every signal per case (generator version 2); this
multiplies the variety at no cost, since it runs on 128-pixel crops. Each
modality of a crop is mapped to 0..1 over its brain voxels (0.5th to 99.5th
percentile), given a random gamma, a smooth multiplicative bias, sometimes a
blur, and noise, then brought back to the mean and spread it had, so the
crop stays normalised as the segmenter normalises whole volumes. Background
(exactly 0) stays 0. All neighbouring slices of a modality (2.5D context)
get the same transform.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

GAMMA_LOG_SPREAD = 0.35  # gamma = exp(N(0, this))
BIAS_STRENGTH = 0.35  # log-amplitude of the bias over the crop
BLUR_PROBABILITY, BLUR_MAX_PX = 0.3, 1.2
NOISE_MAX = 0.05  # noise sd relative to the 0..1 range
# Resampling smoothness (see :func:`smooth_like_resampling`): Gaussian sd in pixels in-plane and in slices
# through-plane. Up to 1 px covers one or two interpolations of a moved or thick-sliced sequence, which leave an
# image as smooth as a 0.5-0.7 px blur of the phantoms' (set from the phantoms, docs/results/smoothing).
SMOOTH_SIGMA_PX = (0.25, 1.0)
SMOOTH_SIGMA_SLICES = (0.0, 1.0)


def _bias(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth multiplicative field over the crop: exp of a random quadratic in (y, x)."""
    y, x = np.meshgrid(np.linspace(-1, 1, height, dtype=np.float32), np.linspace(-1, 1, width, dtype=np.float32),
                       indexing="ij")
    terms = np.stack([y, x, y * y, x * x, x * y])
    weights = rng.normal(0.0, BIAS_STRENGTH / 2.0, len(terms)).astype(np.float32)
    return np.exp(np.tensordot(weights, terms, axes=1))


def randomise_appearance(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new appearance for one modality of a crop.

    Args:
        image: ``(slots, H, W)`` normalised planes of one modality (context slices first axis).
        rng: the draw.

    Returns:
        The transformed planes, float32, 0 where the input was 0.
    """
    brain = image != 0
    values = image[brain]
    if values.size < 16:
        return image
    low, high = np.percentile(values, [0.5, 99.5])
    if high - low < 1e-6:
        return image
    mean, std = float(values.mean()), float(values.std())
    unit = np.clip((image - low) / (high - low), 0.0, 1.0)
    unit = unit ** np.float32(np.exp(rng.normal(0.0, GAMMA_LOG_SPREAD)))
    unit = unit * _bias(rng, *image.shape[-2:])[None]
    if rng.random() < BLUR_PROBABILITY:
        unit = ndi.gaussian_filter(unit, (0.0, *(2 * [rng.uniform(0.3, BLUR_MAX_PX)])))
    unit = unit + rng.normal(0.0, rng.uniform(0.0, NOISE_MAX), unit.shape).astype(np.float32)
    return _restored(image, brain, unit[brain], mean, std)


def smooth_like_resampling(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One modality of a crop made as smooth as a resampled sequence, its noise included.

    A sequence registered and resampled, or acquired on thick slices, loses
    the fine grain the phantoms' noise gives; a network that learnt "grainy
    means normal" then calls smooth normal tissue tumour. The planes are
    blurred in-plane (sd drawn from :data:`SMOOTH_SIGMA_PX`) and across the
    context slices (:data:`SMOOTH_SIGMA_SLICES`), with no noise added after,
    inside the brain only (a normalised convolution: the zeros around it do
    not darken its edge), then brought back to the mean and spread they had.

    Args:
        image: ``(slots, H, W)`` normalised planes of one modality.
        rng: the draw.

    Returns:
        The smoothed planes, float32, 0 where the input was 0.
    """
    brain = image != 0
    values = image[brain]
    if values.size < 16:
        return image
    sigma = (rng.uniform(*SMOOTH_SIGMA_SLICES), *(2 * [rng.uniform(*SMOOTH_SIGMA_PX)]))
    weight = ndi.gaussian_filter(brain.astype(np.float32), sigma, mode="nearest")
    blurred = ndi.gaussian_filter(np.where(brain, image, 0).astype(np.float32), sigma, mode="nearest")
    moved = blurred[brain] / np.maximum(weight[brain], 1e-6)
    return _restored(image, brain, moved, float(values.mean()), float(values.std()))


def _restored(image: np.ndarray, brain: np.ndarray, moved: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The new brain values ``moved`` given back the ``mean`` and ``std`` the brain had (0 outside it), as the
    segmenter's z-score would; ``image`` unchanged when the new values are flat."""
    spread = float(moved.std())
    if spread < 1e-6:
        return image
    out = np.zeros_like(image, dtype=np.float32)
    out[brain] = (moved - moved.mean()) / spread * std + mean
    return out
