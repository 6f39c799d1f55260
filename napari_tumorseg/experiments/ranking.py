"""How well each ranking of slices finds what is wrong, on the first prediction (no learning).

For every patient the base network segments the case once (and its mirror
image once, for the flip sign); each ranking then names its top ``k``
slices for every ``k`` asked, and we count what those slices hold:

- ``needing_edits``: how many of them a radiologist would have to edit
  (``effort_scoring.slices_needing_edits``);
- ``error_share``: the share of all wrong voxels of the volume on them;
- ``missed_found`` / ``fp_found``: reference lesions the model missed, and
  false-positive components, that have at least one voxel on them.

Rankings: ``old`` (the earlier plugin: entropy summed near the predicted
tumour), ``suggest`` (the plugin's suggestions as the effort experiment
picks them, without and with the flip sign), ``random`` (mean of 20 draws of
brain slices) and ``dice`` (the truth's order: worst slice Dice first, the
effort experiment's oracle). Cheap (two segmentations per patient): it
separates "do the suggestions find the errors" from "does learning from them
help", which the effort experiment measures together. The real labelled
case, where present, is scored the same way and reported apart.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from ..jobs import Clock, Progress
from .common import paired_test
from .effort import BaseModel, Segmented, brain_slices, segment
from .effort_scoring import pick_by_dice, pick_random, pick_suggested, slices_needing_edits

RANKINGS = ("old", "suggest", "suggest+flip", "random", "dice")
RANKING_TITLES = {
    "old": "the earlier rule (uncertainty near predicted tumour)",
    "suggest": "the plugin's suggestions",
    "suggest+flip": "suggestions with the flip sign",
    "random": "random brain slices (mean of 20 draws)",
    "dice": "worst slice Dice first (needs the truth)",
}
RANDOM_DRAWS = 20
METRICS = ("error_share", "needing_edits", "fp_found", "missed_found")


def _lesion_slices(prediction: np.ndarray, truth: np.ndarray) -> tuple[list[set[int]], list[set[int]]]:
    """(slices of each missed reference lesion, slices of each false-positive component)."""
    from scipy import ndimage

    structure = np.ones((3, 3, 3), bool)
    ref, count = ndimage.label(truth > 0, structure=structure)
    pred, pred_count = ndimage.label(prediction > 0, structure=structure)
    missed = [set(np.flatnonzero((ref == i).any(axis=(1, 2))).tolist()) for i in range(1, count + 1)
              if not (prediction[ref == i] > 0).any()]
    false = [set(np.flatnonzero((pred == i).any(axis=(1, 2))).tolist()) for i in range(1, pred_count + 1)
             if not (truth[pred == i] > 0).any()]
    return missed, false


class Coverage:
    """What any set of slices of one prediction holds (the lesions are found once, then looked up)."""

    def __init__(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        self.prediction, self.truth = prediction, truth
        self.wrong = (prediction != truth).reshape(prediction.shape[0], -1).sum(axis=1)
        self.missed, self.false = _lesion_slices(prediction, truth)

    def of(self, picks: Sequence[int]) -> dict[str, float]:
        chosen = sorted({int(z) for z in picks})
        return {
            "error_share": float(self.wrong[chosen].sum() / max(self.wrong.sum(), 1)),
            "needing_edits": float(len(slices_needing_edits(self.prediction, self.truth, chosen))),
            "fp_found": float(sum(bool(component & set(chosen)) for component in self.false)),
            "missed_found": float(sum(bool(lesion & set(chosen)) for lesion in self.missed)),
        }


def rank(name: str, result: Segmented, truth: np.ndarray, brain: Sequence[int], k: int,
         rng: np.random.Generator) -> list[int]:
    """The top ``k`` slices of ranking ``name`` (picked as the effort experiment picks them)."""
    from ..workflow.review import least_certain_slices
    from ..workflow.suggest import slice_scores

    if name == "old":
        p = result.probabilities.astype(np.float32) / 255.0
        entropy = -(np.where(p > 0, p * np.log(np.clip(p, 1e-7, 1)), 0)).sum(axis=0) / np.log(4)
        return least_certain_slices(entropy, result.labels, k=k)
    if name.startswith("suggest"):
        flipped = result.flipped if name.endswith("flip") else None
        scores = slice_scores(result.probabilities, result.labels, flipped_labels=flipped).total
        return pick_suggested(scores, brain, [], k, rng)
    if name == "random":
        return pick_random(brain, [], k, rng)
    return pick_by_dice(result.labels, truth, brain, [], k, rng)


def score_case(result: Segmented, truth: np.ndarray, brain: Sequence[int], ks: Sequence[int],
               seed: int, coverage: Coverage | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Every ranking's coverage at every ``k``: {ranking: {k: {metric: value}}} (random: mean of its draws).

    ``coverage``: the prediction's Coverage when the caller has it (its lesions are labelled once).
    """
    coverage = coverage or Coverage(result.labels, truth)
    row: dict[str, dict[str, dict[str, float]]] = {}
    for name in RANKINGS:
        rng = np.random.default_rng(seed)
        draws = RANDOM_DRAWS if name == "random" else 1
        found = {k: [coverage.of(rank(name, result, truth, brain, k, rng)) for _ in range(draws)] for k in ks}
        row[name] = {str(k): {m: float(np.mean([f[m] for f in runs])) for m in METRICS} for k, runs in found.items()}
    return row


