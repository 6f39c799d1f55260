"""What the scanner adds: bias field, intensity scale and contrast curve, Rician noise, missing sequences.

Each modality is acquired separately, so each gets its own draws. The
intensity pipeline per modality, on the noise-free signal ``s`` (WM-on-T1
units, 0 outside the brain):

    s' = bias * scale * max(s + offset * fraction, 0) ** gamma
    image = | s' + sigma * (n1 + i n2) |      (magnitude of complex Gaussian noise: Rician)

The bias field is ``exp`` of two smooth shared basis fields mixed per
modality: the receive coil is the same for every sequence of a session, so
the inhomogeneity has a common shape with sequence-specific strength.
Signals and samples are flat arrays over the brain voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.case import MODALITIES
from .grid import FIELD_OF_VIEW_MM, CoarseGrid



@dataclass(frozen=True)
class ScannerParams:
    """One modality's acquisition draws.

    Args:
        scale: arbitrary scanner units per WM-on-T1 unit.
        gamma: contrast curve exponent.
        offset: additive signal inside the brain, WM units.
        bias_weights: (2,) weights of the two bias basis fields (log scale).
        noise: Rician noise standard deviation, WM units before ``scale``.
    """

    scale: float
    gamma: float
    offset: float
    bias_weights: tuple[float, float]
    noise: float


def sample_scanner(rng: np.random.Generator) -> ScannerParams:
    """Draw one modality's acquisition, spread like BraTS's mix of scanners and sites.

    Args:
        rng: this modality's nuisance stream.
    """
    return ScannerParams(
        scale=float(np.exp(rng.uniform(np.log(150.0), np.log(3000.0)))),
        gamma=float(rng.uniform(0.8, 1.25)),
        offset=float(rng.uniform(-0.03, 0.06)),
        bias_weights=tuple(float(w) for w in rng.normal(0.0, 0.12, 2).clip(-0.25, 0.25)),
        noise=float(rng.uniform(0.015, 0.05)),
    )


def bias_basis(rng: np.random.Generator, coarse: CoarseGrid) -> np.ndarray:
    """Two smooth unit-variance fields on the coarse grid, (cz, cy, cx, 2) float32.

    Each is a random polynomial of degree 3 in the position (as TorchIO's
    ``RandomBiasField`` draws them): smooth over the head by construction, and
    cheap to evaluate.

    Args:
        rng: the case's nuisance stream.
        coarse: the grid.
    """
    centre = np.asarray(FIELD_OF_VIEW_MM, dtype=np.float32).reshape(3, 1, 1, 1) / 2.0
    u = (coarse.positions_mm - centre) / np.float32(max(FIELD_OF_VIEW_MM) / 2.0)
    # Each coordinate varies along its own axis only: its powers are taken on that axis (contiguous, as
    # the whole grid was) and broadcast, the same products in the same order on a fraction of the numbers.
    along = [np.ascontiguousarray(u[0, :, 0, 0]).reshape(-1, 1, 1),
             np.ascontiguousarray(u[1, 0, :, 0]).reshape(1, -1, 1),
             np.ascontiguousarray(u[2, 0, 0, :]).reshape(1, 1, -1)]
    powers = [(i, j, k) for i in range(4) for j in range(4 - i) for k in range(4 - i - j) if i + j + k > 0]
    fields = []
    for _ in range(2):
        coefficients = rng.normal(0.0, 1.0, len(powers)) / (1.0 + np.array([sum(p) for p in powers]))
        field = sum(c * along[0] ** i * along[1] ** j * along[2] ** k for c, (i, j, k) in zip(coefficients, powers))
        field = field - field.mean()
        fields.append((field / max(float(field.std()), 1e-6)).astype(np.float32))
    return np.stack(fields, axis=-1)


def acquire(
    signal: np.ndarray,
    fraction: np.ndarray,
    bias_basis_at_points: np.ndarray,
    params: ScannerParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """Turn a noise-free signal at the brain points into scanner intensities.

    Args:
        signal: (N,) noise-free signal, WM-on-T1 units.
        fraction: (N,) brain volume fraction of each voxel (fades at the edge).
        bias_basis_at_points: (2, N) the bias basis fields at the points.
        params: this modality's acquisition.
        rng: this modality's nuisance stream (after ``sample_scanner``).

    Returns:
        (N,) float32 intensities, all positive.
    """
    value = np.maximum(signal + np.float32(params.offset) * fraction, 1e-4)
    value = np.power(value, np.float32(params.gamma), dtype=np.float32)
    log_bias = np.asarray(params.bias_weights, dtype=np.float32) @ bias_basis_at_points
    value *= np.exp(log_bias) * np.float32(params.scale)
    sigma = np.float32(params.noise * params.scale)
    real = value + sigma * rng.standard_normal(value.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(value.shape, dtype=np.float32)
    # The magnitude image is never exactly 0 in the brain; 0 means "outside" in BraTS.
    return np.maximum(np.sqrt(real * real + imaginary * imaginary), np.float32(1e-3 * params.scale))


def choose_present(rng: np.random.Generator, missing_prob: float) -> tuple[str, ...]:
    """Which modalities a case has: each missing with ``missing_prob``, never all four.

    Args:
        rng: the case's missing-modality stream.
        missing_prob: chance that any one modality is missing (0 keeps all).
    """
    if not 0.0 <= missing_prob <= 1.0:
        raise ValueError(f"missing_prob must be in [0, 1], got {missing_prob}")
    draws = rng.random(len(MODALITIES))
    keep = [m for m, draw in zip(MODALITIES, draws) if draw >= missing_prob]
    if not keep:
        keep = [MODALITIES[int(rng.integers(len(MODALITIES)))]]
    return tuple(m for m in MODALITIES if m in keep)
