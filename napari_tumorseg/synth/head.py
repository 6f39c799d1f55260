"""Whole-head phantoms: a version-2 phantom with skull, scalp, eyes, face and neck around its brain.

:func:`make_head` is a separate function, not an option of version 2: the
phantom inside is exactly what ``generate_phantom(domain, seed, version="2")``
makes (same arrays, same fingerprint), and the head is added from its own
random stream. The brain keeps the phantom's voxels; every other voxel of a
larger field of view (the neck below, the vertex above) gets a head tissue
(:mod:`.head_layout`) rendered with the same scanner as the brain: each
sequence's contrast curve, scale, noise and blur, and its bias field carried
on smoothly beyond the brain. The tissue signals are drawn per head and per
sequence from wide ranges relative to white matter (set by eye from the
appearance of clinical scans), in the SynthSeg way: a network must not rely
on one contrast to find the brain.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..io.case import MODALITIES, Case, Geometry
from .appearance import coil_log_gain
from .generate import Phantom, generate_phantom
from .grid import BRATS_SHAPE
from .head_layout import (
    AIR, BONE, BRAIN, CORD, CSF, DEFAULT_PADDING_MM, EYE, FAT, MARROW, MUSCLE, SKIN, SOFT,
    HeadDraws, _interpolate_separable, head_layout,
)

HEAD_VERSION = "2"  # 2: the coil gain (and its fall-off) carried over the head; bump when the same (domain, seed, shape) would give a different head
# class -> (flair, t1, t2) signal ranges relative to white matter (log-uniform draws).
HEAD_SIGNALS: dict[int, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    BONE: ((0.02, 0.15), (0.02, 0.15), (0.02, 0.15)),
    MARROW: ((0.5, 1.6), (0.7, 1.9), (0.45, 1.5)),
    MUSCLE: ((0.4, 0.95), (0.5, 0.9), (0.3, 0.85)),
    FAT: ((0.7, 2.0), (1.1, 2.4), (0.8, 2.2)),
    SKIN: ((0.5, 1.2), (0.55, 1.1), (0.6, 1.4)),
    EYE: ((0.05, 0.45), (0.1, 0.45), (1.5, 3.6)),
    SOFT: ((0.6, 1.4), (0.55, 1.0), (0.8, 2.0)),
}
T1C_UPTAKE = {MUSCLE: (0.01, 0.3), SKIN: (0.05, 0.5), SOFT: (0.2, 1.5), MARROW: (0.01, 0.3)}
FAT_SUPPRESSION = {"flair": 0.15, "t1c": 0.3, "t2": 0.2}  # chance that a sequence suppresses fat


@dataclass(eq=False)
class HeadPhantom:
    """A head, the phantom inside it, and the truth a brain extraction is scored against.

    Args:
        case: the head's images and the tumour mask on the head grid (a larger field of view).
        brain: boolean brain mask on the head grid: the phantom's skull-stripped brain.
        classes: uint8 tissue class per voxel (see ``head_layout.CLASS_NAMES``).
        phantom: the version-2 phantom inside, unchanged.
        draws: the head's sizes.
        offset: canonical index of the phantom grid's first voxel on the head grid.
    """

    case: Case
    brain: np.ndarray
    classes: np.ndarray
    phantom: Phantom
    draws: HeadDraws
    offset: tuple[int, int, int]

    def stripped(self) -> Case:
        """The same head skull-stripped: 0 outside the brain, as a BraTS case is."""
        images = {m: np.where(self.brain, v, 0).astype(np.float32) for m, v in self.case.images.items()}
        return Case(self.case.name, images, self.case.geometry, self.case.label, self.case.label_convention)


def head_stream(domain: str, seed: int) -> np.random.Generator:
    """The head's own random stream (the phantom's streams are left as version 2 draws them)."""
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(b"head"), zlib.crc32(domain.encode()), int(seed)]))


def head_geometry(phantom_geometry: Geometry, offset: tuple[int, int, int], shape: tuple[int, int, int]) -> Geometry:
    """The head grid: the phantom's canonical grid extended by ``offset`` voxels before it, stored canonically."""
    shift = np.eye(4)
    shift[:3, 3] = -np.asarray(offset, dtype=np.float64)
    return Geometry(phantom_geometry.canonical_affine @ shift, shape)


def make_head(
    domain: str,
    seed: int,
    *,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    padding_mm: tuple[float, float, float, float] = DEFAULT_PADDING_MM,
) -> HeadPhantom:
    """A version-2 phantom inside a whole head.

    Args:
        domain: "glioma" or "metastasis".
        seed: the phantom's seed (the same as ``generate_phantom``'s).
        shape: the phantom grid over the BraTS field of view (smaller shapes have larger voxels).
        padding_mm: head added below, above, front/back and each side of that field of view.
    """
    phantom = generate_phantom(domain, seed, shape=shape, version="2")
    spacing = np.asarray(phantom.case.geometry.spacing)
    below, above, side_y, side_x = (int(round(p / s)) for p, s in
                                    zip(padding_mm, (spacing[0], spacing[0], spacing[1], spacing[2])))
    offset = (below, side_y, side_x)
    head_shape = (shape[0] + below + above, shape[1] + 2 * side_y, shape[2] + 2 * side_x)
    inner = tuple(slice(o, o + n) for o, n in zip(offset, shape))
    inside = np.zeros(shape, dtype=bool)
    inside.reshape(-1)[phantom.points.flat] = True
    brain = np.zeros(head_shape, dtype=bool)
    brain[inner] = inside
    rng = head_stream(domain, seed)
    classes, draws = head_layout(brain, spacing, rng)
    images = {}
    log_bias = _bias_fields(phantom, head_shape, inner, spacing)
    for modality, source in phantom.case.images.items():
        head = render_head(classes, modality, phantom, log_bias[modality], spacing, rng)
        head[inner] = np.where(brain[inner], source, head[inner])
        images[modality] = head
    label = np.zeros(head_shape, dtype=np.uint8)
    label[inner] = phantom.case.label
    geometry = head_geometry(phantom.case.geometry, offset, head_shape)
    case = Case(phantom.case.name, images, geometry, label, phantom.case.label_convention)
    return HeadPhantom(case, brain, classes, phantom, draws, offset)


