"""One model's labels on one case: overlap scores where there is a reference, volumes always.

Scores are taken on the whole volume, so tumour marked anywhere in normal
anatomy counts against the model. For each region (WT, TC, ET):

- the reference has the region: Dice and HD95 as usual (a region the model
  missed scores Dice 0, HD95 373.13 mm); ``status`` is ``"scored"``;
- the reference has none of it (a lower-grade glioma has no enhancing
  tumour): ``status`` is ``"reference_empty"``. The BraTS convention still
  gives a number (Dice 1 / HD95 0 when the model marks none, Dice 0 /
  HD95 373.13 when it marks some), kept for comparison with challenge
  tables; but that number measures only "did the model mark any", so
  summaries leave such regions out of the mean and report the false-positive
  volume instead (``predicted_ml``).

Volumes are in ml from the voxel spacing; components are 26-connected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io.case import Case
from ..io.labels import region_mask
from ..metrics import region_metrics
from ..metrics.volumes import component_counts, volumes_ml

REGIONS = ("WT", "TC", "ET")
SCORED, REFERENCE_EMPTY = "scored", "reference_empty"


@dataclass(frozen=True)
class CaseResult:
    """One model on one case.

    Args:
        model: the model's name.
        case: the case's name.
        seconds: wall time of the segmentation.
        predicted_ml: predicted volume (ml) of NCR, ED, ET, WT and TC.
        components: connected components of each predicted region.
        reference_ml: the reference's volumes, or None for a case without reference.
        regions: per region ``{"dice", "hd95", "predicted_ml", "reference_ml", "status"}``
            (plus ``lesion_dice``/``lesion_hd95`` if asked), or None without reference.
    """

    model: str
    case: str
    seconds: float
    predicted_ml: dict[str, float]
    components: dict[str, int]
    reference_ml: dict[str, float] | None = None
    regions: dict[str, dict[str, Any]] | None = None

    @property
    def has_reference(self) -> bool:
        return self.regions is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"case": self.case, "seconds": round(self.seconds, 2), "reference": self.has_reference}
        if self.regions is not None:
            out.update(self.regions)
        out["volumes_ml"] = {"predicted": _rounded(self.predicted_ml)}
        if self.reference_ml is not None:
            out["volumes_ml"]["reference"] = _rounded(self.reference_ml)
        out["components"] = dict(self.components)
        return out


def _rounded(volumes: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in volumes.items()}


def region_scores(
    labels: np.ndarray,
    reference: np.ndarray,
    spacing: Sequence[float],
    *,
    lesion_wise: bool = False,
) -> dict[str, dict[str, Any]]:
    """Dice, HD95, volumes and status of each region of a prediction against a reference (internal labels)."""
    scores = region_metrics(labels, reference, spacing=spacing, regions=REGIONS, lesion_wise=lesion_wise)
    predicted, referenced = volumes_ml(labels, spacing), volumes_ml(reference, spacing)
    out = {}
    for region in REGIONS:
        has_reference = bool(region_mask(reference, region).any())
        out[region] = {
            **scores[region],
            "predicted_ml": round(predicted[region], 3),
            "reference_ml": round(referenced[region], 3),
            "status": SCORED if has_reference else REFERENCE_EMPTY,
        }
    return out


def score_case(
    model: str, case: Case, labels: np.ndarray, seconds: float, *, lesion_wise: bool = False
) -> CaseResult:
    """Everything the evaluation reports for ``labels`` predicted on ``case``.

    Args:
        model: the model's name.
        case: the case (its ``label``, if any, is the reference).
        labels: the predicted internal labels on the case's canonical grid.
        seconds: how long the segmentation took.
        lesion_wise: also the BraTS 2023 lesion-wise scores (cases with a reference).
    """
    spacing = case.geometry.spacing
    predicted = volumes_ml(labels, spacing)
    components = component_counts(labels)
    if case.label is None:
        return CaseResult(model, case.name, seconds, predicted, components)
    regions = region_scores(labels, case.label, spacing, lesion_wise=lesion_wise)
    return CaseResult(model, case.name, seconds, predicted, components, volumes_ml(case.label, spacing), regions)
