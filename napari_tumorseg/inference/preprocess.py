"""From a case's volumes to network input, and from predictions back to the case grid.

The same functions serve inference, training and adaptation, so a network
always sees slices prepared the same way:

1. the brain mask is the union over the available modalities of the non-zero
   voxels (skull-stripped BraTS-style data is exactly zero outside the brain);
2. each modality is z-scored over its own non-zero voxels (mean 0, std 1
   there); voxels outside stay 0, as do missing modalities;
3. the volume is cropped to the brain's bounding box plus a margin (slices in
   z, voxels in y and x) and each slice is zero-padded to a multiple of
   ``2**depth``. Outside the brain everything is 0 after step 2, so padding
   adds nothing the full slice would not have shown;
4. :func:`slices_to_input` stacks, for each slice, the modalities of the slice
   and of its ``context`` neighbours on each side (zeros beyond the volume),
   then one constant availability plane per modality.

:meth:`CropBox.uncrop` puts a prediction back on the full grid (background
outside the crop); it is the exact inverse of :meth:`CropBox.crop` inside it.
Numpy only: no torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..io.case import MODALITIES, Case

# Below this the modality is flat inside the brain; divide by 1 instead of noise.
_MIN_STD = 1e-6


@dataclass(frozen=True)
class CropBox:
    """A box of the canonical grid, padded in-plane to a multiple of the network's stride.

    Args:
        start: first (z, y, x) voxel of the box.
        stop: one past the last (z, y, x) voxel of the box.
        padded_hw: (H, W) of the padded slices, each a multiple of the stride, >= the box.
        full_shape: the canonical (Z, Y, X) grid the box lies in.
    """

    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    padded_hw: tuple[int, int]
    full_shape: tuple[int, int, int]

    @property
    def shape(self) -> tuple[int, int, int]:
        """The unpadded (z, y, x) size of the box."""
        return tuple(b - a for a, b in zip(self.start, self.stop))

    @property
    def padded_shape(self) -> tuple[int, int, int]:
        return (self.shape[0], *self.padded_hw)

    @property
    def offset_yx(self) -> tuple[int, int]:
        """Where the box starts inside a padded slice (the padding is split evenly)."""
        _, h, w = self.shape
        return ((self.padded_hw[0] - h) // 2, (self.padded_hw[1] - w) // 2)

    def _inner(self) -> tuple[slice, slice]:
        (oy, ox), (_, h, w) = self.offset_yx, self.shape
        return slice(oy, oy + h), slice(ox, ox + w)

    def _outer(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop))

    def crop(self, volume: np.ndarray, fill: float = 0) -> np.ndarray:
        """``(..., Z, Y, X)`` on the full grid -> ``(..., z, H, W)`` cropped and padded with ``fill``."""
        volume = np.asarray(volume)
        if volume.shape[-3:] != self.full_shape:
            raise ValueError(f"volume grid {volume.shape[-3:]} is not the crop's grid {self.full_shape}")
        out = np.full((*volume.shape[:-3], *self.padded_shape), fill, dtype=volume.dtype)
        out[(..., slice(None), *self._inner())] = volume[(..., *self._outer())]
        return out

    def uncrop(self, cropped: np.ndarray, fill: float | np.ndarray = 0) -> np.ndarray:
        """``(..., z, H, W)`` -> ``(..., Z, Y, X)``, ``fill`` outside the box; inverse of :meth:`crop`.

        ``fill`` is a scalar or one value per leading index (e.g. per class:
        probability 1 for background, 0 for the tumour classes).
        """
        cropped = np.asarray(cropped)
        if cropped.shape[-3:] != self.padded_shape:
            raise ValueError(f"array grid {cropped.shape[-3:]} is not the padded crop {self.padded_shape}")
        out = _filled((*cropped.shape[:-3], *self.full_shape), fill, cropped.dtype)
        out[(..., *self._outer())] = cropped[(..., slice(None), *self._inner())]
        return out

    def uncrop_slices(self, cropped: np.ndarray, fill: float | np.ndarray = 0) -> np.ndarray:
        """``(..., n, H, W)`` padded slices -> ``(..., n, Y, X)`` full-grid slices (any n)."""
        cropped = np.asarray(cropped)
        _, full_y, full_x = self.full_shape
        out = _filled((*cropped.shape[:-2], full_y, full_x), fill, cropped.dtype)
        out[(..., *self._outer()[1:])] = cropped[(..., *self._inner())]
        return out


def _filled(shape: tuple[int, ...], fill: float | np.ndarray, dtype: np.dtype) -> np.ndarray:
    fill = np.asarray(fill, dtype=dtype)
    out = np.empty(shape, dtype=dtype)
    out[...] = fill.reshape(fill.shape + (1, 1, 1))
    return out


@dataclass(frozen=True)
class PreprocessPlan:
    """Everything needed to prepare any slice of a volume, computed once from the whole volume.

    Args:
        crop: the brain's bounding box (plus margin), padded.
        mean: (4,) per-modality mean over its non-zero voxels (0 where missing).
        std: (4,) per-modality standard deviation there (1 where missing or flat).
        availability: (4,) 1.0 for present modalities, 0.0 for missing ones.
        brain_slices: (z,) for each slice of the crop, whether it holds any brain.
    """

    crop: CropBox
    mean: np.ndarray
    std: np.ndarray
    availability: np.ndarray
    brain_slices: np.ndarray

    @property
    def empty(self) -> bool:
        """No brain at all (every modality is zero): the segmentation is all background."""
        return not bool(self.brain_slices.any())


@dataclass(frozen=True)
class PreparedVolume:
    """A normalised, cropped, padded ``(4, z, H, W)`` float32 volume and its plan."""

    images: np.ndarray
    plan: PreprocessPlan

    @property
    def availability(self) -> np.ndarray:
        return self.plan.availability

    @property
    def crop(self) -> CropBox:
        return self.plan.crop


Channels = Sequence[np.ndarray | None]


def case_channels(case: Case) -> list[np.ndarray | None]:
    """The case's volumes in network channel order, None where a modality is missing (no copy)."""
    return [case.images.get(key) for key in MODALITIES]


