"""Training data of the brain-mask network: synthetic heads at about 2 mm, and augmented batches of slices.

Each head (:func:`napari_tumorseg.synth.head.make_head` on a 78x120x120 grid,
the BraTS field of view at about 2 mm, plus the neck and vertex) is stored as
its four sequences, normalised as the network sees them and quantised to
uint8, and its brain mask. Heads are made once and kept in a cache folder
(one small file each), so a resumed run does not make them again.

A batch draws, per item, a head, one of its sequences and a slice with its
neighbours; then, on the whole item alike: sometimes the skull stripped away
(the network must also return the brain of a skull-stripped scan) or the air
set to 0 (as some scanners store it), an in-plane rotation, scale, shift and
flip, a random crop, a contrast curve, a smooth bias, and noise. Random
draws are functions of ``(seed, step)``, so a resumed run continues the same.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from ..io.case import MODALITIES

HEAD_SHAPE = (78, 120, 120)  # the phantom grid: the BraTS field of view at about 2 mm
QUANT = 255.0


@dataclass(eq=False)
class HeadSet:
    """Heads ready for training: per head (4, Z, H, W) uint8 images (0 where a sequence is missing) and its mask."""

    images: list[np.ndarray]
    brains: list[np.ndarray]
    names: list[str]

    def __len__(self) -> int:
        return len(self.images)


def head_domain(seed: int) -> str:
    """Even seeds are gliomas, odd ones metastases: both kinds of brain appear."""
    return "glioma" if seed % 2 == 0 else "metastasis"


def _pad_to(array: np.ndarray, multiple: int) -> np.ndarray:
    pad = [(0, 0)] * (array.ndim - 2)
    for n in array.shape[-2:]:
        extra = -n % multiple
        pad.append((extra // 2, extra - extra // 2))
    return np.pad(array, pad)


def make_head_item(seed: int, shape: tuple[int, int, int] = HEAD_SHAPE, multiple: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """One head as training arrays: (4, Z, H, W) uint8 normalised images and (Z, H, W) uint8 brain."""
    from ..prepare.brainnet import INPUT_CLIP, normalise
    from ..synth.head import make_head

    head = make_head(head_domain(seed), seed, shape=shape)
    images = np.zeros((len(MODALITIES), *head.case.shape), dtype=np.uint8)
    for channel, key in enumerate(MODALITIES):
        if key in head.case.images:
            images[channel] = np.rint(normalise(head.case.images[key]) / INPUT_CLIP * QUANT).astype(np.uint8)
    return _pad_to(images, multiple), _pad_to(head.brain.astype(np.uint8), multiple)


def build_head_set(seeds: Sequence[int], cache_dir: str | PathLike[str] | None,
                   on_head: Callable[[int, str], None] | None = None,
                   shape: tuple[int, int, int] = HEAD_SHAPE) -> HeadSet:
    """Make (or read from ``cache_dir``) the heads of ``seeds``.

    Args:
        seeds: head seeds.
        cache_dir: where each head is kept as ``head_<shape>_<seed>.npz``; None keeps nothing.
        on_head: called after each head with its index and name (progress).
        shape: the phantom grid.
    """
    from ..io.atomic import atomic_write_stream
    from ..synth.head import HEAD_VERSION

    images, brains, names = [], [], []
    folder = Path(cache_dir) if cache_dir is not None else None
    tag = "x".join(str(n) for n in shape)
    for index, seed in enumerate(seeds):
        name = f"head_v{HEAD_VERSION}_{tag}_{seed:05d}"
        path = folder / f"{name}.npz" if folder is not None else None
        if path is not None and path.is_file():
            with np.load(path) as stored:
                image, brain = stored["images"], stored["brain"]
        else:
            image, brain = make_head_item(seed, shape)
            if path is not None:
                atomic_write_stream(path, lambda s, i=image, b=brain: np.savez(s, images=i, brain=b),
                                    overwrite=True, make_folder=True)
        images.append(image)
        brains.append(brain)
        names.append(name)
        if on_head is not None:
            on_head(index, name)
    return HeadSet(images, brains, names)


@dataclass(frozen=True)
class BrainAugmentation:
    """What a batch item may go through (probabilities and ranges)."""

    crop: int = 128
    stripped_prob: float = 0.2
    zero_air_prob: float = 0.1
    rotation_deg: float = 20.0
    scale: tuple[float, float] = (0.85, 1.15)
    shift_px: float = 8.0
    flip_prob: float = 0.5
    gamma_log_spread: float = 0.3
    bias_strength: float = 0.4
    noise_max: float = 0.04


def batch_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(b"brain-batch"), seed, step])


def sample_brain_batch(data: HeadSet, step: int, seed: int, batch_size: int, context: int,
                       augmentation: BrainAugmentation) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs (B, 2c+1, crop, crop) float32, targets (B, crop, crop) int64)`` for one step."""
    from ..prepare.brainnet import INPUT_CLIP

    rng = batch_rng(seed, step)
    crop = augmentation.crop
    height, width = data.images[0].shape[2:]
    stacks = np.zeros((batch_size, 2 * context + 2, height, width), dtype=np.float32)
    for item in range(batch_size):
        head = int(rng.integers(len(data)))
        images, brain = data.images[head], data.brains[head]
        present = [c for c in range(images.shape[0]) if images[c].any()]
        channel = present[int(rng.integers(len(present)))]
        z = _draw_slice(rng, brain)
        window = np.arange(z - context, z + context + 1)
        inside = (window >= 0) & (window < images.shape[1])
        planes = stacks[item, :-1]
        planes[inside] = images[channel, window[inside]].astype(np.float32) * np.float32(INPUT_CLIP / QUANT)
        if rng.random() < augmentation.stripped_prob:
            masks = np.zeros_like(planes, dtype=bool)
            masks[inside] = brain[window[inside]] > 0
            planes[~masks] = 0.0
        elif rng.random() < augmentation.zero_air_prob:
            planes[planes < rng.uniform(0.02, 0.08)] = 0.0
        stacks[item, -1] = brain[z]
    warped = _warp(stacks, rng, augmentation, crop)
    inputs = np.stack([_appearance(w[:-1], rng, augmentation) for w in warped])
    return inputs, (warped[:, -1] > 0.5).astype(np.int64)


