"""Voxel grids in the world, rigid transforms between them, and resampling from one grid to another.

Conventions: a grid is a :class:`~napari_tumorseg.io.case.Geometry` and its
arrays are in the canonical (z, y, x) layout; world coordinates are RAS+ mm
(nibabel's). SimpleITK works in LPS; the conversion happens here and nowhere
else. A :class:`RigidTransform` maps a point of the reference's world to the
same anatomy in a sequence's world (the patient moved between the two
acquisitions): resampling a sequence onto the reference grid pulls each
reference voxel's value from where the transform sends it, and exporting a
mask onto the sequence's grid goes through the inverse.

Labels are resampled with nearest neighbour, never interpolated; when the
target grid is the source grid (same shape and affine) the array is copied,
so a mask exported onto its own grid comes back voxel for voxel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CaseError
from ..io.case import Geometry

if TYPE_CHECKING:
    import SimpleITK as sitk

_FLIP = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS
MODEL_SPACING_MM = 1.0  # the tumour networks learnt from 1 mm isotropic volumes
# Thick slices (the largest voxel side at least THICK_MM and THICK_RATIO times the smallest) and very fine
# voxels (a side under FINE_MM, e.g. 512-matrix scans) are resampled to MODEL_SPACING_MM for inference and
# back for export. Isotropic coarse volumes (the small phantoms of tests and experiments) are left as they are.
THICK_MM, THICK_RATIO, FINE_MM = 2.0, 1.5, 0.6


@dataclass(frozen=True)
class RigidTransform:
    """A rigid motion of the world: ``matrix`` (4x4, RAS mm) maps reference points to sequence points."""

    matrix: np.ndarray

    @classmethod
    def identity(cls) -> RigidTransform:
        return cls(np.eye(4))

    @classmethod
    def from_parameters(cls, rotation_deg: tuple[float, float, float], translation_mm: tuple[float, float, float],
                        centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> RigidTransform:
        """Rotation about x, then y, then z (degrees, RAS axes) about ``centre_mm``, then a translation."""
        ax, ay, az = np.deg2rad(rotation_deg)
        rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
        ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
        rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
        rotation = rz @ ry @ rx
        centre = np.asarray(centre_mm, dtype=np.float64)
        matrix = np.eye(4)
        matrix[:3, :3] = rotation
        matrix[:3, 3] = centre - rotation @ centre + np.asarray(translation_mm, dtype=np.float64)
        return cls(matrix)

    def inverse(self) -> RigidTransform:
        return RigidTransform(np.linalg.inv(self.matrix))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) RAS points -> (N, 3)."""
        points = np.asarray(points, dtype=np.float64)
        return points @ self.matrix[:3, :3].T + self.matrix[:3, 3]

    @property
    def rotation_deg(self) -> float:
        """The angle of the rotation, whatever its axis."""
        cosine = (np.trace(self.matrix[:3, :3]) - 1.0) / 2.0
        return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))

    def displacement_mm(self, points: np.ndarray) -> np.ndarray:
        """How far each (N, 3) point moves."""
        return np.linalg.norm(self.apply(points) - np.asarray(points, dtype=np.float64), axis=1)

    def to_sitk(self) -> sitk.Transform:
        """The same map in LPS, as SimpleITK's transforms are (fixed point -> moving point)."""
        import SimpleITK as sitk

        linear = _FLIP @ self.matrix[:3, :3] @ _FLIP
        transform = sitk.AffineTransform(3)
        transform.SetMatrix(linear.ravel().tolist())
        transform.SetTranslation((_FLIP @ self.matrix[:3, 3]).tolist())
        return transform

    @classmethod
    def from_sitk(cls, transform: sitk.Transform) -> RigidTransform:
        """A SimpleITK rigid or affine transform (LPS, fixed -> moving) as RAS."""
        # Evaluate the map at four points: exact for any affine map, whatever its parametrisation.
        basis = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) * 100.0
        moved = np.array([transform.TransformPoint(tuple(p)) for p in basis])
        linear = (moved[1:] - moved[0]).T / 100.0
        matrix = np.eye(4)
        matrix[:3, :3] = _FLIP @ linear @ _FLIP
        matrix[:3, 3] = _FLIP @ moved[0]
        return cls(matrix)

    def to_dict(self) -> dict:
        return {"matrix_ras": np.round(self.matrix, 6).tolist(), "rotation_deg": round(self.rotation_deg, 3),
                "translation_mm": np.round(self.matrix[:3, 3], 3).tolist()}


