"""Version-2 appearance: every class's signal drawn per case and per modality, SynthSeg-style.

Version 1 jittered one textbook contrast by a few percent, so a network could
learn "z-scored FLAIR above 1.5 is oedema" and fail on the next scanner.
Here each case draws, for each modality, the signal of every tissue,
structure and tumour compartment from wide ranges (relative to white matter,
set by eye from published protocols and the appearance of clinical scans,
never fitted to the real development cases), keeping only the orderings a
radiologist relies on:

- FLAIR: CSF dark; oedema and non-enhancing tumour brighter than both
  grey and white matter (which may swap order between scanners);
- T1: white matter above grey matter above CSF; tumour darkish;
- T1c: the T1 contrast plus gadolinium: enhancing tumour, vessels, dura,
  sinuses and choroid plexus enhance, by amounts drawn per case;
- T2: CSF brightest of the normal tissues; oedema, necrosis and
  non-enhancing tumour bright; flow voids dark.

:func:`acquire_volume` then applies the scanner: contrast curve, bias field,
Rician noise and blur (thick slices along a random axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..io.case import MODALITIES
from .structures import Structures

# class -> modality -> (low, high) signal relative to `reference` (log-uniform draw).
# reference "wm": white matter = 1; "matter": the brighter of grey and white matter.
RANGES: dict[str, tuple[str, dict[str, tuple[float, float]]]] = {
    "gm": ("wm", {"flair": (0.85, 1.45), "t1": (0.55, 0.88), "t2": (1.1, 1.7)}),
    "csf": ("matter", {"flair": (0.08, 0.5), "t1": (0.12, 0.5), "t2": (1.4, 3.2)}),
    "rim": ("matter", {"flair": (1.1, 1.8), "t1": (0.75, 1.0), "t2": (1.05, 1.8)}),
    "wmh": ("matter", {"flair": (1.2, 2.2), "t1": (0.7, 0.98), "t2": (1.1, 2.0)}),
    "choroid": ("wm", {"flair": (0.8, 1.8), "t1": (0.6, 1.0), "t2": (0.9, 2.2)}),
    "vessel": ("wm", {"flair": (0.4, 1.6), "t1": (0.4, 1.0), "t2": (0.2, 1.2)}),
    "dura": ("wm", {"flair": (0.4, 1.5), "t1": (0.4, 1.0), "t2": (0.3, 1.2)}),
    "oedema": ("matter", {"flair": (1.2, 2.2), "t1": (0.6, 0.95), "t2": (1.15, 2.2)}),
    "necrosis": ("matter", {"flair": (0.4, 1.8), "t1": (0.2, 0.65), "t2": (1.2, 2.8)}),
    "non_enhancing": ("matter", {"flair": (1.05, 2.0), "t1": (0.45, 0.85), "t2": (1.1, 2.4)}),
    "enhancing": ("matter", {"flair": (0.9, 1.8), "t1": (0.55, 1.0), "t2": (0.9, 1.8)}),
}
# Extra T1c signal after gadolinium, WM units; classes not listed do not enhance.
ENHANCEMENT: dict[str, tuple[float, float]] = {
    "enhancing": (0.45, 1.8), "vessel": (0.5, 2.5), "dura": (0.4, 2.0), "choroid": (0.6, 2.2),
}
FLOW_VOID = {"flair": (0.2, 0.8), "t2": (0.15, 0.7)}  # signal factor in flow voids
# Version 6: the oedema and non-enhancing tumour of some cases are only faintly bright in one sequence
# (relative to the brighter of grey and white matter; set from the literature, not from the real cases):
# - "t2": infiltrative tumour and oedema whose T2 is barely above grey matter's, found by its FLAIR;
# - "flair": the T2-FLAIR mismatch of IDH-mutant astrocytomas (Patel et al., Clin Cancer Res 2017;
#   Jain et al., Neuro-Oncology 2020): T2 bright, FLAIR relatively dark.
FAINT_LESIONS = {"t2": 0.2, "flair": 0.2}  # chance per case that the lesion is faint in that sequence
FAINT_RANGE = {"t2": (0.95, 1.3), "flair": (0.9, 1.25)}
FAINT_CLASSES = ("oedema", "non_enhancing")
# Version 7: in some cases the enhancing tumour takes up little gadolinium (patchy, faint enhancement, as in
# enhancing lower-grade gliomas or at a low dose; set by eye below ENHANCEMENT's range, not from the real cases).
FAINT_ENHANCEMENT_CHANCE = 0.3
FAINT_ENHANCEMENT = (0.15, 0.45)  # extra T1c signal of the enhancing tumour, WM units
FALLOFF_FROM_MM, FALLOFF_RANGE_MM = 75.0, 60.0  # coil fall-off: from this height down, full at range below
LESION_ORDER = ("oedema", "necrosis", "non_enhancing", "enhancing")  # as contrast.LESION_SIGNAL


@dataclass(frozen=True)
class Appearance:
    """One case's signals: modality -> class -> signal (WM = 1), flow-void factors, texture gain,
    and the factor of everything below the tentorium."""

    signal: dict[str, dict[str, float]]
    flow_void: dict[str, float]
    texture: dict[str, float]
    infratentorial: dict[str, float]
    faint: str | None = None  # what versions 6 and 7 made faint: "t2", "flair", "enhancement" or None


def _draw(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def sample_appearance(
    rng: np.random.Generator, faint_lesions: bool = False, faint_enhancement: bool = False
) -> Appearance:
    """Draw every class's signal in every modality for one case.

    Args:
        rng: the case's appearance stream.
        faint_lesions: version 6: the lesion may be faint in FLAIR or T2 (:data:`FAINT_LESIONS`).
        faint_enhancement: version 7: the enhancing tumour may enhance faintly (:data:`FAINT_ENHANCEMENT`).
    """
    signal: dict[str, dict[str, float]] = {}
    for modality in ("flair", "t1", "t2"):
        values = {"wm": 1.0}
        for name, (reference, ranges) in RANGES.items():
            base = 1.0 if reference == "wm" else max(values["wm"], values["gm"])
            values[name] = base * _draw(rng, *ranges[modality])
        signal[modality] = values
    faint = _make_lesion_faint(rng, signal) if faint_lesions else None
    # T1c: the same T1 weighting, a little brighter overall, plus each class's uptake.
    signal["t1c"] = {name: value * _draw(rng, 0.95, 1.1) for name, value in signal["t1"].items()}
    uptake = {name: _draw(rng, low, high) for name, (low, high) in ENHANCEMENT.items()}
    if faint_enhancement:
        # A child stream, as version 6's: every other draw of the seed stays version 2's.
        child = rng.spawn(1)[0]
        if child.random() < FAINT_ENHANCEMENT_CHANCE:
            uptake["enhancing"], faint = _draw(child, *FAINT_ENHANCEMENT), "enhancement"
    for name, extra in uptake.items():
        signal["t1c"][name] += extra
    flow_void = {m: float(rng.uniform(*FLOW_VOID[m])) if m in FLOW_VOID else 1.0 for m in MODALITIES}
    texture = {m: float(rng.uniform(0.01, 0.06)) for m in MODALITIES}
    # Coil sensitivity and tissue make the posterior fossa brighter or darker than the cerebrum.
    infratentorial = {m: _draw(rng, 0.7, 1.35) for m in MODALITIES}
    return Appearance(signal=signal, flow_void=flow_void, texture=texture, infratentorial=infratentorial, faint=faint)


def _make_lesion_faint(rng: np.random.Generator, signal: dict[str, dict[str, float]]) -> str | None:
    """Version 6: redraw the oedema and non-enhancing tumour of one sequence from its faint range, by chance.

    Drawn from a child of the appearance stream (``spawn`` leaves the parent's own draws untouched), so a
    seed keeps version 2's every other signal and the two versions compare case by case.

    Returns:
        The sequence made faint, or None.
    """
    child = rng.spawn(1)[0]
    pick = child.random()
    for modality, chance in FAINT_LESIONS.items():
        if pick < chance:
            matter = max(signal[modality]["wm"], signal[modality]["gm"])
            for name in FAINT_CLASSES:
                signal[modality][name] = matter * _draw(child, *FAINT_RANGE[modality])
            return modality
        pick -= chance
    return None


def _blend(signal: np.ndarray, where: np.ndarray, membership: np.ndarray, value: np.ndarray) -> None:
    """``signal <- signal + membership * (value - signal)`` at the points ``where`` (a structure replaces
    what was there; elsewhere its membership is 0 and nothing changes).

    Args:
        signal: (N,) the signal, changed in place.
        where: indices of the points the structure touches.
        membership, value: the structure's membership and signal at those points.
    """
    local = signal[where]
    local += membership * (value - local)
    signal[where] = local


def render_normal(appearance: Appearance, modality: str, tissue: np.ndarray, structures: Structures) -> np.ndarray:
    """Noise-free signal of the normal brain at the brain points, WM units.

    Args:
        appearance: the case's signals.
        modality: one of MODALITIES.
        tissue: (3, N) GM, WM, CSF fractions.
        structures: the normal structures' memberships.
    """
    s = appearance.signal[modality]
    gm, wm, csf = tissue
    signal = (np.float32(s["gm"]) * gm + np.float32(s["wm"]) * wm).astype(np.float32)
    signal *= 1.0 + np.float32(appearance.texture[modality]) * structures.texture
    signal += np.float32(s["csf"]) * csf
    for name in ("rim", "wmh"):
        at = structures.support(name)
        matter, fluid = gm[at] + wm[at], csf[at]
        value = np.float32(s[name]) * matter + np.float32(s["csf"]) * fluid
        _blend(signal, at, getattr(structures, name)[at] * matter, value)
    at = structures.support("flow_void")
    void = structures.flow_void[at]
    csf_signal = np.float32(s["csf"]) * (1.0 + (np.float32(appearance.flow_void[modality]) - 1.0) * void)
    _blend(signal, at, structures.ventricle[at] * (void > 0), csf_signal * (gm[at] + wm[at] + csf[at]))
    for name in ("choroid", "vessel", "dura"):
        at = structures.support(name)
        fraction = gm[at] + wm[at] + csf[at]
        _blend(signal, at, getattr(structures, name)[at], np.float32(s[name]) * fraction)
    at = structures.support("infratentorial")
    signal[at] *= 1.0 + np.float32(appearance.infratentorial[modality] - 1.0) * structures.infratentorial[at]
    return signal


def lesion_signals(appearance: Appearance, modality: str) -> tuple[float, float, float, float]:
    """(oedema, necrosis, non-enhancing, enhancing) signal in this modality, for the tumour compositing."""
    s = appearance.signal[modality]
    return tuple(float(s[name]) for name in LESION_ORDER)


@dataclass(frozen=True)
class Scanner:
    """One modality's acquisition (version 2).

    Args:
        scale: scanner units per WM unit.
        gamma: contrast curve exponent.
        bias_weights: (2,) weights of the shared bias basis (log scale).
        regional: log-amplitude of this sequence's own smooth intensity variation
            (susceptibility, flow, coil), on top of the shared bias.
        falloff: log-loss of signal at the lower end of the head coil (negative: a gain).
        noise: Rician noise standard deviation, WM units before ``scale``.
        blur_mm: (3,) Gaussian blur sigma along (z, y, x) in mm (thick slices along one axis).
    """

    scale: float
    gamma: float
    bias_weights: tuple[float, float]
    regional: float
    falloff: float
    noise: float
    blur_mm: tuple[float, float, float]


def sample_scanner(rng: np.random.Generator) -> Scanner:
    """Draw one modality's acquisition: wider than version 1's, with thick slices half the time."""
    blur = np.full(3, rng.uniform(0.0, 0.6))
    blur[blur < 0.3] = 0.0  # too little to see, and the costliest step to run
    if rng.random() < 0.5:
        axis = 0 if rng.random() < 0.7 else int(rng.integers(1, 3))
        blur[axis] = rng.uniform(0.6, 2.2)
    return Scanner(
        scale=_draw(rng, 100.0, 5000.0),
        gamma=_draw(rng, 0.65, 1.5),
        bias_weights=tuple(float(w) for w in rng.normal(0.0, 0.2, 2).clip(-0.45, 0.45)),
        regional=float(rng.uniform(0.0, 0.2)),
        falloff=float(rng.uniform(-0.15, 0.5)),
        noise=_draw(rng, 0.005, 0.05),
        blur_mm=tuple(float(b) for b in blur),
    )


@dataclass(frozen=True, eq=False)
class PointBox:
    """The brain points' bounding box (plus a margin), where volume operations such as blur run.

    Args:
        slices: the box in the full volume.
        shape: its shape.
        local_flat: (N,) flat index of each point inside the box.
    """

    slices: tuple[slice, slice, slice]
    shape: tuple[int, int, int]
    local_flat: np.ndarray

    @classmethod
    def around(cls, index: np.ndarray, shape: tuple[int, int, int], margin: int = 4) -> PointBox:
        """The box around points at voxel indices (3, N) of a volume of ``shape``."""
        low = np.maximum(index.min(axis=1) - margin, 0)
        high = np.minimum(index.max(axis=1) + 1 + margin, shape)
        size = tuple(int(n) for n in high - low)
        local = ((index[0] - low[0]) * size[1] + (index[1] - low[1])) * size[2] + (index[2] - low[2])
        return cls(tuple(slice(int(a), int(b)) for a, b in zip(low, high)), size, local)


def coil_log_gain(
    scanner: Scanner, bias_basis_at_points: np.ndarray, regional_field: np.ndarray, height_mm: np.ndarray
) -> np.ndarray:
    """Log of the receive gain of one sequence at the brain points.

    The shared coil bias, the sequence's own smooth variation, and the fall-off
    of a head coil's sensitivity towards its lower end, which darkens (or, after
    some scanners' corrections, brightens) the posterior fossa.

    Args:
        scanner: the sequence's acquisition.
        bias_basis_at_points: (2, N) the shared bias basis.
        regional_field: (N,) the sequence's own unit-variance smooth field.
        height_mm: (N,) height of the points above the field of view's bottom.
    """
    log_gain = np.asarray(scanner.bias_weights, dtype=np.float32) @ bias_basis_at_points
    log_gain += np.float32(scanner.regional) * regional_field
    lower = np.clip((np.float32(FALLOFF_FROM_MM) - height_mm) / np.float32(FALLOFF_RANGE_MM), 0.0, 1.0)
    log_gain -= np.float32(scanner.falloff) * lower
    return log_gain


def acquire_volume(
    signal: np.ndarray,
    box: PointBox,
    spacing: np.ndarray,
    log_gain: np.ndarray,
    scanner: Scanner,
    rng: np.random.Generator,
) -> np.ndarray:
    """Scanner intensities of one modality at the brain points (the volume is 0 outside: skull-stripped).

    Args:
        signal: (N,) noise-free signal at the brain points, WM units.
        box: the points' bounding box (blur runs inside it).
        spacing: voxel size (mm).
        log_gain: (N,) log of the receive gain at the points (see :func:`coil_log_gain`).
        scanner: this modality's acquisition.
        rng: this modality's scanner stream (after :func:`sample_scanner`).

    Returns:
        (N,) float32 intensities, all positive.
    """
    value = np.power(np.maximum(signal, 1e-4), np.float32(scanner.gamma), dtype=np.float32)
    value *= np.exp(log_gain)
    sigma = np.float32(scanner.noise)
    real = value + sigma * rng.standard_normal(value.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(value.shape, dtype=np.float32)
    value = np.sqrt(real * real + imaginary * imaginary)
    sigmas = np.asarray(scanner.blur_mm) / spacing
    if sigmas.max() > 0.25:
        # Thick slices average their neighbours, and the brain's edge with the 0 around it.
        volume = np.zeros(box.shape, dtype=np.float32)
        volume.reshape(-1)[box.local_flat] = value
        volume = ndi.gaussian_filter(volume, np.where(sigmas > 0.25, sigmas, 0.0), mode="constant", truncate=2.5)
        value = volume.reshape(-1)[box.local_flat]
    # The magnitude image is never exactly 0 in the brain; 0 means "outside" in BraTS.
    return np.maximum(value * np.float32(scanner.scale), np.float32(1e-3 * scanner.scale))
