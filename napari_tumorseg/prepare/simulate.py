"""Raw scans with a known truth: sequences moved by known rigid motions, acquired on their own (thick) grids.

What the validation and the tests feed the Prepare step. A clean case (a
synthetic head, or a real co-registered case) is "acquired" again per
sequence: the patient's head moved by a rigid motion ``M`` (the anatomy seen
at world point ``p`` is the one at ``M^-1 p`` in the clean case), and the
sequence's voxel grid is its own (rotated, shifted, thick-sliced). Thick
slices average the anatomy across the slice (a Gaussian profile) before they
are sampled; the profile is applied along the clean volume's z axis, which
lies within the head's motion and the grid's tilt (up to about 10 degrees)
of the slice normal. (Applying it along each slice's own normal instead was
tried: the same registration errors to 0.01 mm on three synthetic heads, and
the same picture on a sheet phantom, since a blur across a sheet tilted by
20 degrees is one along its normal 6 % narrower.) The true registration transform
between the reference and a sequence is ``M_seq @ M_ref^-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.case import Geometry
from .grids import RigidTransform, resample


@dataclass(frozen=True)
class Acquisition:
    """How one sequence is acquired: the head's motion and the sequence's grid."""

    motion: RigidTransform
    grid: Geometry
    slice_thickness_mm: float | None = None

    @classmethod
    def header_only(cls, geometry: Geometry, motion: RigidTransform) -> Acquisition:
        """The clean grid moved with the head: the voxels stay as they are, only the affine changes."""
        return cls(motion, Geometry(motion.matrix @ geometry.source_affine, geometry.source_shape))


def grid_over(geometry: Geometry, spacing: tuple[float, float, float],
              rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0), shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
              source_axes: str = "LPS") -> Geometry:
    """A grid over the field of view of ``geometry`` with canonical ``spacing`` (z, y, x), tilted and shifted.

    The file's own axes follow ``source_axes`` ("LPS" as BraTS files, "RAS" as
    many converters): the grid is stored that way, so its canonical layout is
    a permutation and flips of it, as for a real file.
    """
    affine = np.asarray(geometry.canonical_affine, dtype=np.float64)
    old = np.asarray(geometry.spacing)
    spacing = np.asarray(spacing, dtype=np.float64)
    shape = np.maximum(np.round(np.asarray(geometry.canonical_shape) * old / spacing).astype(int), 1)
    directions = affine[:3, :3] / old
    centre = affine[:3, :3] @ ((np.asarray(geometry.canonical_shape) - 1) / 2.0) + affine[:3, 3]
    rotation = RigidTransform.from_parameters(rotation_deg, (0, 0, 0)).matrix[:3, :3]
    columns = rotation @ directions * spacing
    origin = centre + np.asarray(shift_mm) - columns @ ((shape - 1) / 2.0)
    canonical = np.eye(4)
    canonical[:3, :3], canonical[:3, 3] = columns, origin
    return _stored_as(canonical, tuple(int(n) for n in shape), source_axes)


def _stored_as(canonical: np.ndarray, shape: tuple[int, int, int], axes: str) -> Geometry:
    """A canonical (S, P, L) grid written with the file axes ``axes`` (e.g. LPS: L, P, S order, as BraTS)."""
    from nibabel import orientations as nio

    grid = Geometry(canonical, shape)
    to_file = nio.ornt_transform(nio.axcodes2ornt(("S", "P", "L")), nio.axcodes2ornt(tuple(axes)))
    affine = canonical @ nio.inv_ornt_aff(to_file, shape)
    file_shape = [0, 0, 0]
    for canonical_axis, (file_axis, _) in enumerate(to_file):
        file_shape[int(file_axis)] = shape[canonical_axis]
    stored = Geometry(affine, tuple(file_shape))
    assert stored.canonical_shape == grid.canonical_shape
    return stored


def acquire(volume: np.ndarray, geometry: Geometry, acquisition: Acquisition, *, labels: bool = False) -> np.ndarray:
    """The canonical volume a sequence records on ``acquisition.grid`` of the clean ``volume``.

    Args:
        volume: the clean canonical volume.
        geometry: its grid.
        acquisition: the motion, the grid and the slice thickness.
        labels: resample as labels (nearest neighbour, no slice profile).
    """
    from scipy import ndimage as ndi

    if acquisition.grid.source_shape == geometry.source_shape and np.allclose(
            acquisition.grid.source_affine, acquisition.motion.matrix @ geometry.source_affine, atol=1e-6):
        return np.array(volume, copy=True)  # moved in the header only
    source = np.asarray(volume, dtype=np.uint8 if labels else np.float32)
    thickness = acquisition.slice_thickness_mm
    if thickness and not labels:
        # The slice profile: a Gaussian of the slice's full width at half maximum along the clean z axis.
        sigma = thickness / 2.355 / float(geometry.spacing[0])
        source = ndi.gaussian_filter1d(source, sigma, axis=0, mode="constant")
    # Sequence grid point p shows the clean anatomy at M^-1 p.
    return resample(source, geometry, acquisition.grid, acquisition.motion.inverse(), labels=labels)


def random_motion(rng: np.random.Generator, centre_mm: np.ndarray, max_rotation_deg: float = 10.0,
                  max_shift_mm: float = 10.0) -> RigidTransform:
    """A head motion of up to ``max_rotation_deg`` about each axis and ``max_shift_mm`` along each."""
    rotation = tuple(float(a) for a in rng.uniform(-max_rotation_deg, max_rotation_deg, 3))
    shift = tuple(float(s) for s in rng.uniform(-max_shift_mm, max_shift_mm, 3))
    return RigidTransform.from_parameters(rotation, shift, tuple(centre_mm))


def true_transform(reference: Acquisition, sequence: Acquisition) -> RigidTransform:
    """Reference world -> sequence world for the same anatomy."""
    return RigidTransform(sequence.motion.matrix @ np.linalg.inv(reference.motion.matrix))


def registration_error_mm(found: RigidTransform, truth: RigidTransform, points: np.ndarray) -> tuple[float, float]:
    """Mean and maximum distance (mm) between where the two transforms send ``points`` (N, 3)."""
    distance = np.linalg.norm(found.apply(points) - truth.apply(points), axis=1)
    return float(distance.mean()), float(distance.max())