def to_sitk_image(volume: np.ndarray, geometry: Geometry) -> sitk.Image:
    """A canonical volume on ``geometry`` as a SimpleITK image with its place in the (LPS) world.

    Raises:
        CaseError: a sheared grid (ITK images have orthogonal axes).
    """
    import SimpleITK as sitk

    volume = np.ascontiguousarray(volume)
    if volume.shape != geometry.canonical_shape:
        raise ValueError(f"volume shape {volume.shape} is not the grid's {geometry.canonical_shape}")
    # GetImageFromArray reads (z, y, x) with x fastest: ITK's index (i, j, k) is canonical (x, y, z).
    columns = np.asarray(geometry.canonical_affine[:3, :3])[:, [2, 1, 0]]
    spacing = np.linalg.norm(columns, axis=0)
    direction = _FLIP @ (columns / spacing)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise CaseError(None, "the grid is sheared (its axes are not perpendicular); it cannot be resampled")
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(spacing.tolist())
    image.SetDirection(direction.ravel().tolist())
    image.SetOrigin((_FLIP @ np.asarray(geometry.canonical_affine[:3, 3])).tolist())
    return image


def canonical_grid(geometry: Geometry) -> Geometry:
    """The grid of ``geometry``'s canonical arrays, stored canonically (its own canonical layout is the identity)."""
    return Geometry(np.array(geometry.canonical_affine), geometry.canonical_shape)


def model_grid(geometry: Geometry, spacing_mm: float = MODEL_SPACING_MM) -> Geometry:
    """A grid with ``spacing_mm`` voxels over the same field of view and axes as ``geometry`` (canonically stored)."""
    affine = np.asarray(geometry.canonical_affine, dtype=np.float64)
    old = np.asarray(geometry.spacing)
    shape = tuple(max(1, int(round(n * s / spacing_mm))) for n, s in zip(geometry.canonical_shape, old))
    new = np.asarray(geometry.canonical_shape) * old / np.asarray(shape)  # about spacing_mm, the field of view kept
    columns = affine[:3, :3] / old
    out = np.eye(4)
    out[:3, :3] = columns * new
    # The first voxel's edge stays where it was: centre moves by half the size difference.
    out[:3, 3] = affine[:3, 3] + columns @ ((new - old) / 2.0)
    return Geometry(out, shape)


def spacing_is_far(geometry: Geometry) -> bool:
    """Whether the voxels are thick slices or very fine, far from the tumour networks' 1 mm (see THICK_MM)."""
    spacing = np.asarray(geometry.spacing)
    thick = spacing.max() >= THICK_MM and spacing.max() >= THICK_RATIO * spacing.min()
    return bool(thick or spacing.min() < FINE_MM)


def same_canonical_grid(a: Geometry, b: Geometry, atol: float = 1e-3) -> bool:
    """Whether two grids have the same canonical shape and canonical affine (one voxel grid in the world)."""
    return a.canonical_shape == b.canonical_shape and bool(np.allclose(a.canonical_affine, b.canonical_affine, atol=atol))


INTERPOLATIONS = ("linear", "bspline")


def resample(volume: np.ndarray, source: Geometry, target: Geometry, transform: RigidTransform | None = None,
             *, labels: bool = False, interpolation: str = "linear") -> np.ndarray:
    """A canonical volume on ``source`` resampled onto ``target``'s canonical grid.

    Args:
        volume: canonical volume on ``source``.
        source: its grid.
        target: the grid wanted.
        transform: maps target-world points to source-world points (identity when None).
        labels: nearest neighbour (labels keep their values); else ``interpolation``. Outside the source: 0.
        interpolation: "linear", or "bspline" (cubic: it smooths less, which the tumour network notices; its
            overshoot at sharp edges is clipped to the source's range of values).
    """
    import SimpleITK as sitk

    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if (transform is None or np.allclose(transform.matrix, np.eye(4), atol=1e-9)) and same_canonical_grid(source, target):
        return np.array(volume, copy=True)
    moving = to_sitk_image(volume if labels else np.asarray(volume, np.float32), source)
    reference = to_sitk_image(np.zeros(target.canonical_shape, np.uint8), target)
    if labels:
        interpolator = sitk.sitkNearestNeighbor
    else:
        interpolator = sitk.sitkBSpline if interpolation == "bspline" else sitk.sitkLinear
    moved = sitk.Resample(moving, reference, (transform or RigidTransform.identity()).to_sitk(), interpolator, 0.0,
                          moving.GetPixelID())
    out = sitk.GetArrayFromImage(moved)
    if not labels and interpolation == "bspline" and np.size(volume):
        low, high = float(np.min(volume)), float(np.max(volume))
        np.clip(out, min(low, 0.0), max(high, 0.0), out=out)  # 0 is what lies outside the source
    return out


def world_points(geometry: Geometry, mask: np.ndarray, limit: int = 20_000) -> np.ndarray:
    """RAS positions (N, 3) of up to ``limit`` voxels of a canonical mask (evenly strided)."""
    index = np.argwhere(mask)
    if len(index) > limit:
        index = index[:: len(index) // limit]
    affine = np.asarray(geometry.canonical_affine)
    return index @ affine[:3, :3].T + affine[:3, 3]
