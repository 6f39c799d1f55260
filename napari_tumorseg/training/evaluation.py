"""Evaluate segmenters on cases with reference masks: Dice and HD95 per BraTS region, per case and summarised.

:func:`evaluate` is a long job (see ``napari_tumorseg.jobs``) yielding a
Progress per (case, model), its ``data`` the :class:`CaseScores`, and
returning an :class:`Evaluation`; each case is read or made once
and segmented by every model, so comparing models costs one case each.
Modalities can be removed before segmenting (``missing``), to measure how a
model copes with, for example, T2 + FLAIR only; the reference is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..io.case import MODALITIES, Case
from ..jobs import CancelFlag, Clock, Progress
from ..metrics import region_metrics, summarize

REGIONS = ("WT", "TC", "ET")


@dataclass(frozen=True)
class CaseScores:
    """One model on one case.

    Args:
        model: the model's name.
        case: the case's name.
        scores: ``{region: {"dice": ..., "hd95": ...}}`` (plus lesion-wise scores if asked).
        seconds: wall time of the segmentation.
    """

    model: str
    case: str
    scores: dict[str, dict[str, float]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "seconds": round(self.seconds, 2), **self.scores}


@dataclass
class Evaluation:
    """Every model's per-case scores, and their mean, std and count per region and metric."""

    per_case: dict[str, list[CaseScores]] = field(default_factory=dict)

    def summary(self, model: str) -> dict[str, dict[str, dict[str, float]]]:
        return summarize(c.scores for c in self.per_case.get(model, []))

    def to_dict(self) -> dict[str, Any]:
        return {
            model: {"summary": self.summary(model), "per_case": [c.to_dict() for c in cases]}
            for model, cases in self.per_case.items()
        }


def without_modalities(case: Case, missing: Sequence[str]) -> Case:
    """The case with some modalities removed (as if never acquired); ValueError if none would remain."""
    unknown = [m for m in missing if m not in MODALITIES]
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; expected some of {MODALITIES}")
    images = {key: volume for key, volume in case.images.items() if key not in missing}
    if not images:
        raise ValueError(f"case {case.name}: removing {', '.join(missing)} leaves no modality")
    return replace(case, images=images)


def evaluate(
    segmenters: Mapping[str, Any],
    cases: Iterable[Case],
    *,
    missing: Sequence[str] = (),
    lesion_wise: bool = False,
    total: int = 0,
    cancel: CancelFlag = None,
) -> Generator[Progress, None, Evaluation]:
    """Segment every case with every model and score it against the case's reference.

    Args:
        segmenters: name -> :class:`~napari_tumorseg.inference.Segmenter`.
        cases: cases with reference masks (read or made lazily, one at a time).
        missing: modalities to remove before segmenting.
        lesion_wise: also the BraTS 2023 lesion-wise Dice and HD95.
        total: the number of cases, for the progress reports (0: not known).
        cancel: checked before each case; a cancel raises ``jobs.Cancelled``.
    """
    result = Evaluation({name: [] for name in segmenters})
    clock = Clock(total * len(segmenters), "evaluating", cancel)
    for case in cases:
        clock.check()
        if case.label is None:
            raise ValueError(f"case {case.name} has no reference mask")
        shown = without_modalities(case, missing) if missing else case
        for name, segmenter in segmenters.items():
            started = time.perf_counter()
            labels = segmenter.segment(shown).labels
            seconds = time.perf_counter() - started
            scores = region_metrics(labels, case.label, spacing=case.geometry.spacing, regions=REGIONS,
                                    lesion_wise=lesion_wise)
            scored = CaseScores(name, case.name, scores, seconds)
            result.per_case[name].append(scored)
            yield clock.tick(f"{name} {case.name}", data=scored)
    return result


def format_scores(scores: Mapping[str, Mapping[str, float]]) -> str:
    """``WT 0.912/4.1  TC ...``: Dice / HD95 (mm) per region."""
    return "  ".join(f"{r} {scores[r]['dice']:.3f}/{scores[r]['hd95']:.1f}" for r in REGIONS if r in scores)


def format_summary(summary: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[str]:
    """Lines ``Dice  WT 0.912 ± 0.031 ...`` and ``HD95 ...`` of a summary."""
    lines = []
    for metric, label, digits in (("dice", "Dice", 3), ("hd95", "HD95 (mm)", 1),
                                  ("lesion_dice", "lesion-wise Dice", 3), ("lesion_hd95", "lesion-wise HD95", 1)):
        if not any(metric in summary.get(r, {}) for r in REGIONS):
            continue
        parts = [f"{r} {summary[r][metric]['mean']:.{digits}f} ± {summary[r][metric]['std']:.{digits}f}"
                 for r in REGIONS if metric in summary.get(r, {})]
        lines.append(f"{label:<17} " + "   ".join(parts))
    return lines
