"""What a tumour looks like in each domain: sites, sizes and shapes, drawn at random.

The two domains share the contrast model (:mod:`.contrast`) and differ only
in the structure drawn here, as glioma and brain metastasis do in the clinic:

- **glioma** (high-grade-like): one large lobulated mass of 3 to 6.5 cm deep
  in the white matter of a cerebral hemisphere; a thick, irregular enhancing
  rim around a necrotic core, sometimes non-enhancing tumour in the wall;
  oedema around it; strong mass effect.
- **metastasis**: 1 to 5 small, round lesions (5 to 25 mm) at the grey-white
  junction (where tumour emboli lodge), mostly supratentorial; small ones
  enhance solidly, larger ones often as a thin ring around necrosis; oedema
  reaching far for the lesion's size and, being vasogenic, following the
  white matter in fingers that spare the cortex; little mass effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .grid import CoarseGrid

DOMAINS: tuple[str, ...] = ("glioma", "metastasis")
# Above this height (mm from the field of view's bottom) lies the cerebrum,
# below it the cerebellum and brainstem (tentorium of the template).
SUPRATENTORIAL_MM = 62.0
METASTASIS_COUNT_WEIGHTS = np.array([0.35, 0.25, 0.17, 0.13, 0.10])  # 1..5 lesions


@dataclass(frozen=True, eq=False)
class Lesion:
    """One tumour, in phantom mm.

    Args:
        centre_mm: (3,) centre (z, y, x) from the field-of-view corner.
        radii_mm: (3,) semi-axes of the ellipsoid the mass grows from.
        rotation: (3, 3) orientation of those axes.
        boundary_noise_mm: amplitude of the lobulation of the outline.
        boundary_length_mm: size of the lobules.
        rim_mm: mean thickness of the enhancing wall around necrosis; None for
            a solidly enhancing lesion.
        rim_noise_mm: how much that thickness varies around the lesion.
        non_enhancing_fraction: share of the wall that does not enhance (glioma).
        oedema_reach_mm: how far oedema reaches from the mass into white matter.
        oedema_grey_factor: reach outside white matter relative to inside it.
        displaced_fraction: radius of the volume pushed aside, as a fraction
            of the mean radius (the rest of the mass infiltrates).
        enhancement: this lesion's contrast uptake relative to the case's.
    """

    centre_mm: np.ndarray
    radii_mm: np.ndarray
    rotation: np.ndarray
    boundary_noise_mm: float
    boundary_length_mm: float
    rim_mm: float | None
    rim_noise_mm: float
    non_enhancing_fraction: float
    oedema_reach_mm: float
    oedema_grey_factor: float
    displaced_fraction: float
    enhancement: float

    @property
    def mean_radius_mm(self) -> float:
        return float(np.prod(self.radii_mm) ** (1.0 / 3.0))

    @property
    def displaced_radius_mm(self) -> float:
        return self.displaced_fraction * self.mean_radius_mm

    @property
    def extent_mm(self) -> float:
        """Half the side of a box around the centre that holds the lesion and its oedema."""
        return float(self.radii_mm.max() + 3.0 * self.boundary_noise_mm + 1.6 * self.oedema_reach_mm + 4.0)


@dataclass(frozen=True, eq=False)
class SiteMaps:
    """Coarse maps of the deformed anatomy, to choose where lesions grow.

    Args:
        tissue: (cz, cy, cx, 3) GM, WM, CSF fractions at the coarse nodes.
        coarse: the coarse grid.
    """

    tissue: np.ndarray
    coarse: CoarseGrid

    def depth_mm(self) -> np.ndarray:
        """Distance (mm) from each node to the outside of the brain."""
        brain = self.tissue.sum(axis=-1) >= 0.5
        return ndi.distance_transform_edt(brain, sampling=self.coarse.spacing_mm).astype(np.float32)

    def pick(self, rng: np.random.Generator, allowed: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """A random position (mm) among the allowed nodes, jittered within its cell."""
        candidates = np.flatnonzero(allowed)
        if candidates.size == 0:
            raise RuntimeError("no brain position fits the lesion; the anatomy resource looks wrong")
        p = None
        if weight is not None:
            w = weight.ravel()[candidates].astype(np.float64)
            p = w / w.sum()
        node = np.array(np.unravel_index(rng.choice(candidates, p=p), allowed.shape), dtype=np.float64)
        jitter = rng.uniform(-0.5, 0.5, 3)
        return ((node + jitter) * self.coarse.spacing_mm).astype(np.float32)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.astype(np.float32)


def _axis_radii(rng: np.random.Generator, mean_radius: float, spread: float) -> np.ndarray:
    ratios = np.exp(rng.normal(0.0, spread, 3))
    ratios /= np.prod(ratios) ** (1.0 / 3.0)
    return (mean_radius * ratios).astype(np.float32)


def _height_mm(coarse: CoarseGrid) -> np.ndarray:
    return coarse.positions_mm[0]


def sample_glioma(rng: np.random.Generator, sites: SiteMaps) -> list[Lesion]:
    """One high-grade-glioma-like mass in the cerebral white matter.

    Args:
        rng: the case's lesion stream.
        sites: the deformed anatomy, coarse.
    """
    radius = float(rng.uniform(15.0, 32.0))
    gm, wm = sites.tissue[..., 0], sites.tissue[..., 1]
    allowed = (
        (wm >= 0.5)
        & (sites.depth_mm() >= 0.55 * radius + 10.0)
        & (_height_mm(sites.coarse) >= SUPRATENTORIAL_MM + 0.4 * radius)
    )
    if not allowed.any():  # a very large mass in a small head: relax the depth
        allowed = (wm >= 0.5) & (_height_mm(sites.coarse) >= SUPRATENTORIAL_MM)
    centre = sites.pick(rng, allowed, weight=wm + 0.25 * gm)
    net = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.1, 0.3))
    return [
        Lesion(
            centre_mm=centre,
            radii_mm=_axis_radii(rng, radius, 0.15),
            rotation=random_rotation(rng),
            boundary_noise_mm=float(rng.uniform(0.12, 0.22) * radius),
            boundary_length_mm=float(rng.uniform(7.0, 12.0)),
            rim_mm=float(rng.uniform(3.0, 7.0)),
            rim_noise_mm=float(rng.uniform(1.0, 2.5)),
            non_enhancing_fraction=net,
            oedema_reach_mm=float(rng.uniform(10.0, 26.0)),
            oedema_grey_factor=float(rng.uniform(0.25, 0.45)),
            displaced_fraction=float(rng.uniform(0.45, 0.8)),
            enhancement=float(rng.uniform(0.9, 1.1)),
        )
    ]


def sample_metastases(rng: np.random.Generator, sites: SiteMaps) -> list[Lesion]:
    """One to five small round lesions at the grey-white junction, well apart.

    Args:
        rng: the case's lesion stream.
        sites: the deformed anatomy, coarse.
    """
    count = int(rng.choice(np.arange(1, 6), p=METASTASIS_COUNT_WEIGHTS))
    gm, wm = sites.tissue[..., 0], sites.tissue[..., 1]
    depth = sites.depth_mm()
    junction = np.minimum(gm, wm)  # both tissues in the cell: the grey-white boundary
    height = _height_mm(sites.coarse)
    lesions: list[Lesion] = []
    for _ in range(count):
        radius = float(np.exp(rng.uniform(np.log(2.5), np.log(12.5))))
        supratentorial = rng.random() < 0.85
        allowed = (junction >= 0.2) & (depth >= radius + 4.0)
        allowed &= (height >= SUPRATENTORIAL_MM) if supratentorial else (height < SUPRATENTORIAL_MM - 5.0)
        reach = float(np.clip(radius * rng.uniform(1.2, 3.2) + rng.uniform(5.0, 12.0), 8.0, 34.0))
        for other in lesions:  # apart enough that their oedemas mostly stay separate
            gap = np.sqrt(((sites.coarse.positions_mm - other.centre_mm[:, None, None, None]) ** 2).sum(axis=0))
            allowed &= gap >= other.mean_radius_mm + radius + 0.6 * (other.oedema_reach_mm + reach) + 6.0
        if not allowed.any() and not lesions:  # the first lesion always finds a place
            allowed = (junction >= 0.1) & (depth >= 4.0)
        if not allowed.any():
            break  # the head is full: fewer lesions, never overlapping ones
        centre = sites.pick(rng, allowed, weight=junction)
        ring_probability = float(np.clip((radius - 3.5) / 6.0, 0.0, 0.8))
        rim = float(min(rng.uniform(1.2, 3.0), 0.55 * radius)) if rng.random() < ring_probability else None
        lesions.append(
            Lesion(
                centre_mm=centre,
                radii_mm=_axis_radii(rng, radius, 0.06),
                rotation=random_rotation(rng),
                boundary_noise_mm=float(rng.uniform(0.04, 0.1) * radius),
                boundary_length_mm=float(rng.uniform(3.0, 6.0)),
                rim_mm=rim,
                rim_noise_mm=0.3 if rim is not None else 0.0,
                non_enhancing_fraction=0.0,
                oedema_reach_mm=reach,
                oedema_grey_factor=float(rng.uniform(0.05, 0.2)),
                displaced_fraction=float(rng.uniform(0.0, 0.3)),
                enhancement=float(rng.uniform(0.9, 1.1)),
            )
        )
    return lesions


def sample_lesions(domain: str, rng: np.random.Generator, sites: SiteMaps) -> list[Lesion]:
    """The lesions of one case of ``domain`` ("glioma" or "metastasis").

    Args:
        domain: which tumour type.
        rng: the case's lesion stream.
        sites: the deformed anatomy, coarse.
    """
    if domain == "glioma":
        return sample_glioma(rng, sites)
    if domain == "metastasis":
        return sample_metastases(rng, sites)
    raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
