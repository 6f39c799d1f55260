"""The phantom's voxel grid, a coarse grid for smooth fields, and fast sampling between them.

Everything is laid out in the canonical (z, y, x) = (S, P, L) order of
:mod:`napari_tumorseg.io.case`. Positions are in mm from the corner of the
field of view, so the same lesion (in mm) lands at the same place whatever
the voxel size: a smaller ``shape`` covers the BraTS field of view with larger
voxels, it does not crop it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage as ndi

from ..io.case import Geometry

BRATS_SHAPE: tuple[int, int, int] = (155, 240, 240)  # canonical (S, P, L)
FIELD_OF_VIEW_MM: tuple[float, float, float] = (155.0, 240.0, 240.0)
# Real BraTS 2020/2021 files: LPS voxel axes, 1 mm, the y origin at 239 mm.
BRATS_ORIGIN_MM: tuple[float, float, float] = (0.0, 239.0, 0.0)
COARSE_SPACING_MM = 4.0


def voxel_spacing(shape: tuple[int, int, int]) -> np.ndarray:
    """Voxel size in mm along (z, y, x) when ``shape`` covers the BraTS field of view."""
    return np.asarray(FIELD_OF_VIEW_MM, dtype=np.float64) / np.asarray(shape, dtype=np.float64)


def brats_geometry(shape: tuple[int, int, int] = BRATS_SHAPE) -> Geometry:
    """A BraTS-like source grid whose canonical layout has ``shape``.

    The source file is stored like a real BraTS file: voxel axes L, P, S, the
    affine ``diag(-1, -1, 1)`` (times the voxel size) with the BraTS origin.
    For a coarser ``shape`` the voxel centres are placed so the field of view
    is the same as the 1 mm grid's (as a grid-mode resampling would).

    Args:
        shape: canonical (z, y, x) shape.
    """
    sz, sy, sx = voxel_spacing(shape)
    nz, ny, nx = (int(n) for n in shape)
    affine = np.eye(4)
    affine[0, 0], affine[1, 1], affine[2, 2] = -sx, -sy, sz
    # Voxel i's centre sits at 1 mm grid index (i + 0.5) * s - 0.5.
    shift = np.array([0.5 * sx - 0.5, 0.5 * sy - 0.5, 0.5 * sz - 0.5])
    affine[:3, 3] = np.asarray(BRATS_ORIGIN_MM) + np.array([-shift[0], -shift[1], shift[2]])
    return Geometry(affine, (nx, ny, nz))


def voxel_centres_mm(index: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Fine voxel indices (3, N) -> positions in mm (3, N) float32 from the field-of-view corner."""
    return ((index.astype(np.float32) + 0.5) * spacing.astype(np.float32)[:, None]).astype(np.float32)


