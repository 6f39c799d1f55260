"""The normal brain the phantoms are built on: ICBM152 2009a tissue fractions on the BraTS grid.

The shipped ``resources/anatomy/icbm152_2009a_brats.npz`` (made by
:mod:`.build_anatomy`) holds grey matter, white matter and CSF volume
fractions as uint8 on the 240x240x155 grid in the canonical layout. The brain
is where the three add up to at least one half; outside it the phantom is 0,
as in skull-stripped BraTS volumes. Nothing here needs nilearn.

Sampling the maps through a deformation at every brain voxel is the costliest
step of a phantom, so it runs through ``torch.nn.functional.grid_sample``
(three channels in one pass, three times faster than ``map_coordinates``) on a
float32 copy cropped to the brain.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from ..resources import resource_path
from .grid import BRATS_SHAPE, CoarseGrid, voxel_spacing

if TYPE_CHECKING:
    import torch

RESOURCE = ("anatomy", "icbm152_2009a_brats.npz")
TISSUES: tuple[str, ...] = ("gm", "wm", "csf")
BRAIN_THRESHOLD = 0.5  # summed tissue fraction that counts as brain
CROP_MARGIN_MM = 16.0  # room for the deformation to pull tissue from beyond the template brain


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Tissue fractions on one phantom grid.

    Args:
        tissue: (1, 3, z, y, x) float32 torch tensor of GM, WM, CSF fractions
            (0..1), cropped to the brain plus a margin.
        offset: (3,) voxel index of the crop's first voxel on the phantom grid.
        shape: the phantom grid, canonical (z, y, x).
        spacing: voxel size in mm along (z, y, x).
        coarse: the coarse grid smooth fields of this anatomy live on.
    """

    tissue: torch.Tensor
    offset: np.ndarray
    shape: tuple[int, int, int]
    spacing: np.ndarray
    coarse: CoarseGrid

    def sample(self, index: np.ndarray) -> np.ndarray:
        """Tissue fractions at fractional voxel indices of the phantom grid, linearly.

        Args:
            index: (3, N) fractional (z, y, x) indices; outside the crop gives 0.

        Returns:
            (3, N) float32 fractions, channel-first like every per-voxel array here.
        """
        import torch
        import torch.nn.functional as F

        size = np.asarray(self.tissue.shape[2:], dtype=np.float32)
        # grid_sample wants (x, y, z) in [-1, 1], corner voxels at -1 and 1.
        scale = (2.0 / np.maximum(size - 1.0, 1.0)).astype(np.float32)
        grid = np.empty((index.shape[1], 3), dtype=np.float32)
        for axis in range(3):
            grid[:, 2 - axis] = (index[axis] - self.offset[axis]) * scale[axis] - 1.0
        with torch.inference_mode():
            out = F.grid_sample(
                self.tissue,
                torch.from_numpy(grid).view(1, 1, 1, -1, 3),
                mode="bilinear",
                padding_mode="zeros",
                align_corners=True,
            )
        return out.view(len(TISSUES), -1).numpy()

    def at_coarse_nodes(self, displacement: np.ndarray) -> np.ndarray:
        """Tissue fractions at the coarse nodes after a deformation, (cz, cy, cx, 3) float32.

        Cheap (a few hundred thousand samples): used to choose lesion sites
        and to bound the brain before the full-resolution sampling.

        Args:
            displacement: (cz, cy, cx, 3) backward displacement in mm.
        """
        source = self.coarse.positions_mm + np.moveaxis(displacement, -1, 0)
        index = source.reshape(3, -1) / self.spacing.astype(np.float32)[:, None] - 0.5
        return np.moveaxis(self.sample(index).reshape(len(TISSUES), *self.coarse.shape), 0, -1)


@lru_cache(maxsize=1)
def _load_resource() -> np.ndarray:
    """The 1 mm tissue maps, (3, 155, 240, 240) uint8, read-only."""
    path = resource_path(*RESOURCE)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the anatomy resource is missing; rebuild it with `python -m napari_tumorseg.synth.build_anatomy`"
        )
    with np.load(path) as data:
        tissue = np.stack([data[name] for name in TISSUES])
    if tissue.shape[1:] != BRATS_SHAPE:
        raise ValueError(f"{path}: tissue maps have shape {tissue.shape[1:]}, expected {BRATS_SHAPE}")
    tissue.setflags(write=False)
    return tissue


def _resample(tissue: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Fractions (float32, 0..1) resampled onto a coarser grid over the same field of view."""
    factors = np.asarray(tissue.shape[1:]) / np.asarray(shape)
    # Blur before decimating, so thin cortex averages instead of aliasing.
    sigma = np.maximum(0.0, 0.4 * (factors - 1.0))
    out = np.empty((tissue.shape[0], *shape), dtype=np.float32)
    for channel, volume in enumerate(tissue):
        volume = ndi.gaussian_filter(volume.astype(np.float32) / 255.0, sigma)
        zoomed = ndi.zoom(volume, 1.0 / factors, order=1, grid_mode=True, mode="nearest")
        out[channel] = np.clip(zoomed[: shape[0], : shape[1], : shape[2]], 0.0, 1.0)
    return out


def load_anatomy(shape: tuple[int, int, int] = BRATS_SHAPE) -> Anatomy:
    """The anatomy on a grid of ``shape`` covering the BraTS field of view (cached per shape).

    Args:
        shape: canonical (z, y, x) shape; the BraTS grid by default, smaller for tests.

    Raises:
        FileNotFoundError: the resource file is missing.
        ValueError: a shape with fewer than 8 voxels along an axis.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"phantom shape must be three sizes of at least 8 voxels, got {shape}")
    return _anatomy_for(shape)


@lru_cache(maxsize=4)
def _anatomy_for(shape: tuple[int, int, int]) -> Anatomy:
    import torch

    full = _load_resource()
    spacing = voxel_spacing(shape)
    if shape == BRATS_SHAPE:
        brain = full.sum(axis=0, dtype=np.uint16) >= int(BRAIN_THRESHOLD * 255)
    else:
        full = _resample(full, shape)
        brain = full.sum(axis=0) >= BRAIN_THRESHOLD
    occupied = [np.flatnonzero(brain.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    margin = np.ceil(CROP_MARGIN_MM / spacing).astype(int)
    low = np.array([max(int(o.min()) - m, 0) for o, m in zip(occupied, margin)])
    high = np.array([min(int(o.max()) + 1 + m, n) for o, m, n in zip(occupied, margin, shape)])
    crop = full[:, low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    if crop.dtype == np.uint8:
        crop = crop.astype(np.float32) * np.float32(1.0 / 255.0)
    tensor = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None]
    return Anatomy(tissue=tensor, offset=low.astype(np.float32), shape=shape, spacing=spacing, coarse=CoarseGrid())
