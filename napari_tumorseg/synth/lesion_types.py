"""Version-2 tumour variety: high- and lower-grade glioma, and metastases of every common kind.

Version 1 drew one kind of glioma (large, necrotic, rim-enhancing) and small
metastases at the grey-white junction. Real cases are more varied:

- **high-grade glioma** (about 55 % of glioma cases): as version 1, over a
  wider range of sizes, wall thickness, non-enhancing share and oedema;
- **lower-grade glioma** (about 45 %): a non-enhancing, infiltrative mass
  (labelled NCR/NET, as BraTS labels it) with a ragged outline and a narrow
  oedema margin, in white matter or reaching the cortex;
- **metastases**: 1 to 10 lesions of 3 to 40 mm diameter (most small), solid,
  ring-enhancing around necrosis, or cystic (a thin rim around fluid),
  anywhere in the brain: the grey-white junction mostly, but also deep
  white matter next to the ventricles, the cortex and the cerebellum.

The signal of each compartment comes from the case's appearance draw
(:mod:`.appearance`), so "cystic" and "necrotic" differ in shape and wall
here and in signal there.
"""

from __future__ import annotations

import numpy as np

from .lesions import SUPRATENTORIAL_MM, Lesion, SiteMaps, _axis_radii, _height_mm, random_rotation

LOWER_GRADE_SHARE = 0.45
METASTASIS_COUNTS = np.arange(1, 11)
METASTASIS_COUNT_WEIGHTS = 0.62 ** np.arange(10) / (0.62 ** np.arange(10)).sum()  # 1 most often, 10 rarely


def sample_glioma_v2(rng: np.random.Generator, sites: SiteMaps) -> list[Lesion]:
    """One glioma: high grade (enhancing rim, necrosis) or lower grade (non-enhancing).

    Args:
        rng: the case's lesion stream.
        sites: the deformed anatomy, coarse.
    """
    lower_grade = rng.random() < LOWER_GRADE_SHARE
    radius = float(rng.uniform(10.0, 30.0) if lower_grade else rng.uniform(12.0, 34.0))
    gm, wm = sites.tissue[..., 0], sites.tissue[..., 1]
    depth = sites.depth_mm()
    # Lower-grade gliomas often reach the cortex; high-grade ones grow deeper.
    min_depth = 0.3 * radius + 3.0 if lower_grade else 0.5 * radius + 8.0
    allowed = ((wm >= 0.4) | (lower_grade & (gm >= 0.4))) & (depth >= min_depth)
    allowed &= _height_mm(sites.coarse) >= SUPRATENTORIAL_MM + 0.3 * radius
    if not allowed.any():
        allowed = (wm >= 0.4) & (_height_mm(sites.coarse) >= SUPRATENTORIAL_MM)
    centre = sites.pick(rng, allowed, weight=wm + 0.5 * gm)
    common = dict(
        centre_mm=centre,
        radii_mm=_axis_radii(rng, radius, 0.2),
        rotation=random_rotation(rng),
        displaced_fraction=float(rng.uniform(0.2, 0.5) if lower_grade else rng.uniform(0.4, 0.8)),
        enhancement=float(rng.uniform(0.8, 1.2)),
    )
    if lower_grade:
        return [Lesion(
            **common,
            boundary_noise_mm=float(rng.uniform(0.15, 0.3) * radius),
            boundary_length_mm=float(rng.uniform(6.0, 12.0)),
            rim_mm=None,
            rim_noise_mm=0.0,
            non_enhancing_fraction=1.0,
            oedema_reach_mm=float(rng.uniform(2.0, 12.0)),
            oedema_grey_factor=float(rng.uniform(0.3, 0.8)),
        )]
    return [Lesion(
        **common,
        boundary_noise_mm=float(rng.uniform(0.1, 0.25) * radius),
        boundary_length_mm=float(rng.uniform(6.0, 12.0)),
        rim_mm=float(rng.uniform(2.0, 8.0)),
        rim_noise_mm=float(rng.uniform(0.8, 2.5)),
        non_enhancing_fraction=0.0 if rng.random() < 0.4 else float(rng.uniform(0.1, 0.4)),
        oedema_reach_mm=float(rng.uniform(5.0, 30.0)),
        oedema_grey_factor=float(rng.uniform(0.2, 0.5)),
    )]


