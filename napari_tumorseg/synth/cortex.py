"""The tissue of a version-2 phantom: a folded cortex, cerebellar folia, a crisper grey-white border, ventricles of any size.

The template averages 152 brains, so its cortex is a blurred ribbon and its
cerebellum a smooth blob; real scans show sulci, folia and ventricles that
vary from patient to patient. :func:`shape_tissue` changes the tissue
fractions at the brain points (in place) before anything is rendered, so the
tumour's oedema and every structure follow the new anatomy.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from .anatomy_draws import AnatomyDraws
from .grid import ramp, smooth_noise
from .lesions import SUPRATENTORIAL_MM
from .points import NOISE_STEP_MM, BrainPoints, LocalNoise
from .regions import grid_shape, sample_grid_mm

CORTEX_MM = 2.2  # thickness of the cortical ribbon
FOLD_DEPTH_MM = 11.0  # typical depth of a sulcus below the brain's surface
FOLD_STEP_MM = 2.0  # grid of the folding noise
TILT, TILT_STEP_MM, TILT_LENGTH_MM = 0.5, 4.0, 10.0  # how much, and how smoothly, sulci lean
CEREBELLUM_FROM_Y_MM = 140.0  # template: the cerebellum lies behind this coronal plane, the brainstem before it
# Lamellar folia (version 4), set by eye: on real 1 mm T2 the fissures show as arcs about 3-5 mm apart, each
# under a voxel wide; the arcs bend and merge over a centimetre or so.
FOLIA_PERIOD_MM = (3.0, 5.0)
FISSURE_WIDTH_MM = 0.8
FOLIA_BEND_MM, FOLIA_BEND_LENGTH_MM = 1.5, 8.0


def shape_tissue(
    points: BrainPoints, regions: np.ndarray, noise: LocalNoise, draws: AnatomyDraws, fissure_csf: float = 0.6,
    lamellar_folia: bool = False,
) -> np.ndarray:
    """Fold the cortex, sharpen the grey-white border and resize the ventricles (``points.tissue`` in place).

    Args:
        points: the brain points (tissue fractions after the deformation).
        regions: (5, N) the region maps at their template positions.
        noise: the case's local noise fields.
        draws: the case's anatomy draws.
        fissure_csf: CSF share of a cerebellar fissure voxel (see ``structures.AnatomyRecipe``).
        lamellar_folia: fissures parallel to the cerebellar surface (see ``structures.AnatomyRecipe``).

    Returns:
        (N,) ventricular CSF fraction.
    """
    gm, wm, csf = points.tissue
    fraction = gm + wm + csf
    _sharpen(gm, wm, draws.sharpness)
    _fold_cortex(noise.rng, points, regions, draws)
    _cerebellar_cortex(points, regions[0], noise, draws, fissure_csf, lamellar_folia)
    depth, ventricle_distance = regions[:2]
    # Ventricles: a soft 1 mm edge at the grown (or shrunk) outline.
    grown = ventricle_distance - np.float32(draws.ventricle_growth_mm)
    near = ventricle_distance < 4.0 + draws.ventricle_growth_mm
    ventricle = (np.clip(0.5 - grown, 0.0, 1.0) * near).astype(np.float32)
    new_csf = np.maximum(csf, ventricle * fraction)
    # A shrinking ventricle gives its CSF back to the white matter around it.
    shrunk = (ventricle_distance < 1.0) & (grown > 0.5)
    new_csf[shrunk] = np.minimum(new_csf[shrunk], csf[shrunk] * np.clip(1.5 - grown[shrunk], 0.0, 1.0))
    matter_left = np.maximum(fraction - new_csf, 0.0)
    scale = matter_left / np.maximum(gm + wm, 1e-6)
    gm *= scale
    wm *= scale
    missing = np.maximum(matter_left - gm - wm, 0.0)
    wm += missing  # where there was only CSF, the shrunk ventricle leaves white matter
    csf[:] = new_csf
    return ventricle


def _sharpen(gm: np.ndarray, wm: np.ndarray, sharpness: float) -> None:
    """Make the grey-white border crisper than the 152-brain average (in place)."""
    matter = gm + wm
    ratio = wm / np.maximum(matter, 1e-6)
    gain = np.float32(4.0 * (1.0 + 2.0 * sharpness))
    crisp = 1.0 / (1.0 + np.exp(-gain * (ratio - 0.5)))
    gm[:], wm[:] = matter * (1.0 - crisp), matter * crisp


def _fold_cortex(
    rng: np.random.Generator, points: BrainPoints, regions: np.ndarray, draws: AnatomyDraws
) -> None:
    """Replace the average brain's blurred outer centimetre by a folded cortex (in place).

    The template averages 152 brains, so only the largest sulci survive in
    it. Here a sulcus is a sheet where a smooth random field crosses zero;
    the field is read at the point's projection onto the brain's surface, so
    the sheets run from the surface inwards, as sulci do, down to a depth
    that varies along the surface. A grey-matter ribbon of ``CORTEX_MM``
    lines every sulcus and the surface, and white matter fills the gyri.
    The template's large CSF spaces stay.

    Args:
        rng: the case's anatomy stream.
        points: the brain points.
        regions: (5, N) the region maps at their template positions.
        draws: the case's anatomy draws.
    """
    all_gm, all_wm, all_csf = points.tissue
    band = ramp(regions[0] - np.float32(FOLD_DEPTH_MM * 1.6), 4.0) * np.clip((all_gm + all_wm) * 1.5, 0.0, 1.0)
    inside = np.flatnonzero(band > 0)  # the rest keeps the template: no need to sample anything there
    band, depth = band[inside], regions[0, inside]
    gm, wm, csf = all_gm[inside], all_wm[inside], all_csf[inside]
    # take(), not [:, inside]: row-major, so the samplers read each axis's row fast (the values are the same).
    surface = points.template_mm.take(inside, axis=1) - depth * regions[2:5].take(inside, axis=1)
    # Sulci lean and bend on their way in: the surface point read shifts with depth.
    coarse = grid_shape(TILT_STEP_MM)
    tilt = np.stack([smooth_noise(rng, coarse, TILT_LENGTH_MM / TILT_STEP_MM) for _ in range(3)])
    surface += np.float32(TILT) * depth * sample_grid_mm(tilt, surface, TILT_STEP_MM)
    sigma_mm = draws.sulcus_length_mm / 2.0
    shape = grid_shape(FOLD_STEP_MM)
    fields = np.stack([smooth_noise(rng, shape, sigma_mm / FOLD_STEP_MM), smooth_noise(rng, shape, 12.0 / FOLD_STEP_MM)])
    fold, reach = sample_grid_mm(fields, surface, FOLD_STEP_MM)
    sulcal_depth = np.float32(FOLD_DEPTH_MM) * (1.0 + 0.3 * np.clip(reach, -2.0, 2.0))
    # Shares of the folded band, not widths: |f| below a quantile of |N(0, 1)| covers that share of it.
    closeness = np.abs(fold)
    sulcus_level, grey_level = (np.float32(ndtri(0.5 + share / 2.0)) for share in (draws.sulcus_share, draws.grey_share))
    sulcus = ramp(closeness - sulcus_level, 0.15) * ramp(depth - sulcal_depth, 2.0)
    lining = ramp(closeness - grey_level, 0.15) * ramp(depth - sulcal_depth - CORTEX_MM, 1.0)
    grey = np.maximum(lining, ramp(depth - CORTEX_MM, 1.0))
    target_csf = np.maximum(csf, sulcus * (gm + wm + csf))
    target_matter = gm + wm + csf - target_csf
    all_gm[inside] = (1.0 - band) * gm + band * target_matter * grey
    all_wm[inside] = (1.0 - band) * wm + band * target_matter * (1.0 - grey)
    all_csf[inside] = (1.0 - band) * csf + band * target_csf


def cerebellum_weight(template_mm: np.ndarray) -> np.ndarray:
    """How much a point belongs to the cerebellum: below the tentorium and behind the brainstem (0..1)."""
    z, y = template_mm[0], template_mm[1]
    below = np.clip((np.float32(SUPRATENTORIAL_MM) - z) / 4.0, 0.0, 1.0)
    return (below * np.clip((y - np.float32(CEREBELLUM_FROM_Y_MM)) / 8.0, 0.0, 1.0)).astype(np.float32)


def _cerebellar_cortex(
    points: BrainPoints, depth: np.ndarray, noise: LocalNoise, draws: AnatomyDraws, fissure_csf: float,
    lamellar: bool = False,
) -> None:
    """Cerebellar folia, far finer than a voxel: mostly grey matter with thin CSF fissures (in place).

    At 1 mm the folia blur into a fairly even grey texture around the
    white-matter core (the arbor vitae), unlike the cerebrum's gyri.
    """
    weight = cerebellum_weight(points.template_mm) * ramp(depth - np.float32(draws.folia_depth_mm), 3.0)
    inside = np.flatnonzero(weight > 0)
    weight = weight[inside]
    gm, wm, csf = (tissue[inside] for tissue in points.tissue)
    matter = gm + wm
    fine = noise.field(2.0, at=inside)
    if lamellar:
        fissure = _lamellae(noise, inside, depth[inside], fine)
    else:
        fissure = np.clip(np.abs(fine) < np.float32(draws.fissure_share), 0.0, 1.0)
    fissure *= np.float32(fissure_csf)
    target_csf = np.maximum(csf, fissure * (matter + csf))
    target_matter = matter + csf - target_csf
    points.tissue[0, inside] = (1.0 - weight) * gm + weight * target_matter * np.float32(draws.folia_grey)
    points.tissue[1, inside] = (1.0 - weight) * wm + weight * target_matter * np.float32(1.0 - draws.folia_grey)
    points.tissue[2, inside] = (1.0 - weight) * csf + weight * target_csf


def _lamellae(noise: LocalNoise, inside: np.ndarray, depth: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Fissure share (0..1) of thin sheets parallel to the surface, bent by a smooth field, fading in and out.

    Drawn from a child of the anatomy stream (``spawn`` leaves the parent's own draws untouched), so a
    version-4 head differs from its version-3 twin in the folia alone.
    """
    child = noise.rng.spawn(1)[0]
    period = np.float32(child.uniform(*FOLIA_PERIOD_MM))
    bend = smooth_noise(child, noise.shape, FOLIA_BEND_LENGTH_MM / NOISE_STEP_MM)
    shifted = depth + np.float32(FOLIA_BEND_MM) * noise.sampler.subset(inside).sample(bend)
    # Distance (mm) to the nearest sheet; the fissure share falls linearly to 0 at the half-width (partial volume).
    offset = np.abs((shifted / period + 0.5) % 1.0 - 0.5) * period
    sheet = np.clip(1.0 - offset / np.float32(FISSURE_WIDTH_MM), 0.0, 1.0)
    strength = np.clip(0.7 + 0.3 * fine, 0.0, 1.0)  # sheets fade and break, as folia do between lobules
    return (sheet * strength).astype(np.float32)
