"""Normal anatomy that real scans show and a tissue template lacks (generator version 2).

A segmenter trained on tissue-template phantoms learns "bright on FLAIR is
oedema, bright on T1c is enhancing tumour", and on a real scan marks every
ventricle rim, vessel and dural fold. Version-2 phantoms show those
structures, each with its own signal (:mod:`.appearance`), so the network has
to tell them from tumour by shape and place:

- the tissue itself: sharper grey-white borders than the 152-brain average,
  sulci carved into the cortex (wider with atrophy), ventricles grown or
  shrunk;
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

from dataclasses import dataclass, field

import numpy as np

from scipy.special import ndtri

from .grid import FIELD_OF_VIEW_MM, GridSampler, smooth_noise
from .points import BrainPoints
from .regions import MIDLINE_MM, Regions, grid_shape, sample_grid_mm

NOISE_STEP_MM = 2.0  # grid of the local noise fields (sulci, texture, patches)
VESSEL_STEP_MM, VESSEL_LENGTH_MM = 3.0, 9.0
SUPRATENTORIAL_MM = 62.0  # template height of the tentorium (as in :mod:`.lesions`)
CORTEX_MM = 2.2  # thickness of the cortical ribbon
FOLD_DEPTH_MM = 11.0  # typical depth of a sulcus below the brain's surface
FOLD_STEP_MM = 2.0  # grid of the folding noise
TILT, TILT_STEP_MM, TILT_LENGTH_MM = 0.5, 4.0, 10.0  # how much, and how smoothly, sulci lean
CEREBELLUM_FROM_Y_MM = 140.0  # template: the cerebellum lies behind this coronal plane, the brainstem before it


@dataclass(frozen=True)
class AnatomyDraws:
    """One case's normal-anatomy draws.

    Args:
        sharpness: how crisp the grey-white border is made (0 keeps the template's).
        sulcus_share: share of the folded cortex that is sulcal CSF (atrophy raises it).
        grey_share: share of the folded cortex that is grey matter (sulci included).
        sulcus_length_mm: correlation length of the folding noise (sulci lie about 2.2 times this apart).
        ventricle_growth_mm: the ventricles grow (> 0) or shrink (< 0) by this much.
        rim_mm: thickness of the periventricular rim.
        cap_mm: extra thickness at the frontal and occipital horns.
        wmh_count: small white-matter hyperintensities.
        vessel_width: half-width of the cortical vessels, in noise units.
        deep_vessel_width: the same for deep vessels.
        dura_mm: thickness of the dura left on the surface.
        dura_coverage: share of the surface that keeps dura.
        choroid_coverage: share of the ventricles filled by choroid plexus.
        flow_void_coverage: share of the ventricles that shows flow voids.
        texture: relative amplitude of the tissue texture.
        folia_grey: grey-matter share of the cerebellar cortex (folia below the voxel size).
        folia_depth_mm: how deep the cerebellar cortex reaches before the white-matter core.
        fissure_share: level below which the fine noise makes a CSF fissure.
    """

    sharpness: float
    sulcus_share: float
    grey_share: float
    sulcus_length_mm: float
    ventricle_growth_mm: float
    rim_mm: float
    cap_mm: float
    wmh_count: int
    vessel_width: float
    deep_vessel_width: float
    dura_mm: float
    dura_coverage: float
    choroid_coverage: float
    flow_void_coverage: float
    texture: float
    folia_grey: float
    folia_depth_mm: float
    fissure_share: float


def sample_anatomy_draws(rng: np.random.Generator) -> AnatomyDraws:
    """Draw a normal brain's variety: from a young adult's to an old one's (literature ranges, set by eye)."""
    age = rng.random()  # 0 young .. 1 old: atrophy, bigger ventricles, more white-matter disease
    return AnatomyDraws(
        sharpness=float(rng.uniform(0.0, 0.6)),
        sulcus_share=float(0.04 + 0.16 * age * rng.uniform(0.3, 1.0)),
        grey_share=float(rng.uniform(0.4, 0.6)),
        sulcus_length_mm=float(rng.uniform(4.0, 7.0)),
        ventricle_growth_mm=float(rng.uniform(-1.5, 1.0) + 4.0 * age * rng.random()),
        rim_mm=float(rng.uniform(0.5, 2.5)),
        cap_mm=float(rng.uniform(0.0, 5.0) * (0.4 + age)),
        wmh_count=int(rng.poisson(12.0 * age**2)),
        vessel_width=float(rng.uniform(0.1, 0.28)),
        deep_vessel_width=float(rng.uniform(0.03, 0.1)),
        dura_mm=float(rng.uniform(0.5, 2.5)),
        dura_coverage=float(rng.uniform(0.1, 0.9)),
        choroid_coverage=float(rng.uniform(0.15, 0.6)),
        flow_void_coverage=float(rng.uniform(0.0, 0.4)),
        texture=float(rng.uniform(0.2, 1.0)),
        folia_grey=float(rng.uniform(0.6, 0.9)),
        folia_depth_mm=float(rng.uniform(8.0, 16.0)),
        fissure_share=float(rng.uniform(0.03, 0.15) * (1.0 + age)),
    )


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


class _LocalNoise:
    """Smooth noise fields on a 2 mm grid over the brain points' bounding box."""

    def __init__(self, rng: np.random.Generator, points: BrainPoints, spacing: np.ndarray) -> None:
        self.rng = rng
        self.box = (points.index.min(axis=1), points.index.max(axis=1) + 1)  # voxel bounds, found once
        low = self.box[0] * spacing - 2.0 * NOISE_STEP_MM
        high = self.box[1] * spacing + 2.0 * NOISE_STEP_MM
        self.origin = low.astype(np.float32)
        self.shape = tuple(int(np.ceil((h - lo) / NOISE_STEP_MM)) + 1 for lo, h in zip(low, high))
        self.sampler = GridSampler(points.index, spacing, self.origin, NOISE_STEP_MM, self.shape, box=self.box)

    def field(self, length_mm: float, at: np.ndarray | None = None) -> np.ndarray:
        """A unit-variance field with this correlation length, at the points (or those indexed by ``at``)."""
        grid = smooth_noise(self.rng, self.shape, max(length_mm / NOISE_STEP_MM, 0.5))
        return (self.sampler if at is None else self.sampler.subset(at)).sample(grid)


def _ramp(x: np.ndarray, edge: float = 1.0) -> np.ndarray:
    """1 where ``x <= 0``, 0 where ``x >= edge``, linear between."""
    return np.clip(1.0 - x / np.float32(edge), 0.0, 1.0).astype(np.float32)


def shape_tissue(
    points: BrainPoints, regions: np.ndarray, noise: _LocalNoise, draws: AnatomyDraws
) -> np.ndarray:
    """Fold the cortex, sharpen the grey-white border and resize the ventricles (``points.tissue`` in place).

    Args:
        points: the brain points (tissue fractions after the deformation).
        regions: (5, N) the region maps at their template positions.
        noise: the case's local noise fields.
        draws: the case's anatomy draws.

    Returns:
        (N,) ventricular CSF fraction.
    """
    gm, wm, csf = points.tissue
    fraction = gm + wm + csf
    _sharpen(gm, wm, draws.sharpness)
    _fold_cortex(noise.rng, points, regions, draws)
    _cerebellar_cortex(points, regions[0], noise, draws)
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
    band = _ramp(regions[0] - np.float32(FOLD_DEPTH_MM * 1.6), 4.0) * np.clip((all_gm + all_wm) * 1.5, 0.0, 1.0)
    inside = np.flatnonzero(band > 0)  # the rest keeps the template: no need to sample anything there
    band, depth = band[inside], regions[0, inside]
    gm, wm, csf = all_gm[inside], all_wm[inside], all_csf[inside]
    surface = points.template_mm[:, inside] - depth * regions[2:5, inside]
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
    sulcus = _ramp(closeness - sulcus_level, 0.15) * _ramp(depth - sulcal_depth, 2.0)
    lining = _ramp(closeness - grey_level, 0.15) * _ramp(depth - sulcal_depth - CORTEX_MM, 1.0)
    grey = np.maximum(lining, _ramp(depth - CORTEX_MM, 1.0))
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


def _cerebellar_cortex(points: BrainPoints, depth: np.ndarray, noise: _LocalNoise, draws: AnatomyDraws) -> None:
    """Cerebellar folia, far finer than a voxel: mostly grey matter with thin CSF fissures (in place).

    At 1 mm the folia blur into a fairly even grey texture around the
    white-matter core (the arbor vitae), unlike the cerebrum's gyri.
    """
    weight = cerebellum_weight(points.template_mm) * _ramp(depth - np.float32(draws.folia_depth_mm), 3.0)
    inside = np.flatnonzero(weight > 0)
    weight = weight[inside]
    gm, wm, csf = (tissue[inside] for tissue in points.tissue)
    matter = gm + wm
    fissure = np.clip(np.abs(noise.field(2.0, at=inside)) < np.float32(draws.fissure_share), 0.0, 1.0) * np.float32(0.6)
    target_csf = np.maximum(csf, fissure * (matter + csf))
    target_matter = matter + csf - target_csf
    points.tissue[0, inside] = (1.0 - weight) * gm + weight * target_matter * np.float32(draws.folia_grey)
    points.tissue[1, inside] = (1.0 - weight) * wm + weight * target_matter * np.float32(1.0 - draws.folia_grey)
    points.tissue[2, inside] = (1.0 - weight) * csf + weight * target_csf


def _tubes(
    rng: np.random.Generator,
    points: BrainPoints,
    spacing: np.ndarray,
    where: np.ndarray | None,
    width: float,
    box: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Thin wandering tubes (where two smooth fields both cross zero) at the points ``where`` (None: all), 0..1."""
    shape = tuple(int(np.ceil(f / VESSEL_STEP_MM)) + 1 for f in FIELD_OF_VIEW_MM)
    sigma = VESSEL_LENGTH_MM / VESSEL_STEP_MM
    fields = np.stack([smooth_noise(rng, shape, sigma) for _ in range(2)], axis=-1)
    strength = np.zeros(len(points), dtype=np.float32)
    index = points.index if where is None else points.index[:, where]
    if index.shape[1]:
        sampler = GridSampler(index, spacing, np.zeros(3), VESSEL_STEP_MM, shape, box=box)
        first, second = sampler.sample_all(fields)
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
        spots[near] = np.maximum(spots[near], _ramp(distance - np.float32(radius), 1.0))
    return spots


def _rim(regions: np.ndarray, template_mm: np.ndarray, centre_mm: np.ndarray, draws: AnatomyDraws) -> np.ndarray:
    """Periventricular rim, thicker at the horns (the front and back ends of the ventricles)."""
    grown = regions[1] - np.float32(draws.ventricle_growth_mm)
    horn = np.clip((np.abs(template_mm[1] - centre_mm[1]) - 15.0) / 12.0, 0.0, 1.0)
    thickness = np.float32(draws.rim_mm) + np.float32(draws.cap_mm) * horn
    # It lies in the tissue next to the ventricle: fading in over the ventricle's own 1 mm edge.
    return (_ramp(grown - thickness, 1.5) * np.clip(grown + 0.5, 0.0, 1.0)).astype(np.float32)


def _dura(regions: np.ndarray, template_mm: np.ndarray, patch: np.ndarray, draws: AnatomyDraws) -> np.ndarray:
    """Dura left on the surface, the falx on the midline, and the large venous sinuses."""
    depth, ventricle_distance = regions[:2]
    z, y, x = template_mm
    off_midline = np.abs(x - np.float32(MIDLINE_MM))
    covered = (patch > np.float32(_threshold(draws.dura_coverage))).astype(np.float32)
    surface = _ramp(depth - np.float32(draws.dura_mm), 0.8) * covered
    falx = _ramp(off_midline - 0.6, 0.8) * (z > SUPRATENTORIAL_MM) * (ventricle_distance > 6.0)
    sagittal = _ramp(off_midline - 3.0, 2.0) * _ramp(depth - 3.5, 1.5) * (z > 80.0)
    transverse = _ramp(depth - 3.0, 1.5) * (y > 170.0) * (np.abs(z - 52.0) < 10.0)
    return np.maximum.reduce([surface, falx.astype(np.float32), sagittal, transverse.astype(np.float32)])


def _threshold(coverage: float) -> float:
    """The level a unit Gaussian field exceeds on about ``coverage`` of its points."""
    return float(ndtri(1.0 - np.clip(coverage, 1e-3, 1.0 - 1e-3)))


def normal_structures(
    rng: np.random.Generator, points: BrainPoints, spacing: np.ndarray, regions: Regions, draws: AnatomyDraws
) -> Structures:
    """Reshape the tissue (in place) and place every normal structure at the brain points.

    Args:
        rng: the case's anatomy stream.
        points: the brain points (``template_mm`` filled in).
        spacing: voxel size (mm).
        regions: the template's region maps.
        draws: the case's anatomy draws.
    """
    at = regions.sample(points.template_mm)
    noise = _LocalNoise(rng, points, spacing)
    ventricle = shape_tissue(points, at, noise, draws)
    patch, second_patch, texture = noise.field(6.0), noise.field(4.0), noise.field(2.5)
    posterior = np.clip((points.template_mm[1] - regions.ventricle_centre_mm[1] + 10.0) / 20.0, 0.0, 1.0)
    choroid = ventricle * (patch > np.float32(_threshold(draws.choroid_coverage))) * (0.3 + 0.7 * posterior)
    flow_void = ventricle * (second_patch > np.float32(_threshold(draws.flow_void_coverage)))
    csf = points.tissue[2]
    cortical = np.flatnonzero((csf > 0.08) | (at[0] < 3.0))
    vessel = np.maximum(
        _tubes(rng, points, spacing, cortical, draws.vessel_width, noise.box),
        _tubes(rng, points, spacing, None, draws.deep_vessel_width, noise.box),
    )
    return Structures(
        ventricle=ventricle,
        rim=_rim(at, points.template_mm, regions.ventricle_centre_mm, draws),
        wmh=_white_matter_spots(rng, points, spacing, at[0], draws.wmh_count),
        choroid=choroid.astype(np.float32),
        flow_void=flow_void.astype(np.float32),
        vessel=vessel,
        dura=_dura(at, points.template_mm, noise.field(8.0), draws),
        texture=texture * np.float32(draws.texture),
        infratentorial=np.clip((np.float32(SUPRATENTORIAL_MM) - points.template_mm[0]) / 6.0 + 0.5, 0.0, 1.0),
    )
