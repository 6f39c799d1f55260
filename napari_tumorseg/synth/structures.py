"""Normal anatomy that real scans show and a tissue template lacks (generator version 2).

A segmenter trained on tissue-template phantoms learns "bright on FLAIR is
oedema, bright on T1c is enhancing tumour", and on a real scan marks every
ventricle rim, vessel and dural fold. Version-2 phantoms show those
structures, each with its own signal (:mod:`.appearance`), so the network has
to tell them from tumour by shape and place:

- the tissue itself (:mod:`.cortex`): a folded cortex, cerebellar folia,
  ventricles grown or shrunk;
- a periventricular rim, thicker at the frontal and occipital horns (bright
  on FLAIR and T2) and small white-matter hyperintensities;
- choroid plexus in the ventricles and CSF flow voids;
- enhancing vessels: cortical ones in the sulci and on the surface, thinner
  deep ones;
- dura on the brain's surface and the falx on the midline, and the superior
  sagittal and transverse sinuses.

Everything is a membership (0..1) at the brain points of the phantom, placed
by the template's region maps (:mod:`.regions`) and shaped by smooth noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import ndtri

from .anatomy_draws import AnatomyDraws
from .cortex import shape_tissue
from .grid import FIELD_OF_VIEW_MM, GridSampler, ramp, smooth_noise
from .lesions import SUPRATENTORIAL_MM
from .points import BrainPoints, LocalNoise
from .regions import MIDLINE_MM, Regions

VESSEL_STEP_MM, VESSEL_LENGTH_MM = 3.0, 9.0


@dataclass(frozen=True)
class AnatomyRecipe:
    """What one generator version draws of the normal anatomy (constants, not per-case draws).

    Args:
        rim_below_tentorium: whether the fourth ventricle gets a periventricular
            rim too. Version 2 gave it one (with the thick posterior caps the
            lateral ventricles' horns have), a bright ball in the brainstem that
            a segmenter cannot tell from tumour; real periventricular caps and
            bands line the lateral ventricles only.
        fissure_csf: the CSF share of a cerebellar fissure voxel. Version 2's
            0.6 drew the folia as coarse dark spots on FLAIR; on real 1 mm
            scans they are a faint texture (set by eye against the real cases).
            Version 5 is version 4 with version 3's fainter 0.3: at 0.5 the sheets
            darkened FLAIR more than real folia do (docs/results/generator-v5).
        lamellar_folia: the fissures run parallel to the cerebellar surface, a
            few millimetres apart (version 4), instead of along the level set of
            isotropic noise, which draws random branching cracks (versions 2
            and 3). Real folia are thin laminae stacked under the surface: on an
            axial slice, fine arcs concentric with the hemisphere's outline
            (bright on T2, faint on FLAIR). Trained without them, some U-Nets
            call a real hemisphere's even tissue necrosis (docs/results/generator-v4).
        folia_depth_scale: how far under the cerebellar surface the folia reach,
            as a multiple of the case's drawn depth. At 1 (versions 2, 3) they
            stop 8-16 mm in, and the template's blurred cerebellum fills the rest
            of the hemisphere as an even, featureless blob; real hemispheres are
            folia down to a thin white-matter core (version 4: 1.6, by eye).
    """

    rim_below_tentorium: bool
    fissure_csf: float
    lamellar_folia: bool = False
    folia_depth_scale: float = 1.0


RECIPES = {"2": AnatomyRecipe(rim_below_tentorium=True, fissure_csf=0.6),
           "3": AnatomyRecipe(rim_below_tentorium=False, fissure_csf=0.3),
           "4": AnatomyRecipe(rim_below_tentorium=False, fissure_csf=0.5, lamellar_folia=True,
                              folia_depth_scale=1.6),
           "5": AnatomyRecipe(rim_below_tentorium=False, fissure_csf=0.3, lamellar_folia=True,
                              folia_depth_scale=1.6)}
RECIPES["6"] = RECIPES["2"]  # version 6 changes the lesions' appearance only
RECIPES["7"] = RECIPES["2"]  # so does version 7 (the enhancement)


@dataclass(eq=False)
class Structures:
    """Memberships (0..1, float32) of the normal structures at the brain points.

    Args:
        ventricle: ventricular CSF (choroid plexus and flow voids live in it).
        rim: periventricular rim and caps.
        wmh: white-matter hyperintensities.
        choroid: choroid plexus.
        flow_void: CSF flow voids (dark on T2 and FLAIR).
        vessel: enhancing vessels.
        dura: dura, falx and venous sinuses.
        texture: zero-mean tissue texture (about unit variance).
        infratentorial: below the tentorium (cerebellum and brainstem), where
            the coil and the tissue make the signal differ from the cerebrum's.
    """

    ventricle: np.ndarray
    rim: np.ndarray
    wmh: np.ndarray
    choroid: np.ndarray
    flow_void: np.ndarray
    vessel: np.ndarray
    dura: np.ndarray
    texture: np.ndarray
    infratentorial: np.ndarray
    _support: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def support(self, name: str) -> np.ndarray:
        """Indices of the points where structure ``name`` is non-zero (found once, reused per modality)."""
        if name not in self._support:
            self._support[name] = np.flatnonzero(getattr(self, name))
        return self._support[name]


VESSEL_GRID = tuple(int(np.ceil(f / VESSEL_STEP_MM)) + 1 for f in FIELD_OF_VIEW_MM)


def _tubes(rng: np.random.Generator, sampler: GridSampler, where: np.ndarray | None, width: float) -> np.ndarray:
    """Thin wandering tubes (where two smooth fields both cross zero) at the points ``where`` (None: all), 0..1.

    Args:
        rng: the case's anatomy stream.
        sampler: the vessel grid's sampler at every brain point.
        where: the points to draw them at (None: all).
        width: tube half-width in noise units.
    """
    fields = np.stack([smooth_noise(rng, VESSEL_GRID, VESSEL_LENGTH_MM / VESSEL_STEP_MM) for _ in range(2)], axis=-1)
    strength = np.zeros(sampler.size, dtype=np.float32)
    if where is None or where.size:
        first, second = (sampler if where is None else sampler.subset(where)).sample_all(fields)
        closeness = (first * first + second * second) / np.float32(width * width)
        strength[slice(None) if where is None else where] = np.clip(1.5 - closeness, 0.0, 1.0)
    return strength


def _white_matter_spots(
    rng: np.random.Generator, points: BrainPoints, spacing: np.ndarray, depth: np.ndarray, count: int
) -> np.ndarray:
    """Small soft balls of 1-5 mm radius in deep white matter."""
    spots = np.zeros(len(points), dtype=np.float32)
    candidates = np.flatnonzero((points.tissue[1] > 0.6) & (depth > 8.0))
    if count == 0 or candidates.size == 0:
        return spots
    for centre in rng.choice(candidates, size=count):
        radius = float(np.exp(rng.uniform(np.log(1.0), np.log(5.0))))
        low = np.floor((points.index[:, centre] * spacing - radius - 1.0) / spacing).astype(np.int64)
        high = np.ceil((points.index[:, centre] * spacing + radius + 1.0) / spacing).astype(np.int64)
        first, last = np.searchsorted(points.index[0], [low[0], high[0] + 1])
        near = first + np.flatnonzero(
            np.all((points.index[1:, first:last] >= low[1:, None]) & (points.index[1:, first:last] <= high[1:, None]), axis=0)
        )
        offset = (points.index[:, near] - points.index[:, centre : centre + 1]) * spacing[:, None]
        distance = np.sqrt((offset**2).sum(axis=0)).astype(np.float32)
        spots[near] = np.maximum(spots[near], ramp(distance - np.float32(radius), 1.0))
    return spots


def _rim(regions: np.ndarray, template_mm: np.ndarray, centre_mm: np.ndarray, draws: AnatomyDraws) -> np.ndarray:
    """Periventricular rim, thicker at the horns (the front and back ends of the ventricles)."""
    grown = regions[1] - np.float32(draws.ventricle_growth_mm)
    horn = np.clip((np.abs(template_mm[1] - centre_mm[1]) - 15.0) / 12.0, 0.0, 1.0)
    thickness = np.float32(draws.rim_mm) + np.float32(draws.cap_mm) * horn
    # It lies in the tissue next to the ventricle: fading in over the ventricle's own 1 mm edge.
    return (ramp(grown - thickness, 1.5) * np.clip(grown + 0.5, 0.0, 1.0)).astype(np.float32)


def _dura(regions: np.ndarray, template_mm: np.ndarray, patch: np.ndarray, draws: AnatomyDraws) -> np.ndarray:
    """Dura left on the surface, the falx on the midline, and the large venous sinuses."""
    depth, ventricle_distance = regions[:2]
    z, y, x = template_mm
    off_midline = np.abs(x - np.float32(MIDLINE_MM))
    covered = (patch > np.float32(_threshold(draws.dura_coverage))).astype(np.float32)
    surface = ramp(depth - np.float32(draws.dura_mm), 0.8) * covered
    falx = ramp(off_midline - 0.6, 0.8) * (z > SUPRATENTORIAL_MM) * (ventricle_distance > 6.0)
    sagittal = ramp(off_midline - 3.0, 2.0) * ramp(depth - 3.5, 1.5) * (z > 80.0)
    transverse = ramp(depth - 3.0, 1.5) * (y > 170.0) * (np.abs(z - 52.0) < 10.0)
    return np.maximum.reduce([surface, falx.astype(np.float32), sagittal, transverse.astype(np.float32)])


def _threshold(coverage: float) -> float:
    """The level a unit Gaussian field exceeds on about ``coverage`` of its points."""
    return float(ndtri(1.0 - np.clip(coverage, 1e-3, 1.0 - 1e-3)))


def normal_structures(
    rng: np.random.Generator, points: BrainPoints, spacing: np.ndarray, regions: Regions, draws: AnatomyDraws,
    recipe: AnatomyRecipe = RECIPES["2"],
) -> Structures:
    """Reshape the tissue (in place) and place every normal structure at the brain points.

    Args:
        rng: the case's anatomy stream.
        points: the brain points (``template_mm`` filled in).
        spacing: voxel size (mm).
        regions: the template's region maps.
        draws: the case's anatomy draws.
        recipe: the generator version's constants.
    """
    at = regions.sample(points.template_mm)
    noise = LocalNoise(rng, points, spacing)
    tissue_draws = replace(draws, folia_depth_mm=draws.folia_depth_mm * recipe.folia_depth_scale)
    ventricle = shape_tissue(points, at, noise, tissue_draws, recipe.fissure_csf, recipe.lamellar_folia)
    patch, second_patch, texture = noise.field(6.0), noise.field(4.0), noise.field(2.5)
    posterior = np.clip((points.template_mm[1] - regions.ventricle_centre_mm[1] + 10.0) / 20.0, 0.0, 1.0)
    choroid = ventricle * (patch > np.float32(_threshold(draws.choroid_coverage))) * (0.3 + 0.7 * posterior)
    flow_void = ventricle * (second_patch > np.float32(_threshold(draws.flow_void_coverage)))
    csf = points.tissue[2]
    cortical = np.flatnonzero((csf > 0.08) | (at[0] < 3.0))
    vessels = GridSampler(points.index, spacing, np.zeros(3), VESSEL_STEP_MM, VESSEL_GRID, box=noise.box)
    vessel = np.maximum(_tubes(rng, vessels, cortical, draws.vessel_width),
                        _tubes(rng, vessels, None, draws.deep_vessel_width))
    infratentorial = np.clip((np.float32(SUPRATENTORIAL_MM) - points.template_mm[0]) / 6.0 + 0.5, 0.0, 1.0)
    rim = _rim(at, points.template_mm, regions.ventricle_centre_mm, draws)
    if not recipe.rim_below_tentorium:
        rim *= 1.0 - infratentorial
    return Structures(
        ventricle=ventricle,
        rim=rim,
        wmh=_white_matter_spots(rng, points, spacing, at[0], draws.wmh_count),
        choroid=choroid.astype(np.float32),
        flow_void=flow_void.astype(np.float32),
        vessel=vessel,
        dura=_dura(at, points.template_mm, noise.field(8.0), draws),
        texture=texture * np.float32(draws.texture),
        infratentorial=infratentorial,
    )