@dataclass(frozen=True)
class CoarseGrid:
    """Nodes every ``spacing_mm`` over the field of view, for fields that are smooth anyway.

    Node ``n`` sits at ``n * spacing_mm`` mm, the last one at or beyond the
    far edge, so a position ``p`` (mm) has coarse index ``p / spacing_mm``.
    """

    spacing_mm: float = COARSE_SPACING_MM

    @cached_property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(np.ceil(f / self.spacing_mm)) + 1 for f in FIELD_OF_VIEW_MM)

    @cached_property
    def positions_mm(self) -> np.ndarray:
        """Node positions, (3, *shape) float32 in mm."""
        return (np.indices(self.shape, dtype=np.float32) * np.float32(self.spacing_mm)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class _AxisTaps:
    """Two-tap linear interpolation along one axis: ``value = (1 - w) * f[lo] + w * f[lo + 1]``."""

    lower: np.ndarray
    weight: np.ndarray

    @classmethod
    def for_positions(cls, positions_mm: np.ndarray, origin_mm: float, step_mm: float, size: int) -> _AxisTaps:
        u = np.clip((positions_mm - origin_mm) / step_mm, 0.0, size - 1.0)
        lower = np.minimum(u.astype(np.int64), size - 2)
        return cls(lower, (u - lower).astype(np.float32))


class GridSampler:
    """Sample smooth fields of one regular grid at many fine voxels, linearly and separably.

    Because the fine voxels lie on a grid too, trilinear interpolation splits
    into cheap passes: along x and y for every grid plane (small arrays), then
    along z with two gathers per voxel. For millions of voxels this is several
    times faster than ``map_coordinates``, and the gather indices are shared by
    every field sampled on the same grid.

    Only the grid nodes the voxels' box reaches are read, and only the planes
    between them are interpolated: each value is the same arithmetic on the
    same numbers whatever the box, so a tighter box changes no bit, only the
    time (the x-y pass over a whole BraTS plane costs more than the gathers).

    Args:
        index: (3, N) integer fine voxel indices (z, y, x).
        spacing: fine voxel size (mm) along (z, y, x).
        origin_mm: position (mm) of grid node (0, 0, 0).
        step_mm: grid node spacing (mm), the same along every axis.
        grid_shape: number of nodes along (z, y, x).
        box: (low, high) voxel index bounds of ``index`` when the caller knows them
            (e.g. the whole volume), to skip finding them.
    """

    def __init__(
        self,
        index: np.ndarray,
        spacing: np.ndarray,
        origin_mm: np.ndarray,
        step_mm: float,
        grid_shape: tuple[int, int, int],
        box: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.grid_shape = tuple(int(n) for n in grid_shape)
        if min(self.grid_shape) < 2:
            raise ValueError(f"a sampling grid needs at least 2 nodes per axis, got {self.grid_shape}")
        if box is not None:
            low, high = (np.asarray(b, dtype=np.int64) for b in box)
        elif index.shape[1]:
            low, high = index.min(axis=1), index.max(axis=1) + 1
        else:
            low, high = np.zeros(3, dtype=np.int64), np.ones(3, dtype=np.int64)
        centres = [(np.arange(lo, hi) + 0.5) * s for lo, hi, s in zip(low, high, spacing)]
        y = _AxisTaps.for_positions(centres[1], float(origin_mm[1]), step_mm, self.grid_shape[1])
        x = _AxisTaps.for_positions(centres[2], float(origin_mm[2]), step_mm, self.grid_shape[2])
        z_taps = _AxisTaps.for_positions(centres[0], float(origin_mm[0]), step_mm, self.grid_shape[0])
        # The grid nodes the box reaches (taps rise with the position): the rest is never read.
        self._nodes = tuple(slice(int(t.lower[0]), int(t.lower[-1]) + 2) for t in (z_taps, y, x))
        self._y = _AxisTaps(y.lower - self._nodes[1].start, y.weight)
        self._x = _AxisTaps(x.lower - self._nodes[2].start, x.weight)
        plane = int((high[1] - low[1]) * (high[2] - low[2]))
        local_z = index[0] - low[0]
        in_plane = (index[1] - low[1]) * (high[2] - low[2]) + (index[2] - low[2])
        self._below = (z_taps.lower - self._nodes[0].start)[local_z] * plane + in_plane
        self._above = self._below + plane
        self._weight = z_taps.weight[local_z]

    @property
    def size(self) -> int:
        """How many voxels it samples."""
        return int(self._below.size)

    def subset(self, keep: np.ndarray) -> GridSampler:
        """The same sampler for some of its voxels (an index array or boolean mask)."""
        other = object.__new__(GridSampler)
        other.grid_shape, other._nodes, other._x, other._y = self.grid_shape, self._nodes, self._x, self._y
        other._below, other._above, other._weight = self._below[keep], self._above[keep], self._weight[keep]
        return other

    def _planes(self, field: np.ndarray) -> np.ndarray:
        """The x and y passes over the nodes in reach: ``lo + w * (hi - lo)`` along x, then along y."""
        f = np.asarray(field, dtype=np.float32)[self._nodes]
        x, y = self._x, self._y
        # take(), not fancy indexing: its result is row-major, so the passes and the final reshape stay cheap.
        lower = f.take(x.lower, axis=2)
        along_x = f.take(x.lower + 1, axis=2)
        along_x -= lower
        along_x *= x.weight
        along_x += lower
        lower = along_x.take(y.lower, axis=1)
        along_y = along_x.take(y.lower + 1, axis=1)
        along_y -= lower
        along_y *= y.weight[:, None]
        along_y += lower
        return along_y

    def sample(self, field: np.ndarray) -> np.ndarray:
        """One grid field (gz, gy, gx) at the voxels, (N,) float32."""
        along_y = self._planes(field).reshape(-1)
        below = along_y.take(self._below)
        out = along_y.take(self._above)
        out -= below
        out *= self._weight
        out += below
        return out

    def sample_all(self, fields: np.ndarray) -> np.ndarray:
        """Channel-last grid fields (gz, gy, gx, C) at the voxels, (C, N) float32.

        :meth:`sample` per channel: one-dimensional gathers per channel cost
        less than gathering each voxel's channels as a row and transposing.
        """
        channels = np.ascontiguousarray(np.moveaxis(np.asarray(fields, dtype=np.float32), -1, 0))
        out = np.empty((len(channels), self.size), dtype=np.float32)
        for channel, field in enumerate(channels):
            out[channel] = self.sample(field)
        return out


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian white noise blurred by ``sigma`` voxels and rescaled to unit standard deviation.

    Args:
        rng: the random stream.
        shape: grid shape.
        sigma: blur in grid voxels (the correlation length of the field).
    """
    field = rng.standard_normal(shape, dtype=np.float32)
    ndi.gaussian_filter(field, sigma, mode="wrap", output=field)  # in place: each pass buffers its lines anyway
    std = float(field.std())
    if std > 0:
        field /= std
    return field


def ramp(x: np.ndarray, edge: float = 1.0) -> np.ndarray:
    """1 where ``x <= 0``, 0 where ``x >= edge``, linear between."""
    return np.clip(1.0 - x / np.float32(edge), 0.0, 1.0).astype(np.float32, copy=False)