def _draw_slice(rng: np.random.Generator, brain: np.ndarray, margin: int = 8) -> int:
    """Mostly a slice through the brain or near it (the neck and the air above teach less), else any."""
    depth = brain.shape[0]
    if rng.random() < 0.85:
        rows = np.flatnonzero(brain.any(axis=(1, 2)))
        if rows.size:
            return int(rng.integers(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, depth)))
    return int(rng.integers(depth))


def _warp(stacks: np.ndarray, rng: np.random.Generator, aug: BrainAugmentation, crop: int) -> np.ndarray:
    """Rotate, scale, shift and flip each item in-plane, sampled straight onto a ``crop`` x ``crop`` window."""
    import torch
    import torch.nn.functional as F

    count, _, height, width = stacks.shape
    theta = np.zeros((count, 2, 3), dtype=np.float32)
    for item in range(count):
        angle = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
        scale = rng.uniform(*aug.scale)
        flip = -1.0 if rng.random() < aug.flip_prob else 1.0
        # affine_grid works in [-1, 1] units of the input: a crop covers crop/size of it.
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
        theta[item, :, :2] = rotation @ np.diag([flip * crop / width, crop / height])
        theta[item, :, 2] = rng.uniform(-aug.shift_px, aug.shift_px, 2) * 2.0 / np.array([width, height])
    with torch.no_grad():
        grid = F.affine_grid(torch.from_numpy(theta), [count, 1, crop, crop], align_corners=False)
        out = F.grid_sample(torch.from_numpy(stacks), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.numpy()


def _appearance(planes: np.ndarray, rng: np.random.Generator, aug: BrainAugmentation) -> np.ndarray:
    """Contrast curve, smooth bias, noise and overall scale; zeros (stripped or empty air) stay 0."""
    from ..prepare.brainnet import INPUT_CLIP

    zero = planes <= 0
    unit = np.clip(planes / INPUT_CLIP, 0.0, 1.0) ** np.float32(np.exp(rng.normal(0.0, aug.gamma_log_spread)))
    height, width = planes.shape[1:]
    y, x = np.meshgrid(np.linspace(-1, 1, height, dtype=np.float32), np.linspace(-1, 1, width, dtype=np.float32),
                       indexing="ij")
    terms = np.stack([y, x, y * y, x * x, x * y])
    weights = rng.normal(0.0, aug.bias_strength / 2.0, len(terms)).astype(np.float32)
    unit = unit * np.exp(np.tensordot(weights, terms, axes=1))[None]
    unit = np.abs(unit + rng.normal(0.0, rng.uniform(0.0, aug.noise_max), unit.shape).astype(np.float32))
    out = np.clip(unit * np.float32(INPUT_CLIP * rng.uniform(0.8, 1.25)), 0.0, INPUT_CLIP).astype(np.float32)
    out[zero] = 0.0
    return out