def _metastasis_sites(rng: np.random.Generator, sites: SiteMaps, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Where one metastasis may grow, and how likely each place is."""
    gm, wm = sites.tissue[..., 0], sites.tissue[..., 1]
    depth = sites.depth_mm()
    height = _height_mm(sites.coarse)
    place = rng.choice(["junction", "deep", "cortex", "cerebellum"], p=[0.6, 0.15, 0.1, 0.15])
    allowed = depth >= 0.6 * radius + 1.0
    if place == "junction":
        weight = np.minimum(gm, wm)
        allowed &= (weight >= 0.15) & (height >= SUPRATENTORIAL_MM)
    elif place == "deep":
        weight = wm
        allowed &= (wm >= 0.5) & (depth >= radius + 12.0) & (height >= SUPRATENTORIAL_MM)
    elif place == "cortex":
        weight = gm
        allowed &= (gm >= 0.4) & (height >= SUPRATENTORIAL_MM)
    else:
        weight = gm + wm
        allowed &= (weight >= 0.5) & (height < SUPRATENTORIAL_MM - 5.0)
    return allowed, weight


def sample_metastases_v2(rng: np.random.Generator, sites: SiteMaps) -> list[Lesion]:
    """One to ten metastases, 3 to 40 mm across: solid, ring-enhancing or cystic, apart from each other.

    Args:
        rng: the case's lesion stream.
        sites: the deformed anatomy, coarse.
    """
    count = int(rng.choice(METASTASIS_COUNTS, p=METASTASIS_COUNT_WEIGHTS))
    lesions: list[Lesion] = []
    for _ in range(count):
        radius = float(np.exp(rng.uniform(np.log(1.5), np.log(20.0))))
        allowed, weight = _metastasis_sites(rng, sites, radius)
        reach = float(np.clip(radius * rng.uniform(0.5, 3.0) + rng.uniform(0.0, 12.0), 1.0, 35.0))
        for other in lesions:
            gap = np.sqrt(((sites.coarse.positions_mm - other.centre_mm[:, None, None, None]) ** 2).sum(axis=0))
            allowed &= gap >= other.mean_radius_mm + radius + 0.4 * (other.oedema_reach_mm + reach) + 4.0
        if not allowed.any():
            if lesions:
                break
            allowed = (sites.tissue[..., :2].sum(axis=-1) >= 0.5) & (sites.depth_mm() >= radius + 2.0)
            weight = sites.tissue[..., 1]
        centre = sites.pick(rng, allowed, weight=weight + 1e-3)
        kind = _metastasis_kind(rng, radius)
        rim = None if kind == "solid" else float(min(rng.uniform(1.0, 3.5) if kind == "ring" else rng.uniform(0.8, 1.8),
                                                     0.6 * radius))
        lesions.append(Lesion(
            centre_mm=centre,
            radii_mm=_axis_radii(rng, radius, 0.08),
            rotation=random_rotation(rng),
            boundary_noise_mm=float(rng.uniform(0.03, 0.12) * radius),
            boundary_length_mm=float(rng.uniform(3.0, 7.0)),
            rim_mm=rim,
            rim_noise_mm=0.0 if rim is None else float(rng.uniform(0.1, 0.6)),
            non_enhancing_fraction=0.0,
            oedema_reach_mm=reach,
            oedema_grey_factor=float(rng.uniform(0.05, 0.25)),
            displaced_fraction=float(rng.uniform(0.0, 0.4)),
            enhancement=float(rng.uniform(0.7, 1.3)),
        ))
    return lesions


def _metastasis_kind(rng: np.random.Generator, radius: float) -> str:
    """Small metastases enhance solidly; larger ones are more often ring-enhancing or cystic."""
    hollow = float(np.clip((radius - 3.0) / 8.0, 0.0, 0.85))
    if rng.random() >= hollow:
        return "solid"
    return "cystic" if rng.random() < 0.35 else "ring"


def sample_lesions_v2(domain: str, rng: np.random.Generator, sites: SiteMaps) -> list[Lesion]:
    """The lesions of one version-2 case of ``domain`` ("glioma" or "metastasis")."""
    if domain == "glioma":
        return sample_glioma_v2(rng, sites)
    if domain == "metastasis":
        return sample_metastases_v2(rng, sites)
    raise ValueError(f"unknown domain {domain!r}")
