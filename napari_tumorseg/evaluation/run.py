"""Segment a set of cases with every model, score them, and draw each case's figure.

:func:`evaluate_cases` is a long job (see ``napari_tumorseg.jobs``) yielding a
Progress per (case, model), its ``data`` the :class:`~.scoring.CaseResult`,
and returning a :class:`~.summary.RealEvaluation`. Each case
is read (or made) once and segmented by every model; cases with and without a
reference mask may be mixed. With ``figures`` set, each case gets a PNG of
representative slices with every model's prediction (see :mod:`.figures`).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io.case import Case
from ..jobs import CancelFlag, Clock, Progress
from .scoring import score_case
from .summary import RealEvaluation


def evaluate_cases(
    segmenters: Mapping[str, Any],
    cases: Iterable[Case],
    *,
    missing: Sequence[str] = (),
    lesion_wise: bool = False,
    figures: Path | None = None,
    figure_slices: int = 8,
    cancel: CancelFlag = None,
) -> Generator[Progress, None, RealEvaluation]:
    """Segment every case with every model; score against the reference where there is one.

    Args:
        segmenters: name -> object with ``segment(case).labels`` (a
            :class:`~napari_tumorseg.inference.Segmenter`).
        cases: cases, read or made lazily one at a time, with or without reference.
        missing: modalities to remove before segmenting (the figure still shows them).
        lesion_wise: also the BraTS 2023 lesion-wise Dice and HD95.
        figures: a folder for one PNG per case (made if needed), or None.
        figure_slices: axial slices per figure row.
        cancel: checked before each case; a cancel raises ``jobs.Cancelled``.
    """
    from ..training.evaluation import without_modalities

    result = RealEvaluation({name: [] for name in segmenters})
    clock = Clock(0, "evaluating", cancel)
    for case in cases:
        clock.check()
        shown = without_modalities(case, missing) if missing else case
        predictions = {}
        for name, segmenter in segmenters.items():
            started = time.perf_counter()
            labels = segmenter.segment(shown).labels
            scored = score_case(name, case, labels, time.perf_counter() - started, lesion_wise=lesion_wise)
            result.per_case[name].append(scored)
            if figures is not None:
                predictions[name] = labels
            yield clock.tick(f"{name} {case.name}", data=scored)
        if figures is not None:
            from .figures import write_case_figure

            path = write_case_figure(case, predictions, Path(figures) / f"{case.name}.png", slices=figure_slices)
            result.figures[case.name] = str(path)
    return result
