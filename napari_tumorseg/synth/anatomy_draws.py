"""A normal brain's variety in generator version 2: the draws behind its cortex, ventricles and structures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
