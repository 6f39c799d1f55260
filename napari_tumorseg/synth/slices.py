"""Cheap axial-slice sampling from synthetic cases, for training 2D networks.

Generating a case costs about a second; cutting many slices from it costs
nothing, so training loops draw a few dozen slices per case, biased towards
slices with tumour (most slices of a brain have none).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..io.case import Case
from .generate import make_case
from .grid import BRATS_SHAPE


@dataclass(frozen=True, eq=False)
class SliceBatch:
    """Axial slices of one case.

    Args:
        images: (n, 4, y, x) float32, channels in MODALITIES order, missing ones zero.
        available: (4,) float32, 1 where the modality is present.
        labels: (n, y, x) uint8 internal labels.
        indices: (n,) the slices' z indices in the case.
        case_name: the case they come from.
    """

    images: np.ndarray
    available: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    case_name: str


def sample_axial_slices(
    case: Case, count: int, rng: np.random.Generator, *, tumour_fraction: float = 0.7
) -> SliceBatch:
    """Draw ``count`` distinct brain slices of a case, about ``tumour_fraction`` of them through tumour.

    Args:
        case: a case with a reference label.
        count: how many slices (fewer if the brain has fewer slices).
        rng: the random stream choosing them.
        tumour_fraction: share of slices drawn among those that contain tumour.

    Raises:
        ValueError: the case has no reference label.
    """
    if case.label is None:
        raise ValueError(f"{case.name}: slices for training need a reference label")
    stacked, available = case.stacked()
    brain = np.flatnonzero(np.any(stacked != 0, axis=(0, 2, 3)))
    tumour = np.flatnonzero(np.any(case.label != 0, axis=(1, 2)))
    tumour = np.intersect1d(tumour, brain)
    count = min(count, brain.size)
    from_tumour = min(int(round(count * tumour_fraction)), tumour.size)
    chosen = rng.choice(tumour, from_tumour, replace=False) if from_tumour else np.zeros(0, dtype=np.int64)
    rest = np.setdiff1d(brain, chosen)
    chosen = np.sort(np.concatenate([chosen, rng.choice(rest, count - from_tumour, replace=False)]))
    return SliceBatch(
        images=np.ascontiguousarray(np.moveaxis(stacked[:, chosen], 1, 0)),
        available=available,
        labels=case.label[chosen].copy(),
        indices=chosen,
        case_name=case.name,
    )


def iter_slice_batches(
    domain: str,
    seeds: Iterable[int],
    *,
    slices_per_case: int = 32,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    missing_prob: float = 0.0,
    tumour_fraction: float = 0.7,
    sampling_seed: int = 0,
) -> Iterator[SliceBatch]:
    """One :class:`SliceBatch` per synthetic case, generated on the fly.

    Args:
        domain: "glioma" or "metastasis".
        seeds: case seeds, in order.
        slices_per_case: slices drawn from each case.
        shape: grid of the cases.
        missing_prob: chance that each modality is missing in a case.
        tumour_fraction: share of slices through tumour.
        sampling_seed: seed of the slice choice (the cases have their own seeds).
    """
    rng = np.random.default_rng(sampling_seed)
    for seed in seeds:
        case = make_case(domain, seed, shape=shape, missing_prob=missing_prob)
        yield sample_axial_slices(case, slices_per_case, rng, tumour_fraction=tumour_fraction)
