"""Where the tissues of a whole head lie around a phantom's brain: skull, scalp, eyes, face, neck.

Clinical scans show the head, not a skull-stripped brain. A brain-extraction
network trained on phantoms must see what surrounds the brain on a real scan,
and learn where the brain ends. The layout is built in the phantom's own
(canonical, posed and deformed) space from the phantom's brain mask, so the
layers always fit the brain they surround:

- around the brain, by distance from its closed surface: the extra-cerebral
  CSF and meninges, the inner table of the skull, the diploe (marrow), the
  outer table, then the scalp (galea and temporalis muscle, fat, skin);
- below it, a face and neck that narrow towards the bottom of the field of
  view: soft tissue, fat, bone and air spaces (sinuses, pharynx) laid out by
  smooth random fields; the eyes in their orbital fat under the frontal lobes;
  the spinal cord continuing the brainstem in its CSF sleeve and vertebral canal.

Thicknesses and positions are drawn per head within ranges set by eye from
anatomy atlases (not fitted to any scan). Everything here is numpy/scipy on
the phantom grid; :mod:`.head_render` turns the class map into images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

# Tissue classes of the head outside the brain (0 is air, BRAIN the phantom's brain).
AIR, BRAIN, CSF, BONE, MARROW, MUSCLE, FAT, SKIN, EYE, SOFT, CORD = range(11)
CLASS_NAMES = ("air", "brain", "csf", "bone", "marrow", "muscle", "fat", "skin", "eye", "soft", "cord")
# mm of head added around the BraTS field of view (z below, z above, y each side, x each side).
DEFAULT_PADDING_MM = (60.0, 24.0, 16.0, 12.0)
COARSE_MM = 4.0  # smooth random fields are drawn on this grid, then interpolated


@dataclass(frozen=True)
class HeadDraws:
    """The random sizes of one head, in mm (kept for reports and tests)."""

    csf: float
    inner_table: float
    diploe: float
    outer_table: float
    galea: float
    temporalis: float
    fat: float
    skin: float
    eye_radius: float
    eye_depth: float
    eye_drop: float
    eye_separation: float
    cord_radius: float
    neck_narrowing: float


def sample_head_draws(rng: np.random.Generator) -> HeadDraws:
    """Draw one head's layer thicknesses and landmark offsets.

    Args:
        rng: the head's own stream.
    """
    u = rng.uniform
    return HeadDraws(
        csf=u(0.6, 3.5), inner_table=u(1.0, 2.5), diploe=u(0.5, 6.0), outer_table=u(1.0, 2.5),
        galea=u(0.8, 3.0), temporalis=u(4.0, 14.0), fat=u(1.5, 8.0), skin=u(1.0, 2.5),
        eye_radius=u(10.5, 13.0), eye_depth=u(-4.0, 8.0), eye_drop=u(10.0, 20.0), eye_separation=u(28.0, 35.0),
        cord_radius=u(4.0, 6.0), neck_narrowing=u(0.55, 0.8),
    )


def _coarse_field(rng: np.random.Generator, shape: tuple[int, ...], spacing: np.ndarray, length_mm: float) -> np.ndarray:
    """Smooth unit-variance noise on the full grid, drawn on a coarse grid (cheap at any resolution)."""
    from .grid import smooth_noise

    factor = np.maximum(COARSE_MM / spacing, 1.0)
    coarse_shape = tuple(int(np.ceil(n / f)) + 2 for n, f in zip(shape, factor))
    field = smooth_noise(rng, coarse_shape, length_mm / COARSE_MM)
    coords = [(np.arange(n) + 0.5) / f for n, f in zip(shape, factor)]
    return _interpolate_separable(field, coords)


def _interpolate_separable(field: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Linear interpolation of a coarse field at a regular grid of fractional indices, one axis at a time."""
    out = field.astype(np.float32)
    for axis, c in enumerate(coords):
        lower = np.clip(np.floor(c).astype(int), 0, out.shape[axis] - 2)
        weight = (c - lower).astype(np.float32)
        shape = [1] * out.ndim
        shape[axis] = -1
        a, b = np.take(out, lower, axis=axis), np.take(out, lower + 1, axis=axis)
        out = a + weight.reshape(shape) * (b - a)
    return out


