"""Every model's results over a set of cases, and their honest summary.

Per model:

- ``summary``: mean, std and count of each metric over the cases whose
  reference has the region (see :mod:`.scoring`); a region no reference has
  gets ``None`` (``n`` 0), never a number that only says "marked some or not".
- ``summary_brats``: the BraTS convention over every case with a reference
  (empty-reference regions count as Dice 1 / HD95 0, or 0 / 373.13), for
  comparison with challenge tables and earlier records.
- ``reference_empty``: per region, the cases whose reference has none of it,
  with the volume the model marked there (a false positive when above 0).
- ``unlabelled``: the cases without a reference (volumes and components are in
  each case's entry of ``per_case``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..metrics import summarize
from .scoring import REFERENCE_EMPTY, REGIONS, SCORED, CaseResult

_METRICS = ("dice", "hd95", "lesion_dice", "lesion_hd95")


def _scores(result: CaseResult, statuses: tuple[str, ...]) -> dict[str, dict[str, float]]:
    assert result.regions is not None
    return {
        region: {m: float(v) for m, v in scores.items() if m in _METRICS}
        for region, scores in result.regions.items()
        if scores["status"] in statuses
    }


def _with_all_regions(summary: dict[str, Any], present: dict[str, set[str]]) -> dict[str, Any]:
    """Regions no case scored still appear, with ``None`` means and n = 0."""
    for region in REGIONS:
        metrics = summary.setdefault(region, {})
        for metric in present.get(region, {"dice", "hd95"}):
            metrics.setdefault(metric, {"mean": None, "std": None, "n": 0})
    return summary


@dataclass
class RealEvaluation:
    """Results of every model, in case order; ``figures`` maps a case name to its PNG."""

    per_case: dict[str, list[CaseResult]] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)

    def labelled(self, model: str) -> list[CaseResult]:
        return [r for r in self.per_case.get(model, []) if r.has_reference]

    def unlabelled(self, model: str) -> list[CaseResult]:
        return [r for r in self.per_case.get(model, []) if not r.has_reference]

    def summary(self, model: str) -> dict[str, Any]:
        """Mean, std and n per region and metric over the cases whose reference has the region."""
        labelled = self.labelled(model)
        present = {r: set(labelled[0].regions[r]) & set(_METRICS) for r in REGIONS} if labelled else {}
        return _with_all_regions(_finite(summarize(_scores(r, (SCORED,)) for r in labelled)), present)

    def summary_brats(self, model: str) -> dict[str, Any]:
        """The BraTS convention: every case with a reference, empty regions included."""
        return _finite(summarize(_scores(r, (SCORED, REFERENCE_EMPTY)) for r in self.labelled(model)))

    def reference_empty(self, model: str) -> dict[str, list[dict[str, Any]]]:
        """Per region, the cases whose reference lacks it and what the model marked there."""
        out: dict[str, list[dict[str, Any]]] = {}
        for result in self.labelled(model):
            for region, scores in result.regions.items():
                if scores["status"] == REFERENCE_EMPTY:
                    out.setdefault(region, []).append({
                        "case": result.case, "predicted_ml": scores["predicted_ml"],
                        "false_positive": scores["predicted_ml"] > 0,
                        "dice_brats": scores["dice"], "hd95_brats": scores["hd95"],
                    })
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            model: {
                "summary": self.summary(model),
                "summary_brats": self.summary_brats(model),
                "reference_empty": self.reference_empty(model),
                "cases_with_reference": [r.case for r in self.labelled(model)],
                "cases_without_reference": [r.case for r in self.unlabelled(model)],
                "per_case": [r.to_dict() for r in results],
            }
            for model, results in self.per_case.items()
        }


def _finite(value: Any) -> Any:
    """NaN and infinities become None, so the JSON stays standard."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
