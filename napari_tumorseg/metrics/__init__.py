"""Segmentation metrics per BraTS region: Dice, HD95 and lesion-wise scores.

Regions (WT, TC, ET) are built from the internal labels (see io/labels.py).
Conventions for empty masks are documented in :mod:`.overlap` and
:mod:`.lesions`; they follow the BraTS evaluations.

    scores = region_metrics(pred_labels, ref_labels, spacing=case.geometry.spacing)
    scores["ET"]["dice"], scores["WT"]["hd95"], scores["TC"]["lesion_dice"]
    summary = summarize([scores_case_1, scores_case_2, ...])  # mean, std, n per metric
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..io.labels import REGIONS, region_mask
from .lesions import LESION_MISS_HD95, LesionMatch, LesionWiseScores, lesion_wise_scores
from .overlap import BRATS_EMPTY_HD95, dice, hd95, surface_distances

__all__ = [
    "BRATS_EMPTY_HD95",
    "LESION_MISS_HD95",
    "LesionMatch",
    "LesionWiseScores",
    "dice",
    "hd95",
    "lesion_wise_scores",
    "region_metrics",
    "summarize",
    "surface_distances",
]

RegionScores = dict[str, dict[str, float]]


def region_metrics(
    pred_labels: np.ndarray,
    ref_labels: np.ndarray,
    spacing: float | Sequence[float] | None = None,
    *,
    regions: Sequence[str] = ("WT", "TC", "ET"),
    lesion_wise: bool = True,
    dilation: int = 3,
    min_volume_mm3: float = 50.0,
    empty_hd95: float = BRATS_EMPTY_HD95,
) -> RegionScores:
    """Dice, HD95 (and lesion-wise Dice/HD95) per region of two internal-label volumes.

    Args:
        pred_labels: predicted internal labels (0..3).
        ref_labels: reference internal labels, same shape.
        spacing: voxel size in mm per axis (``case.geometry.spacing``).
        regions: which of WT, TC, ET.
        lesion_wise: add "lesion_dice" and "lesion_hd95" (BraTS 2023).
        dilation: lesion-wise dilation (3 for gliomas, 1 for metastases).
        min_volume_mm3: lesion-wise volume threshold (50 for gliomas, 2 for metastases).
        empty_hd95: HD95 when exactly one mask of a region is empty.

    Returns ``{region: {"dice": ..., "hd95": ..., "lesion_dice": ..., "lesion_hd95": ...}}``.
    """
    pred_labels, ref_labels = np.asarray(pred_labels), np.asarray(ref_labels)
    if pred_labels.shape != ref_labels.shape:
        raise ValueError(f"prediction shape {pred_labels.shape} differs from reference shape {ref_labels.shape}")
    unknown = [r for r in regions if r not in REGIONS]
    if unknown:
        raise ValueError(f"unknown regions {unknown}; expected some of {tuple(REGIONS)}")
    out: RegionScores = {}
    for region in regions:
        pred, ref = region_mask(pred_labels, region), region_mask(ref_labels, region)
        scores = {"dice": dice(pred, ref), "hd95": hd95(pred, ref, spacing, empty_value=empty_hd95)}
        if lesion_wise:
            lesions = lesion_wise_scores(pred, ref, spacing, dilation=dilation, min_volume_mm3=min_volume_mm3)
            scores["lesion_dice"] = lesions.dice
            scores["lesion_hd95"] = lesions.hd95
        out[region] = scores
    return out


def summarize(per_case: Iterable[RegionScores]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean, standard deviation (population) and count of every metric over cases; NaNs skipped."""
    values: dict[str, dict[str, list[float]]] = {}
    for scores in per_case:
        for region, metrics in scores.items():
            for name, value in metrics.items():
                values.setdefault(region, {}).setdefault(name, []).append(float(value))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for region, metrics in values.items():
        summary[region] = {}
        for name, series in metrics.items():
            finite = np.asarray([v for v in series if not np.isnan(v)], dtype=float)
            summary[region][name] = {
                "mean": float(finite.mean()) if finite.size else float("nan"),
                "std": float(finite.std()) if finite.size else float("nan"),
                "n": int(finite.size),
            }
    return summary