def distance_outside(mask: np.ndarray, spacing: np.ndarray, step_mm: float = 2.0) -> np.ndarray:
    """Distance (mm) from ``mask`` for every voxel outside it (0 inside), computed at about ``step_mm``.

    A distance field is smooth, so computing it on a coarser grid and
    interpolating back keeps it within a fraction of a voxel at a small cost.
    """
    factor = np.maximum(np.floor(step_mm / spacing + 1e-6).astype(int), 1)
    if (factor == 1).all():
        return ndi.distance_transform_edt(~mask, sampling=spacing).astype(np.float32)
    padded = [int(np.ceil(n / f)) * f for n, f in zip(mask.shape, factor)]
    grown = np.zeros(padded, dtype=bool)
    grown[: mask.shape[0], : mask.shape[1], : mask.shape[2]] = mask
    blocks = grown.reshape(padded[0] // factor[0], factor[0], padded[1] // factor[1], factor[1],
                           padded[2] // factor[2], factor[2])
    coarse = blocks.mean(axis=(1, 3, 5)) >= 0.5
    distance = ndi.distance_transform_edt(~coarse, sampling=spacing * factor).astype(np.float32)
    coords = [np.clip((np.arange(n) + 0.5) / f - 0.5, 0, m - 1) for n, f, m in zip(mask.shape, factor, coarse.shape)]
    if min(coarse.shape) < 2:
        return np.zeros(mask.shape, np.float32)
    out = _interpolate_separable(distance, coords)
    out[mask] = 0.0
    return out


def _landmarks(brain: np.ndarray, spacing: np.ndarray, draws: HeadDraws) -> dict[str, np.ndarray]:
    """Eye centres and the cord's entry point, in voxel indices, from the brain's own shape."""
    z, y, x = np.nonzero(brain)
    mid_x = float(np.median(x))
    lowest = z <= z.min() + max(1, int(round(4.0 / spacing[0])))
    cord_top = np.array([z.min(), np.median(y[lowest]), np.median(x[lowest])], dtype=float)
    # The frontal lobes' base: the lowest brain voxel among the most anterior 25 mm.
    front = y.min()
    anterior = y <= front + 25.0 / spacing[1]
    base_z = float(z[anterior].min())
    eyes = []
    for side in (-1.0, 1.0):
        eyes.append(np.array([
            base_z - draws.eye_drop / spacing[0],
            front + draws.eye_depth / spacing[1],
            mid_x + side * draws.eye_separation / spacing[2],
        ]))
    return {"eyes": np.stack(eyes), "cord_top": cord_top, "base_z": np.array(base_z), "mid_x": np.array(mid_x)}


def _ellipsoid(shape: tuple[int, int, int], spacing: np.ndarray, centre: np.ndarray, radii_mm: np.ndarray) -> np.ndarray:
    """Boolean ellipsoid, computed inside its bounding box only."""
    out = np.zeros(shape, dtype=bool)
    low = np.maximum(np.floor(centre - radii_mm / spacing).astype(int), 0)
    high = np.minimum(np.ceil(centre + radii_mm / spacing).astype(int) + 1, shape)
    if (high <= low).any():
        return out
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(low, high))]
    inside = sum(((g - c) * s / r) ** 2 for g, c, s, r in zip(grids, centre, spacing, radii_mm)) <= 1.0
    out[tuple(slice(a, b) for a, b in zip(low, high))] = inside
    return out


def _lower_head(shape: tuple[int, int, int], spacing: np.ndarray, brain: np.ndarray, marks: dict,
                draws: HeadDraws, shell: float) -> np.ndarray:
    """Face and neck: elliptic cross-sections below the cranium, narrowing towards the neck."""
    z, y, x = np.nonzero(brain)
    centre_y, centre_x = float(y.mean()), float(x.mean())
    half_y = 0.5 * (y.max() - y.min()) * spacing[1] + shell
    half_x = 0.5 * (x.max() - x.min()) * spacing[2] + shell
    top = float(marks["base_z"]) + 10.0 / spacing[0]
    out = np.zeros(shape, dtype=bool)
    yy, xx = np.ogrid[: shape[1], : shape[2]]
    for k in range(0, min(int(top) + 1, shape[0])):
        below_mm = (top - k) * spacing[0]
        t = np.clip(below_mm / 90.0, 0.0, 1.0)  # 0 at the skull base, 1 at the neck
        narrow = 1.0 - (1.0 - draws.neck_narrowing) * t
        ry, rx = 0.92 * half_y * narrow, 0.82 * half_x * narrow
        cy = centre_y + (t * 0.2 * half_y - 0.1 * half_y * (1 - t)) / spacing[1]
        out[k] = ((yy - cy) * spacing[1] / ry) ** 2 + ((xx - centre_x) * spacing[2] / rx) ** 2 <= 1.0
    return out