def _case_row(name: str, result: Segmented, truth: np.ndarray, brain: Sequence[int], ks: Sequence[int],
              seed: int) -> dict[str, Any]:
    coverage = Coverage(result.labels, truth)
    return {"case": name, "brain_slices": len(brain), "missed": len(coverage.missed), "fp": len(coverage.false),
            "needing_edits_in_brain": len(slices_needing_edits(result.labels, truth, list(brain))),
            "rankings": score_case(result, truth, brain, ks, seed, coverage)}


def ranking_check(base: BaseModel, seeds: Sequence[int], ks: Sequence[int] = (2, 4, 10), *, shape: Any = None,
                  device: Any = "cpu", real: bool = True, cancel: Any = None
                  ) -> Generator[Progress, None, dict[str, Any]]:
    """Every ranking's coverage on every patient's first prediction; returns the rows and their summary."""
    from ..evaluation.realdata import real_case_dir
    from ..io import read_case
    from ..synth.generate import make_case
    from .effort_real import LABELLED

    real_folder = real_case_dir(LABELLED) if real else None
    clock = Clock(len(seeds) + (real_folder is not None), "cases", cancel)
    rows = []
    for seed in seeds:
        clock.check()
        case = make_case("metastasis", seed, **({"shape": shape} if shape else {}))
        brain = brain_slices(base.model, base.preprocessing, case)
        result = segment(base.model, base.preprocessing, case, device, flip=True)
        rows.append(_case_row(case.name, result, case.label, brain, ks, seed))
        yield clock.tick(case.name)
    real_rows = []
    if real_folder is not None:
        case = read_case(real_folder)
        brain = brain_slices(base.model, base.preprocessing, case)
        result = segment(base.model, base.preprocessing, case, device, flip=True)
        real_rows.append(_case_row(case.name, result, case.label, brain, ks, 0))
        yield clock.tick(case.name)
    return {"ks": [int(k) for k in ks], "rows": rows, "real_rows": real_rows,
            "summary": summarize_rankings(rows, ks)}


def summarize_rankings(rows: Sequence[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    """Means over the patients, totals of lesions, and suggestions against random per ``k`` (paired)."""
    if not rows:
        return {}
    means = {name: {str(k): {m: float(np.mean([r["rankings"][name][str(k)][m] for r in rows])) for m in METRICS}
                    for k in ks} for name in RANKINGS}
    tests = {str(k): paired_test([r["rankings"]["suggest"][str(k)]["error_share"] for r in rows],
                                 [r["rankings"]["random"][str(k)]["error_share"] for r in rows]) for k in ks}
    totals = {key: int(sum(r[key] for r in rows)) for key in ("missed", "fp")}
    return {"means": means, "suggest_vs_random_error_share": tests, "totals": totals}