def stacked_channels(images: np.ndarray, availability: np.ndarray) -> list[np.ndarray | None]:
    """A ``(4, Z, Y, X)`` array and its ``(4,)`` availability -> per-channel views."""
    if images.ndim != 4 or images.shape[0] != len(MODALITIES) or len(availability) != len(MODALITIES):
        raise ValueError(f"expected (4, Z, Y, X) images and (4,) availability, got {images.shape}, {len(availability)}")
    return [images[c] if availability[c] else None for c in range(len(MODALITIES))]


def _span(any_along: np.ndarray, margin: int) -> tuple[int, int]:
    hits = np.flatnonzero(any_along)
    if hits.size == 0:
        return 0, 0
    return max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, any_along.size)


def _round_up(value: int, multiple: int) -> int:
    # At least two strides: the deepest level then has 2x2 values, which its normalisation needs
    # (a tiny brain box, a few voxels bright in an empty volume, must not crash the network).
    return max(2 * multiple, -(-value // multiple) * multiple)


def plan_preprocessing(channels: Channels, *, multiple: int, margin: int = 4) -> PreprocessPlan:
    """Brain box and per-modality statistics of a volume.

    Args:
        channels: one canonical (Z, Y, X) volume per modality, in MODALITIES
            order, None for a missing one (at least one present).
        multiple: padded H and W are multiples of this (the network's 2**depth).
        margin: voxels (and slices) kept around the brain's bounding box.
    """
    present = [c for c in channels if c is not None]
    if len(channels) != len(MODALITIES) or not present:
        raise ValueError(f"expected {len(MODALITIES)} channels with at least one present")
    full_shape = present[0].shape
    brain = np.zeros(full_shape, dtype=bool)
    mean = np.zeros(len(MODALITIES), dtype=np.float32)
    std = np.ones(len(MODALITIES), dtype=np.float32)
    for index, volume in enumerate(channels):
        if volume is None:
            continue
        if volume.shape != full_shape:
            raise ValueError(f"channel {MODALITIES[index]} has shape {volume.shape}, expected {full_shape}")
        nonzero = volume != 0
        brain |= nonzero
        values = volume[nonzero]
        if values.size:
            mean[index] = values.mean(dtype=np.float64)
            std[index] = max(float(values.std(dtype=np.float64)), _MIN_STD)
    z_any = brain.any(axis=(1, 2))
    y_any = brain.any(axis=(0, 2))
    x_any = brain.any(axis=(0, 1))
    spans = [_span(z_any, margin), _span(y_any, margin), _span(x_any, margin)]
    start = tuple(a for a, _ in spans)
    stop = tuple(b for _, b in spans)
    padded_hw = (_round_up(stop[1] - start[1], multiple), _round_up(stop[2] - start[2], multiple))
    crop = CropBox(start=start, stop=stop, padded_hw=padded_hw, full_shape=tuple(full_shape))
    availability = np.array([c is not None for c in channels], dtype=np.float32)
    return PreprocessPlan(crop, mean, std, availability, brain_slices=z_any[start[0] : stop[0]].copy())


def normalized_slices(channels: Channels, plan: PreprocessPlan, slices: Sequence[int] | None = None) -> np.ndarray:
    """Z-scored, cropped, padded ``(4, n, H, W)`` float32 for crop-relative slice indices (default all)."""
    crop = plan.crop
    z0 = crop.start[0]
    wanted = np.arange(crop.shape[0]) if slices is None else np.asarray(slices, dtype=int)
    out = np.zeros((len(MODALITIES), len(wanted), *crop.padded_hw), dtype=np.float32)
    if len(wanted) == 0:
        return out
    inner_y, inner_x = crop._inner()
    outer_y, outer_x = crop._outer()[1:]
    for index, volume in enumerate(channels):
        if volume is None:
            continue
        block = volume[z0 + wanted][:, outer_y, outer_x].astype(np.float32, copy=False)
        normalized = (block - plan.mean[index]) / plan.std[index]
        out[index, :, inner_y, inner_x] = np.where(block != 0, normalized, 0.0)
    return out


def prepare_channels(channels: Channels, *, multiple: int, margin: int = 4) -> PreparedVolume:
    """Plan and normalise the whole cropped volume."""
    plan = plan_preprocessing(channels, multiple=multiple, margin=margin)
    return PreparedVolume(images=normalized_slices(channels, plan), plan=plan)


def prepare_case(case: Case, *, multiple: int, margin: int = 4) -> PreparedVolume:
    """:func:`prepare_channels` for a Case; crop its reference with ``prepared.crop.crop(case.label)``."""
    return prepare_channels(case_channels(case), multiple=multiple, margin=margin)


def slices_to_input(
    case_arrays: np.ndarray, availability: np.ndarray, indices: Sequence[int], context: int = 0
) -> np.ndarray:
    """A network input batch ``(B, (2 * context + 1) * 4 + 4, H, W)`` float32.

    Args:
        case_arrays: ``(4, z, H, W)`` prepared images (e.g. ``PreparedVolume.images``).
        availability: ``(4,)`` 1 for present modalities, 0 for missing ones.
        indices: slices (along z of ``case_arrays``) to put in the batch.
        context: neighbours on each side; beyond the volume they are zeros
            (what lies there is background, which is 0 after normalisation).

    Channel order: for offsets -context..+context, the four modalities of
    that slice; then the four availability planes.
    """
    num_mod, depth, height, width = case_arrays.shape
    indices = np.asarray(indices, dtype=int)
    if indices.size and (indices.min() < 0 or indices.max() >= depth):
        raise IndexError(f"slice indices must be in [0, {depth}), got {indices.min()}..{indices.max()}")
    window = 2 * context + 1
    out = np.zeros((len(indices), window * num_mod + num_mod, height, width), dtype=np.float32)
    for slot, offset in enumerate(range(-context, context + 1)):
        source = indices + offset
        inside = (source >= 0) & (source < depth)
        if inside.any():
            block = case_arrays[:, source[inside]]  # (4, b, H, W)
            out[inside, slot * num_mod : (slot + 1) * num_mod] = block.transpose(1, 0, 2, 3)
    out[:, window * num_mod :] = np.asarray(availability, dtype=np.float32)[None, :, None, None]
    return out
