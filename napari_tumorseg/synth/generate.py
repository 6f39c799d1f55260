"""Synthetic multi-modal brain-tumour cases: :func:`make_case` and :func:`iter_cases`.

A case is built in this order, each step from its own random stream (so,
for example, asking for missing modalities never changes the others):

1. deform the template anatomy (pose, size, elastic) on a coarse grid;
2. draw the lesions of the domain on the deformed anatomy and add their
   mass effect to the deformation;
3. sample the tissue fractions at every brain voxel through that deformation;
4. lay the tumour compartments over them (reference labels included);
5. render each modality from the shared contrast model, then bias, contrast
   curve, scale and Rician noise, and leave 0 outside the brain.

Work happens on the brain voxels only (about a sixth of the BraTS grid) and
smooth fields live on a 4 mm grid, which is what makes a full-size case take
about a second on one core.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..io.case import MODALITIES, Case
from ..io.labels import LabelConvention
from .anatomy import load_anatomy
from .anatomy_draws import AnatomyDraws
from .appearance import Appearance, Scanner
from .contrast import ContrastParams, render, sample_contrast, vessel_field
from .deformation import DeformationParams, mass_effect, random_deformation
from .grid import BRATS_SHAPE, brats_geometry
from .lesions import DOMAINS, Lesion, SiteMaps, sample_lesions
from .nuisance import ScannerParams, acquire, bias_basis, choose_present, sample_scanner
from .points import BrainPoints, brain_points
from .structures import Structures
from .tumour import TumourFields, keep_lesion_components, tumour_fields

# The default: the version the shipped models learnt from. Version 3 is newer, an experiment whose models
# did not pass the shipping rule (docs/results/generator-v3); a change that moves a seed's case is a new version.
GENERATOR_VERSION = "2"
GENERATOR_VERSIONS: tuple[str, ...] = ("1", "2", "3", "4", "5", "6", "7")  # every version stays reproducible
_STREAMS = ("geometry", "lesions", "contrast", "bias", "missing", *(f"scanner_{m}" for m in MODALITIES))


@dataclass(eq=False)
class Phantom:
    """A synthetic case and the draws that made it (for tests, reports and debugging).

    Args:
        case: the case (images, reference label, BraTS-like geometry).
        lesions: the lesions drawn, in phantom mm.
        deformation: the anatomy's random pose and shape.
        contrast: the case's tissue and lesion signals (version 2: its appearance draw).
        scanners: modality -> its acquisition draws (present modalities only).
        points: the brain voxels and their tissue fractions after the deformation.
        version: the generator version that made it.
        anatomy: version 2's normal-anatomy draws (None in version 1).
        structures: version 2's normal structures at the brain points (None in version 1).
    """

    case: Case
    lesions: list[Lesion]
    deformation: DeformationParams
    contrast: ContrastParams | Appearance
    scanners: dict[str, ScannerParams | Scanner]
    points: BrainPoints
    version: str = "1"
    anatomy: AnatomyDraws | None = None
    structures: Structures | None = None


def case_name(domain: str, seed: int) -> str:
    """The name (and folder name) of a synthetic case, e.g. ``glioma_00042``."""
    return f"{domain}_{seed:05d}"


def _streams(domain: str, seed: int, names: tuple[str, ...] = _STREAMS, salt: int = 0) -> dict[str, np.random.Generator]:
    # crc32 of the name, not hash(): stable across processes and Python versions.
    entropy = [zlib.crc32(domain.encode()), seed] + ([salt] if salt else [])
    root = np.random.SeedSequence(entropy)
    return {name: np.random.default_rng(child) for name, child in zip(names, root.spawn(len(names)))}


def _check(domain: str, seed: int, version: str = GENERATOR_VERSION) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    if version not in GENERATOR_VERSIONS:
        raise ValueError(f"unknown generator version {version!r}; expected one of {GENERATOR_VERSIONS}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def generate_phantom(
    domain: str,
    seed: int,
    *,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    missing_prob: float = 0.0,
    version: str = GENERATOR_VERSION,
) -> Phantom:
    """Build one synthetic case with everything drawn for it.

    Args:
        domain: "glioma" or "metastasis".
        seed: non-negative integer; the same (domain, seed, shape, version) gives the same case.
        shape: canonical (z, y, x) grid over the BraTS field of view (240x240x155 mm);
            the default is the BraTS 1 mm grid, smaller shapes have larger voxels.
        missing_prob: chance that each modality is missing (never all four).
        version: generator version ("1" to "7"; the shipped models' by default).
    """
    version = str(version)
    _check(domain, seed, version)
    shape = tuple(int(n) for n in shape)
    if version != "1":
        return _generate_v2(domain, int(seed), shape, missing_prob, version)
    return _generate_v1(domain, int(seed), shape, missing_prob)


def _generate_v2(domain: str, seed: int, shape: tuple[int, int, int], missing_prob: float, version: str) -> Phantom:
    """Versions 2 to 7: one build, other anatomy or lesion constants, the same random streams (see ``version2``)."""
    from . import version2

    parts = version2.build(domain, _streams(domain, seed, version2.STREAMS, salt=2), shape, missing_prob, version)
    case = Case(name=case_name(domain, seed), images=parts.pop("images"), geometry=brats_geometry(shape),
                label=parts.pop("label"), label_convention=LabelConvention.BRATS2020)
    return Phantom(case=case, version=version, **parts)


def _generate_v1(domain: str, seed: int, shape: tuple[int, int, int], missing_prob: float) -> Phantom:
    anatomy = load_anatomy(shape)
    coarse = anatomy.coarse
    rng = _streams(domain, int(seed))

    displacement, deformation = random_deformation(rng["geometry"], coarse)
    lesions = sample_lesions(domain, rng["lesions"], SiteMaps(anatomy.at_coarse_nodes(displacement), coarse))
    for lesion in lesions:
        displacement += mass_effect(coarse.positions_mm, lesion.centre_mm, lesion.displaced_radius_mm)
    points = brain_points(anatomy, displacement, bias_basis(rng["bias"], coarse))
    tumour = tumour_fields(lesions, rng["lesions"], points.index, anatomy.spacing, points.tissue)
    keep_lesion_components(tumour, points.flat, shape, single=domain == "glioma")

    contrast = sample_contrast(rng["contrast"])
    vessels = vessel_field(rng["contrast"], points.index, anatomy.spacing, points.tissue, contrast.vessel_width)
    present = choose_present(rng["missing"], missing_prob)
    fraction = points.fraction
    images: dict[str, np.ndarray] = {}
    scanners: dict[str, ScannerParams] = {}
    for modality in present:
        stream = rng[f"scanner_{modality}"]
        scanners[modality] = sample_scanner(stream)
        signal = render(contrast, modality, points.tissue, tumour, vessels)
        intensity = acquire(signal, fraction, points.extra, scanners[modality], stream)
        images[modality] = _scatter(intensity, points.flat, shape)
    label = _scatter_label(tumour, points.flat, shape)
    case = Case(
        name=case_name(domain, int(seed)),
        images=images,
        geometry=brats_geometry(shape),
        label=label,
        label_convention=LabelConvention.BRATS2020,
    )
    return Phantom(
        case=case, lesions=lesions, deformation=deformation, contrast=contrast, scanners=scanners, points=points
    )


def _scatter(values: np.ndarray, flat: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    volume = np.zeros(shape, dtype=np.float32)
    volume.reshape(-1)[flat] = values
    return volume


def _scatter_label(tumour: TumourFields, flat: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    label = np.zeros(shape, dtype=np.uint8)
    label.reshape(-1)[flat[tumour.where]] = tumour.label
    return label


def make_case(
    domain: str,
    seed: int,
    *,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    missing_prob: float = 0.0,
    version: str = GENERATOR_VERSION,
) -> Case:
    """One synthetic case: four modalities (unless some are missing) and its reference mask.

    Args:
        domain: "glioma" (one large necrotic, rim-enhancing mass with oedema and
            mass effect) or "metastasis" (1-5 small lesions at the grey-white
            junction with disproportionate oedema).
        seed: non-negative integer; the same arguments give identical arrays.
        shape: canonical (z, y, x) = (S, P, L) grid over the BraTS field of view;
            (155, 240, 240) is the BraTS 1 mm grid, smaller shapes have larger voxels.
        missing_prob: chance that each modality is missing (never all four).
        version: generator version ("1" to "7"; the shipped models' by default).

    Returns:
        A Case named ``<domain>_<seed:05d>`` with float32 images, internal labels
        (0 BG, 1 NCR, 2 ED, 3 ET) and a BraTS-like LPS geometry.
    """
    return generate_phantom(domain, seed, shape=shape, missing_prob=missing_prob, version=version).case


def iter_cases(
    domain: str,
    seeds: Iterable[int],
    *,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    missing_prob: float = 0.0,
    version: str = GENERATOR_VERSION,
) -> Iterator[Case]:
    """Synthetic cases one at a time (only one is held in memory).

    Args:
        domain: "glioma" or "metastasis".
        seeds: the seeds, in order (e.g. ``range(100)`` for training, ``range(1000, 1020)`` held out).
        shape: the grid of every case.
        missing_prob: chance that each modality is missing.
        version: generator version.
    """
    for seed in seeds:
        yield make_case(domain, seed, shape=shape, missing_prob=missing_prob, version=version)