def head_layout(brain: np.ndarray, spacing: np.ndarray, rng: np.random.Generator,
                draws: HeadDraws | None = None) -> tuple[np.ndarray, HeadDraws]:
    """The tissue class of every voxel of a head around ``brain``.

    Args:
        brain: boolean brain mask on the head grid (canonical (z, y, x)), room around it.
        spacing: voxel size (mm) along (z, y, x).
        rng: the head's stream (draws, then the random fields, in a fixed order).
        draws: the sizes; drawn from ``rng`` when None.

    Returns:
        ``(classes, draws)``: uint8 classes (see ``CLASS_NAMES``) and the sizes used.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    draws = draws or sample_head_draws(rng)
    shape = brain.shape
    variation = [1.0 + 0.3 * _coarse_field(rng, shape, spacing, 30.0) for _ in range(3)]
    radius = max(1, int(round(3.0 / spacing.min())))
    closed = ndi.binary_closing(np.pad(brain, radius), ndi.generate_binary_structure(3, 1), iterations=radius)
    closed = ndi.binary_fill_holes(closed[radius:-radius, radius:-radius, radius:-radius])
    distance = distance_outside(closed | brain, spacing)
    marks = _landmarks(brain, spacing, draws)
    classes = np.zeros(shape, dtype=np.uint8)

    # Cranial layers, each edge a smoothly varying distance from the brain.
    x_mm = (np.arange(shape[2]) - float(marks["mid_x"])) * spacing[2]
    lateral = np.clip((np.abs(x_mm) - 45.0) / 20.0, 0.0, 1.0)[None, None, :]
    z_mm = (np.arange(shape[0]) - float(marks["base_z"])) * spacing[0]
    temporal = np.clip(1.0 - np.abs(z_mm - 35.0) / 30.0, 0.0, 1.0)[:, None, None]
    muscle = draws.galea + draws.temporalis * lateral * temporal
    edges = [
        (CSF, draws.csf * variation[0]),
        (BONE, draws.inner_table),
        (MARROW, draws.diploe * variation[1]),
        (BONE, draws.outer_table),
        (MUSCLE, muscle * variation[2]),
        (FAT, draws.fat * variation[1]),
        (SKIN, draws.skin),
    ]
    outer = np.zeros(shape, dtype=np.float32)
    skull_outer = None
    for tissue, thickness in edges:
        inner = outer
        outer = inner + np.asarray(thickness, dtype=np.float32)
        classes[(distance > inner) & (distance <= outer) & (classes == AIR)] = tissue
        if tissue == BONE:
            skull_outer = outer
    shell = float(np.median(outer[distance > 0]))

    lower = _lower_head(shape, spacing, brain, marks, draws, shell) & (distance > skull_outer)
    _fill_face(classes, lower, rng, spacing, marks, draws)
    _cord(classes, spacing, marks, draws, lower | (distance > 0))
    classes[brain] = BRAIN
    return classes, draws


def _fill_face(classes: np.ndarray, lower: np.ndarray, rng: np.random.Generator, spacing: np.ndarray,
               marks: dict, draws: HeadDraws) -> None:
    """Face and neck tissue below the skull: a skin-and-fat surface over muscle, fat, bone and air spaces."""
    shape = classes.shape
    depth = ndi.distance_transform_edt(np.pad(lower, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    fat_field, bone_field, air_field, soft_field = (_coarse_field(rng, shape, spacing, n) for n in (10.0, 8.0, 9.0, 12.0))
    inside = lower & (depth > draws.skin)
    filler = np.full(shape, MUSCLE, dtype=np.uint8)
    filler[soft_field > 0.4] = SOFT
    filler[fat_field > 0.9] = FAT
    filler[bone_field > 1.1] = MARROW
    filler[(bone_field > 0.9) & (bone_field <= 1.1)] = BONE
    # Air spaces: the nasal cavity and sinuses between and below the eyes, the pharynx behind them.
    eyes = marks["eyes"]
    between = np.zeros(shape, dtype=bool)
    centre = eyes.mean(axis=0) + np.array([-18.0 / spacing[0], 10.0 / spacing[1], 0.0])
    between |= _ellipsoid(shape, spacing, centre, np.array([28.0, 24.0, 22.0]))
    filler[between & (air_field > 0.2)] = AIR
    filler[(depth <= draws.skin + draws.fat)] = FAT
    target = inside & (classes == AIR)
    classes[target] = filler[target]
    classes[lower & (depth <= draws.skin) & (classes == AIR)] = SKIN
    for centre in eyes:
        orbit = _ellipsoid(shape, spacing, centre + np.array([0.0, 6.0 / spacing[1], 0.0]),
                           np.array([draws.eye_radius + 5.0, draws.eye_radius + 12.0, draws.eye_radius + 5.0]))
        classes[orbit & (classes != BRAIN)] = FAT
        classes[_ellipsoid(shape, spacing, centre, np.full(3, draws.eye_radius)) & (classes != BRAIN)] = EYE


def _cord(classes: np.ndarray, spacing: np.ndarray, marks: dict, draws: HeadDraws, allowed: np.ndarray) -> None:
    """The spinal cord below the brainstem, in its CSF sleeve and bony canal, down to the field's edge."""
    top = marks["cord_top"]
    k = np.arange(0, int(top[0]) + 1)
    below_mm = (top[0] - k) * spacing[0]
    # The cord runs down and slightly back (the cervical spine's lordosis is ignored).
    cy = top[1] + 0.15 * below_mm / spacing[1]
    yy, xx = np.ogrid[: classes.shape[1], : classes.shape[2]]
    for z, centre_y in zip(k, cy):
        r = np.sqrt(((yy - centre_y) * spacing[1]) ** 2 + ((xx - top[2]) * spacing[2]) ** 2)
        plane, keep = classes[z], allowed[z]
        plane[(r <= draws.cord_radius + 12.0) & (r > draws.cord_radius + 6.0) & keep & (plane != BRAIN)] = MARROW
        plane[(r <= draws.cord_radius + 6.0) & (r > draws.cord_radius + 4.5) & keep & (plane != BRAIN)] = BONE
        plane[(r <= draws.cord_radius + 4.5) & keep & (plane != BRAIN)] = CSF
        plane[(r <= draws.cord_radius) & keep & (plane != BRAIN)] = CORD
