"""Text of ``tumorseg evaluate``: one line per (model, case) as it finishes, then each model's summary.

A region the reference does not have is never printed as a Dice: it reads
``ET n/a (reference has none; predicted 5.1 ml)``, and the summary's means
leave it out (the BraTS-convention numbers are in the JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scoring import REFERENCE_EMPTY, REGIONS, CaseResult
from .summary import RealEvaluation

_SUMMARY_METRICS = (("dice", "Dice", 3), ("hd95", "HD95 (mm)", 1),
                    ("lesion_dice", "lesion-wise Dice", 3), ("lesion_hd95", "lesion-wise HD95", 1))


def region_text(region: str, scores: Mapping[str, Any]) -> str:
    """``WT 0.912/4.1 mm (30.2/28.7 ml)``: Dice / HD95, predicted / reference volume; or the n/a form."""
    if scores["status"] == REFERENCE_EMPTY:
        marked = f"predicted {scores['predicted_ml']:.1f} ml" if scores["predicted_ml"] > 0 else "none predicted"
        return f"{region} n/a (reference has none; {marked})"
    return (f"{region} {scores['dice']:.3f}/{scores['hd95']:.1f} mm "
            f"({scores['predicted_ml']:.1f}/{scores['reference_ml']:.1f} ml)")


def volumes_text(result: CaseResult) -> str:
    """``no reference; predicted NCR 1.2  ED 30.0  ET 4.1  WT 35.3 ml; 3 WT components``."""
    v = result.predicted_ml
    return (f"no reference; predicted NCR {v['NCR']:.1f}  ED {v['ED']:.1f}  ET {v['ET']:.1f}  WT {v['WT']:.1f} ml; "
            f"{result.components['WT']} WT components")


def case_line(result: CaseResult) -> str:
    """One (model, case) line: scores and volumes, or volumes alone without reference."""
    if result.regions is None:
        body = volumes_text(result)
    else:
        body = "  ".join(region_text(r, result.regions[r]) for r in REGIONS)
    return f"{result.model:<16} {result.case:<22} {body}  ({result.seconds:.1f} s)"


def _metric_text(stats: Mapping[str, Any] | None, digits: int) -> str:
    if not stats or stats.get("n", 0) == 0 or stats.get("mean") is None:
        return "n/a (no reference has it)"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f} (n={stats['n']})"


def summary_lines(evaluation: RealEvaluation, model: str) -> list[str]:
    """The model's summary: means over the cases whose reference has each region, then the exceptions."""
    labelled, unlabelled = evaluation.labelled(model), evaluation.unlabelled(model)
    lines = [f"{model}: {len(labelled)} case(s) with a reference, {len(unlabelled)} without"]
    if labelled:
        summary = evaluation.summary(model)
        lines.append("  mean ± std over the cases whose reference has the region:")
        for metric, label, digits in _SUMMARY_METRICS:
            if not any(metric in summary.get(r, {}) for r in REGIONS):
                continue
            parts = [f"{r} {_metric_text(summary.get(r, {}).get(metric), digits)}" for r in REGIONS]
            lines.append(f"  {label:<17} " + "   ".join(parts))
    for region, cases in evaluation.reference_empty(model).items():
        for item in cases:
            verdict = (f"predicted {item['predicted_ml']:.1f} ml there: false positive" if item["false_positive"]
                       else "none predicted: agreed")
            lines.append(f"  {region} absent from the reference of {item['case']}; {verdict} "
                         f"(BraTS convention: Dice {item['dice_brats']:.3f}, HD95 {item['hd95_brats']:.1f} mm, in the JSON)")
    if unlabelled:
        lines.append("  without reference, predicted volume (ml) and connected components:")
        lines.append(f"    {'case':<22} {'NCR':>7} {'ED':>7} {'ET':>7} {'WT':>7}  WT/TC/ET components")
        for result in unlabelled:
            v, c = result.predicted_ml, result.components
            lines.append(f"    {result.case:<22} {v['NCR']:>7.1f} {v['ED']:>7.1f} {v['ET']:>7.1f} {v['WT']:>7.1f}"
                         f"  {c['WT']}/{c['TC']}/{c['ET']}")
    return lines
