"""One contrast model for both domains: signal of each tissue and tumour compartment per modality.

Signals are relative to normal white matter on T1 (= 1) and follow the
textbook appearance of a 1.5-3 T clinical protocol:

- T1: WM > GM > CSF (dark); oedema slightly dark; necrosis dark; enhancing
  tumour a little darker than WM (it enhances only after contrast).
- T1c: T1 plus gadolinium: enhancing tumour bright, and a few enhancing
  vessels in the sulci (real T1c shows them; they are what small metastases
  get confused with).
- T2: CSF brightest, then necrosis, oedema, GM; WM dark.
- FLAIR: T2 with CSF nulled: CSF dark, oedema brightest, necrosis bright-ish.

Glioma and metastasis phantoms draw from exactly the same distributions here;
they differ in structure only (:mod:`.lesions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.case import MODALITIES
from .grid import FIELD_OF_VIEW_MM, GridSampler, smooth_noise
from .tumour import TumourFields

# modality -> signal of (GM, WM, CSF) at full volume fraction.
TISSUE_SIGNAL: dict[str, tuple[float, float, float]] = {
    "flair": (0.88, 0.72, 0.20),
    "t1": (0.70, 1.00, 0.28),
    "t1c": (0.72, 1.00, 0.30),
    "t2": (0.82, 0.58, 1.75),
}
# modality -> signal of (oedema, necrosis, non-enhancing tumour, enhancing tumour).
LESION_SIGNAL: dict[str, tuple[float, float, float, float]] = {
    "flair": (1.40, 0.95, 1.20, 1.12),
    "t1": (0.80, 0.42, 0.66, 0.82),
    "t1c": (0.82, 0.45, 0.74, 1.70),
    "t2": (1.30, 1.55, 1.20, 1.05),
}
# How much of the enhancement texture the non-contrast sequences show.
TEXTURE_SHARE = {"flair": 0.4, "t1": 0.4, "t1c": 1.0, "t2": 0.4}
VESSEL_STEP_MM, VESSEL_LENGTH_MM = 3.0, 9.0  # grid and correlation length of the vessel noise
VESSEL_SIGNAL = 0.8  # extra T1c signal of an enhancing vessel, WM units


@dataclass(frozen=True)
class ContrastParams:
    """One case's tissue and lesion signals (the shared model, jittered per case).

    Args:
        tissue: modality -> (3,) GM, WM, CSF signal.
        lesion: modality -> (4,) oedema, necrosis, non-enhancing, enhancing signal.
        vessel_width: half-width of the enhancing vessels, in noise units.
    """

    tissue: dict[str, np.ndarray]
    lesion: dict[str, np.ndarray]
    vessel_width: float


def sample_contrast(rng: np.random.Generator) -> ContrastParams:
    """Jitter every signal by a few percent and the enhancement by more (dose, timing).

    Args:
        rng: the case's contrast stream.
    """

    def jitter(values: tuple[float, ...], spread: float) -> np.ndarray:
        factors = np.exp(rng.normal(0.0, spread, len(values)).clip(-2.0 * spread, 2.0 * spread))
        return (np.asarray(values) * factors).astype(np.float32)

    tissue = {m: jitter(TISSUE_SIGNAL[m], 0.05) for m in MODALITIES}
    lesion = {m: jitter(LESION_SIGNAL[m], 0.06) for m in MODALITIES}
    # Contrast uptake depends on dose and delay: scale the enhancement above T1.
    base = lesion["t1"][3]
    lesion["t1c"][3] = base + (lesion["t1c"][3] - base) * np.float32(rng.uniform(0.75, 1.25))
    return ContrastParams(tissue=tissue, lesion=lesion, vessel_width=float(rng.uniform(0.1, 0.18)))


def vessel_field(
    rng: np.random.Generator, index: np.ndarray, spacing: np.ndarray, tissue: np.ndarray, width: float
) -> np.ndarray:
    """Enhancing-vessel strength (0..1) at the brain voxels: thin tubes running through CSF spaces.

    The tubes are where two independent smooth noise fields both cross zero:
    the intersection of two level sets is a set of long wandering curves, like
    the cortical veins in the sulci and the choroid plexus in the ventricles.

    Args:
        rng: the case's contrast stream.
        index: (3, N) voxel indices of the brain points.
        spacing: voxel size (mm).
        tissue: (3, N) GM, WM, CSF fractions.
        width: tube half-width in noise units (larger: thicker, more vessels).
    """
    shape = tuple(int(np.ceil(f / VESSEL_STEP_MM)) + 1 for f in FIELD_OF_VIEW_MM)
    sigma = VESSEL_LENGTH_MM / VESSEL_STEP_MM
    fields = np.stack([smooth_noise(rng, shape, sigma) for _ in range(2)], axis=-1)
    strength = np.zeros(index.shape[1], dtype=np.float32)
    in_csf = np.flatnonzero(tissue[2] > 0.08)
    if in_csf.size:
        sampler = GridSampler(index[:, in_csf], spacing, np.zeros(3), VESSEL_STEP_MM, shape)
        first, second = sampler.sample_all(fields)
        closeness = (first * first + second * second) / np.float32(width * width)
        strength[in_csf] = np.clip(1.5 - closeness, 0.0, 1.0)
    return strength


def render(
    params: ContrastParams,
    modality: str,
    tissue: np.ndarray,
    tumour: TumourFields,
    vessels: np.ndarray,
) -> np.ndarray:
    """Noise-free signal of one modality at the brain points, WM-on-T1 units.

    Args:
        params: the case's signals.
        modality: one of MODALITIES.
        tissue: (3, N) GM, WM, CSF fractions (their sum fades at the brain's edge).
        tumour: the tumour compartments at the points they touch.
        vessels: (N,) enhancing-vessel strength.
    """
    signal = params.tissue[modality] @ tissue
    if modality == "t1c":
        signal += np.float32(VESSEL_SIGNAL) * vessels
    return composite_tumour(signal, tissue, tumour, params.lesion[modality], TEXTURE_SHARE[modality])


def composite_tumour(
    signal: np.ndarray,
    tissue: np.ndarray,
    tumour: TumourFields,
    lesion_signal: tuple[float, float, float, float] | np.ndarray,
    texture_share: float,
) -> np.ndarray:
    """Lay the tumour compartments over a normal-brain signal (in place where possible), float32.

    Args:
        signal: (N,) the normal brain's signal at the brain points.
        tissue: (3, N) GM, WM, CSF fractions (their sum fades at the brain's edge).
        tumour: the tumour compartments at the points they touch.
        lesion_signal: oedema, necrosis, non-enhancing and enhancing tumour signal.
        texture_share: how much of the enhancement texture this modality shows.
    """
    if tumour.where.size == 0:
        return signal.astype(np.float32)
    oedema_s, necrosis_s, non_enhancing_s, enhancing_s = lesion_signal
    at = tumour.where
    local = signal[at]
    fraction = tissue[0, at] + tissue[1, at] + tissue[2, at]
    # Oedema is water in the tissue: it replaces the tissue's own signal.
    local += tumour.oedema * (np.float32(oedema_s) * tumour.heterogeneity * fraction - local)
    texture = 1.0 + np.float32(texture_share) * (tumour.uptake - 1.0)
    wall = enhancing_s * texture
    wall += tumour.non_enhancing * (np.float32(non_enhancing_s) * tumour.heterogeneity - wall)
    inside = wall + tumour.core * (np.float32(necrosis_s) * tumour.heterogeneity - wall)
    local += tumour.mass * (inside * fraction - local)
    signal[at] = local
    return signal.astype(np.float32)
