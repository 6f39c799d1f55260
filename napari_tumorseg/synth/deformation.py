"""Where each phantom voxel takes its anatomy from: a random head pose and shape, plus mass effect.

A deformation is a displacement field on the coarse grid, in mm: the phantom
point ``p`` shows the template anatomy at ``p + displacement(p)`` (a backward
map, so sampling never leaves holes). Two parts add up:

- :func:`random_deformation`: a small random affine (rotation, anisotropic
  scale, shift; BraTS cases are registered to an atlas, so it stays small)
  and a smooth elastic field (individual anatomy);
- :func:`mass_effect`: a growing mass pushes the surrounding brain outward.
  The backward map pulls each point towards the lesion centre so that the
  displaced volume equals the mass's (the brain is incompressible), fading as
  ``1 / r**2`` outside it, as the displacement of an incompressible medium does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .grid import FIELD_OF_VIEW_MM, CoarseGrid, smooth_noise


@dataclass(frozen=True)
class DeformationParams:
    """The random draws behind one case's anatomy deformation (kept for reports and tests).

    Args:
        rotation_deg: rotation angles about the z, y and x axes.
        scale: per-axis scale of the head (template mm per phantom mm is ``1 / scale``).
        shift_mm: translation of the head.
        elastic_mm: standard deviation of the elastic displacement.
        elastic_length_mm: correlation length of the elastic displacement.
    """

    rotation_deg: tuple[float, float, float]
    scale: tuple[float, float, float]
    shift_mm: tuple[float, float, float]
    elastic_mm: float
    elastic_length_mm: float


def sample_deformation_params(rng: np.random.Generator) -> DeformationParams:
    """Draw a head pose and shape like those of atlas-registered BraTS cases.

    Args:
        rng: the case's geometry stream.
    """
    overall = rng.uniform(0.93, 1.06)  # head size varies more than its proportions
    return DeformationParams(
        rotation_deg=tuple(float(a) for a in rng.normal(0.0, 2.5, 3).clip(-6, 6)),
        scale=tuple(float(overall * s) for s in rng.normal(1.0, 0.025, 3).clip(0.94, 1.06)),
        shift_mm=tuple(float(s) for s in rng.normal(0.0, 2.0, 3).clip(-5, 5)),
        elastic_mm=float(rng.uniform(1.5, 3.5)),
        elastic_length_mm=float(rng.uniform(18.0, 30.0)),
    )


def _rotation(angles_deg: tuple[float, float, float]) -> np.ndarray:
    az, ay, ax = np.deg2rad(angles_deg)
    rz = np.array([[1, 0, 0], [0, np.cos(az), -np.sin(az)], [0, np.sin(az), np.cos(az)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rx = np.array([[np.cos(ax), -np.sin(ax), 0], [np.sin(ax), np.cos(ax), 0], [0, 0, 1]])
    return rz @ ry @ rx


def sample_deformation_params_v2(rng: np.random.Generator) -> DeformationParams:
    """Version 2: wider head sizes and shapes, a stronger elastic part, and more rotation and shift.

    BraTS cases are registered to an atlas, but not perfectly, and heads
    differ more than version 1 allowed (literature ranges, set by eye).

    Args:
        rng: the case's geometry stream.
    """
    overall = rng.uniform(0.86, 1.1)
    return DeformationParams(
        rotation_deg=tuple(float(a) for a in rng.normal(0.0, 4.0, 3).clip(-10, 10)),
        scale=tuple(float(overall * s) for s in rng.normal(1.0, 0.04, 3).clip(0.9, 1.1)),
        shift_mm=tuple(float(s) for s in rng.normal(0.0, 4.0, 3).clip(-10, 10)),
        elastic_mm=float(rng.uniform(2.0, 5.0)),
        elastic_length_mm=float(rng.uniform(15.0, 30.0)),
    )


def random_deformation(
    rng: np.random.Generator, coarse: CoarseGrid, sample: Callable[[np.random.Generator], DeformationParams] | None = None
) -> tuple[np.ndarray, DeformationParams]:
    """A random affine-plus-elastic backward displacement on the coarse grid.

    Args:
        rng: the case's geometry stream.
        coarse: the grid the field lives on.
        sample: draws the pose and shape (version 1's :func:`sample_deformation_params` by default).

    Returns:
        The displacement, (cz, cy, cx, 3) float32 in mm (channel-last, like
        every multi-channel grid field here), and the parameters drawn.
    """
    params = (sample or sample_deformation_params)(rng)
    positions = coarse.positions_mm.reshape(3, -1).astype(np.float64)
    centre = np.asarray(FIELD_OF_VIEW_MM)[:, None] / 2.0
    # Backward affine: phantom p -> template R^-1 S^-1 (p - c - t) + c.
    inverse = _rotation(params.rotation_deg).T / np.asarray(params.scale)[:, None]
    source = inverse @ (positions - centre - np.asarray(params.shift_mm)[:, None]) + centre
    displacement = (source - positions).T.reshape(*coarse.shape, 3)
    sigma = params.elastic_length_mm / coarse.spacing_mm
    for axis in range(3):
        displacement[..., axis] += params.elastic_mm * smooth_noise(rng, coarse.shape, sigma)
    return displacement.astype(np.float32), params


def mass_effect(
    positions_mm: np.ndarray, centre_mm: np.ndarray, displaced_radius_mm: float
) -> np.ndarray:
    """Backward displacement of an incompressible brain around a mass of the given displaced volume.

    A point at distance ``r`` from the centre came from distance
    ``(r**3 - R**3) ** (1/3)``: the shell between them is the volume the mass
    took. Points inside ``R`` map to the centre; the tumour covers them.

    Args:
        positions_mm: (3, ...) positions in the phantom.
        centre_mm: (3,) lesion centre.
        displaced_radius_mm: radius ``R`` of the sphere whose volume was pushed aside
            (smaller than the lesion where it infiltrates rather than displaces).

    Returns:
        (..., 3) float32 displacement in mm to add to a backward field.
    """
    offset = positions_mm - np.asarray(centre_mm, dtype=np.float32).reshape(3, *([1] * (positions_mm.ndim - 1)))
    radius = np.sqrt((offset**2).sum(axis=0)).astype(np.float32)
    if displaced_radius_mm <= 0:
        return np.zeros((*radius.shape, 3), dtype=np.float32)
    source_radius = np.cbrt(np.maximum(radius**3 - np.float32(displaced_radius_mm) ** 3, 0.0))
    ratio = np.where(radius > 1e-3, source_radius / np.maximum(radius, 1e-3), 0.0).astype(np.float32)
    return np.moveaxis(offset * (ratio - 1.0), 0, -1).astype(np.float32)