def _signals(rng: np.random.Generator, phantom: Phantom, modality: str) -> np.ndarray:
    """Signal (WM units) of every head class in one sequence: a lookup table indexed by class."""
    appearance = phantom.contrast.signal
    base = "t1" if modality == "t1c" else modality
    column = ("flair", "t1", "t2").index(base)
    table = np.zeros(16, dtype=np.float32)
    for tissue, ranges in HEAD_SIGNALS.items():
        low, high = ranges[column]
        table[tissue] = np.exp(rng.uniform(np.log(low), np.log(high)))
    if modality == "t1c":
        for tissue, (low, high) in T1C_UPTAKE.items():
            table[tissue] += np.exp(rng.uniform(np.log(low), np.log(high)))
    if rng.random() < FAT_SUPPRESSION.get(modality, 0.0):
        table[FAT] *= rng.uniform(0.08, 0.3)
        table[MARROW] *= rng.uniform(0.3, 0.6)
    table[CSF] = appearance[modality]["csf"]
    table[CORD] = appearance[modality]["wm"] * rng.uniform(0.85, 1.05)
    table[AIR] = 0.0
    return table


def _bias_fields(phantom: Phantom, shape: tuple[int, int, int], inner: tuple[slice, ...],
                 spacing: np.ndarray) -> dict[str, np.ndarray]:
    """Each sequence's log gain inside the brain (the phantom's own: coil bias, regional variation, the coil's
    fall-off towards the neck), carried on smoothly over the whole head.

    The phantom knows its gain only at brain voxels; a normalised convolution
    on a 4 mm grid extends it without a step at the brain's edge (a step would
    tell a network where the brain ends).
    """
    points = phantom.points
    factor = np.maximum(np.round(4.0 / spacing).astype(int), 1)
    coarse_shape = tuple(int(np.ceil(n / f)) + 1 for n, f in zip(shape, factor))
    index = points.index + np.array([s.start for s in inner])[:, None]
    cell = np.ravel_multi_index(tuple(index // factor[:, None]), coarse_shape)
    weight = np.bincount(cell, minlength=int(np.prod(coarse_shape))).astype(np.float32)
    coords = [(np.arange(n) + 0.5) / f - 0.5 for n, f in zip(shape, factor)]
    coords = [np.clip(c, 0, m - 1) for c, m in zip(coords, coarse_shape)]
    smooth_weight = ndi.gaussian_filter(weight.reshape(coarse_shape), 4.0, mode="nearest")
    fields = {}
    height_mm = (points.index[0] + np.float32(0.5)) * np.float32(spacing[0])
    for modality, scanner in phantom.scanners.items():
        log_bias = coil_log_gain(scanner, points.extra[:2], points.extra[2 + MODALITIES.index(modality)], height_mm)
        total = np.bincount(cell, weights=log_bias, minlength=weight.size).reshape(coarse_shape)
        smooth = ndi.gaussian_filter(total.astype(np.float32), 4.0, mode="nearest")
        coarse = smooth / np.maximum(smooth_weight, 1e-6)
        coarse[smooth_weight < 1e-3] = float(np.average(log_bias))
        fields[modality] = _interpolate_separable(coarse.astype(np.float32), coords)
    return fields


def render_head(classes: np.ndarray, modality: str, phantom: Phantom, log_bias: np.ndarray,
                spacing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One sequence's image of the head outside the brain (brain voxels are left for the phantom's).

    Args:
        classes: tissue classes on the head grid.
        modality: the sequence.
        phantom: the phantom inside (its appearance and this sequence's scanner).
        log_bias: the sequence's log bias on the head grid.
        spacing: voxel size (mm).
        rng: the head's stream.
    """
    from .head_layout import _coarse_field

    scanner = phantom.scanners[modality]
    table = _signals(rng, phantom, modality)
    signal = table[classes]
    signal[classes == BRAIN] = table[CSF]  # what partial volume at the brain's edge mixes with
    texture = _coarse_field(rng, classes.shape, spacing, 6.0)
    signal *= 1.0 + np.float32(0.08) * texture
    sigma = np.maximum(np.asarray(scanner.blur_mm) / spacing, 0.5)  # partial volume at tissue borders
    signal = ndi.gaussian_filter(signal, sigma, mode="constant", truncate=2.5)
    value = np.power(np.maximum(signal, 1e-4), np.float32(scanner.gamma), dtype=np.float32)
    value *= np.exp(log_bias)
    noise = np.float32(scanner.noise)
    real = value + noise * rng.standard_normal(value.shape, dtype=np.float32)
    imaginary = noise * rng.standard_normal(value.shape, dtype=np.float32)
    return (np.sqrt(real * real + imaginary * imaginary) * np.float32(scanner.scale)).astype(np.float32)
