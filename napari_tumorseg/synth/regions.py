"""Where things are in the template brain: depth below its surface, distance to the ventricles, the midline.

Version-2 phantoms place normal structures by these maps: dura and venous
sinuses at the surface, the falx on the midline, a bright rim and choroid
plexus around and in the ventricles. They are derived once per process from
the shipped tissue maps (:mod:`.anatomy`) on a 2 mm grid over the BraTS field
of view, which is plenty for smooth distance fields and takes a fraction of a
second, and sampled at template positions in mm (the position a phantom
voxel takes its anatomy from, see :class:`~.points.BrainPoints`).

Template positions are mm from the corner of the field of view in the
canonical (z, y, x) = (S, P, L) layout; the template is symmetric and centred,
so its midline is the plane x = :data:`MIDLINE_MM`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from .anatomy import BRAIN_THRESHOLD, _load_resource
from .grid import FIELD_OF_VIEW_MM

if TYPE_CHECKING:
    import torch

STEP_MM = 2.0
MIDLINE_MM = FIELD_OF_VIEW_MM[2] / 2.0
# Ventricles: CSF this deep below the brain's surface, in pieces at least this big.
VENTRICLE_DEPTH_MM, VENTRICLE_MIN_ML = 10.0, 0.3
MAPS: tuple[str, ...] = ("depth", "ventricle", "inward_z", "inward_y", "inward_x")


@dataclass(frozen=True, eq=False)
class Regions:
    """Distance maps of the template on a 2 mm grid.

    Args:
        maps: (1, 5, z, y, x) float32 tensor: depth below the brain's surface (mm,
            0 outside), signed distance to the ventricles (mm, negative inside),
            and the unit direction in which the depth grows (z, y, x).
        ventricle_centre_mm: (3,) centroid of the ventricles.
    """

    maps: torch.Tensor
    ventricle_centre_mm: np.ndarray

    def sample(self, position_mm: np.ndarray) -> np.ndarray:
        """The maps at template positions (3, N) in mm, linearly; (5, N) float32 in :data:`MAPS` order.

        Outside the field of view the maps hold their border values.
        """
        return _sample_mm(self.maps, position_mm, STEP_MM)


def _sample_mm(volume: torch.Tensor, position_mm: np.ndarray, step_mm: float) -> np.ndarray:
    """(1, C, z, y, x) grid, node i at ``(i + 0.5) * step_mm``, at positions (3, N) mm -> (C, N) float32."""
    import torch
    import torch.nn.functional as F

    size = np.asarray(volume.shape[2:], dtype=np.float32)
    scale = (2.0 / np.maximum(size - 1.0, 1.0)).astype(np.float32)
    grid = np.empty((position_mm.shape[1], 3), dtype=np.float32)
    for axis in range(3):  # grid_sample wants (x, y, z) in [-1, 1], corner nodes at -1 and 1
        grid[:, 2 - axis] = (position_mm[axis] / np.float32(step_mm) - 0.5) * scale[axis] - 1.0
    with torch.inference_mode():
        out = F.grid_sample(volume, torch.from_numpy(grid).view(1, 1, 1, -1, 3), mode="bilinear",
                            padding_mode="border", align_corners=True)
    return out.view(volume.shape[1], -1).numpy()


def sample_grid_mm(fields: np.ndarray, position_mm: np.ndarray, step_mm: float = STEP_MM) -> np.ndarray:
    """Fields on a grid whose node i sits at ``(i + 0.5) * step_mm``, at positions (3, N) mm, linearly.

    Args:
        fields: (z, y, x) one field, or (C, z, y, x) several sampled together (cheaper).
        position_mm: (3, N) positions.
        step_mm: the grid's node spacing.

    Returns:
        (N,) or (C, N) float32.
    """
    import torch

    stacked = fields if fields.ndim == 4 else fields[None]
    volume = torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32))[None]
    out = _sample_mm(volume, position_mm, step_mm)
    return out if fields.ndim == 4 else out[0]


def grid_shape(step_mm: float = STEP_MM) -> tuple[int, int, int]:
    """Nodes of a grid of this step over the field of view."""
    return tuple(int(np.ceil(f / step_mm)) for f in FIELD_OF_VIEW_MM)


def _coarse_tissue() -> np.ndarray:
    """GM, WM, CSF fractions averaged onto the 2 mm grid, (3, z, y, x) float32."""
    full = _load_resource().astype(np.float32) / np.float32(255.0)
    shape = tuple(int(np.ceil(f / STEP_MM)) for f in FIELD_OF_VIEW_MM)
    padded = np.zeros((3, *(n * 2 for n in shape)), dtype=np.float32)
    padded[:, : full.shape[1], : full.shape[2], : full.shape[3]] = full
    return padded.reshape(3, shape[0], 2, shape[1], 2, shape[2], 2).mean(axis=(2, 4, 6))


@lru_cache(maxsize=1)
def load_regions() -> Regions:
    """The template's region maps (computed on first use, then cached)."""
    import torch

    gm, wm, csf = _coarse_tissue()
    brain = gm + wm + csf >= BRAIN_THRESHOLD
    depth = ndi.distance_transform_edt(brain, sampling=STEP_MM).astype(np.float32)
    deep_csf = (csf >= 0.5) & (depth >= VENTRICLE_DEPTH_MM)
    pieces, count = ndi.label(deep_csf)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1) * STEP_MM**3 / 1000.0
    keep = sizes >= VENTRICLE_MIN_ML
    keep[0] = False
    ventricles = keep[pieces]
    signed = ndi.distance_transform_edt(~ventricles, sampling=STEP_MM) - ndi.distance_transform_edt(
        ventricles, sampling=STEP_MM
    )
    centre = (np.argwhere(ventricles).mean(axis=0) + 0.5) * STEP_MM
    inward = np.stack(np.gradient(ndi.gaussian_filter(depth, 1.0)))
    inward /= np.maximum(np.sqrt((inward**2).sum(axis=0)), 1e-6)
    maps = np.concatenate([depth[None], signed[None].astype(np.float32), inward.astype(np.float32)])[None]
    return Regions(maps=torch.from_numpy(np.ascontiguousarray(maps)), ventricle_centre_mm=centre.astype(np.float32))
