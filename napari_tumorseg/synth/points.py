"""The brain voxels of one phantom, found and sampled through its deformation.

A phantom is computed at its brain voxels only (BraTS images are 0 outside
the skull-stripped brain, about five sixths of the grid), held as flat
arrays: ``flat`` indices into the volume, their (z, y, x) ``index``, and
channel-first samples such as ``tissue`` (3, N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .anatomy import BRAIN_THRESHOLD, Anatomy
from .grid import GridSampler, smooth_noise

NOISE_STEP_MM = 2.0  # grid of the local noise fields (sulci, texture, patches)
CANDIDATE_FRACTION = 0.05  # coarse brain fraction below which no voxel is brain (checked on the template)


@dataclass(eq=False)
class BrainPoints:
    """Samples at the brain voxels of one phantom.

    Args:
        flat: (N,) flat voxel indices into the phantom volume, ascending.
        index: (3, N) voxel indices (z, y, x).
        tissue: (3, N) GM, WM, CSF fractions after the deformation.
        extra: (C, N) the extra smooth fields asked for, at the same voxels.
        template_mm: (3, N) the template position (mm from the field of view's
            corner) each voxel takes its anatomy from.
    """

    flat: np.ndarray
    index: np.ndarray
    tissue: np.ndarray
    extra: np.ndarray
    template_mm: np.ndarray | None = None

    @property
    def fraction(self) -> np.ndarray:
        """Brain volume fraction per voxel (below 1 at the brain's edge)."""
        return self.tissue[0] + self.tissue[1] + self.tissue[2]

    def __len__(self) -> int:
        return int(self.flat.size)


def unravel(flat: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Flat indices -> (3, N) int64 voxel indices (int32 division: faster than ``np.unravel_index``)."""
    plane, row = shape[1] * shape[2], shape[2]
    f = flat.astype(np.int32) if flat.size and flat.max() < 2**31 else flat
    z = f // plane
    rest = f - z * plane
    y = rest // row
    return np.stack([z, y, rest - y * row]).astype(np.int64)


def _candidates(anatomy: Anatomy, coarse_brain: np.ndarray) -> np.ndarray:
    """Flat indices of the voxels that may be brain (a superset), from the coarse brain fraction."""
    coarse = anatomy.coarse
    # One node of margin: the brain's edge may pass between nodes.
    near = ndi.maximum_filter(coarse_brain > 0.02, size=3)
    nearest = [
        np.clip(np.round((np.arange(n) + 0.5) * s / coarse.spacing_mm).astype(np.int64), 0, c - 1)
        for n, s, c in zip(anatomy.shape, anatomy.spacing, coarse.shape)
    ]
    return np.flatnonzero(near.take(nearest[0], axis=0).take(nearest[1], axis=1).take(nearest[2], axis=2))


def brain_points(anatomy: Anatomy, displacement: np.ndarray, extra_fields: np.ndarray) -> BrainPoints:
    """Find the brain voxels after a deformation and sample the anatomy and smooth fields there.

    Args:
        anatomy: the template on the phantom's grid.
        displacement: (cz, cy, cx, 3) backward displacement (mm) on the coarse grid.
        extra_fields: (cz, cy, cx, C) further coarse fields to sample at the brain
            voxels (they share the interpolation weights, so they come almost free).
    """
    coarse = anatomy.coarse
    coarse_brain = anatomy.at_coarse_nodes(displacement).sum(axis=-1)
    flat = _candidates(anatomy, coarse_brain)
    index = unravel(flat, anatomy.shape)
    sampler = GridSampler(index, anatomy.spacing, np.zeros(3), coarse.spacing_mm, coarse.shape)
    # The coarse fraction, interpolated, rules out most of the margin before the costly sampling.
    maybe = np.flatnonzero(sampler.sample(coarse_brain) > CANDIDATE_FRACTION)
    # take(), not [:, keep]: that gives column-major (3, N) arrays, whose rows every later step reads slowly.
    flat, index, sampler = flat[maybe], index.take(maybe, axis=1), sampler.subset(maybe)
    spacing = anatomy.spacing.astype(np.float32)
    template_index = np.empty((3, flat.size), dtype=np.float32)
    for axis in range(3):
        # Voxel centre plus displacement, in the template's voxel units.
        np.add(index[axis], sampler.sample(displacement[..., axis]) / spacing[axis], out=template_index[axis])
    tissue = anatomy.sample(template_index)
    brain = np.flatnonzero(tissue[0] + tissue[1] + tissue[2] >= BRAIN_THRESHOLD)
    flat, index = flat[brain], index.take(brain, axis=1)
    extra = sampler.subset(brain).sample_all(extra_fields)
    template_mm = (template_index.take(brain, axis=1) + np.float32(0.5)) * spacing[:, None]
    # The tissue stays column-major, as it always was: version 1 renders it as a matrix product, whose bits
    # depend on the layout (version 2 makes it row-major, see version2.build).
    return BrainPoints(flat=flat, index=index, tissue=tissue[:, brain], extra=extra, template_mm=template_mm)


class LocalNoise:
    """Smooth noise fields on a 2 mm grid over the brain points' bounding box."""

    def __init__(self, rng: np.random.Generator, points: BrainPoints, spacing: np.ndarray) -> None:
        self.rng = rng
        self.box = (points.index.min(axis=1), points.index.max(axis=1) + 1)  # voxel bounds, found once
        low = self.box[0] * spacing - 2.0 * NOISE_STEP_MM
        high = self.box[1] * spacing + 2.0 * NOISE_STEP_MM
        self.origin = low.astype(np.float32)
        self.shape = tuple(int(np.ceil((h - lo) / NOISE_STEP_MM)) + 1 for lo, h in zip(low, high))
        self.sampler = GridSampler(points.index, spacing, self.origin, NOISE_STEP_MM, self.shape, box=self.box)

    def field(self, length_mm: float, at: np.ndarray | None = None) -> np.ndarray:
        """A unit-variance field with this correlation length, at the points (or those indexed by ``at``)."""
        grid = smooth_noise(self.rng, self.shape, max(length_mm / NOISE_STEP_MM, 0.5))
        return (self.sampler if at is None else self.sampler.subset(at)).sample(grid)
