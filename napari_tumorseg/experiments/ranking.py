"""How well each ranking of slices finds what is wrong, on the first prediction (no learning).

For every patient the base network segments the case once (and its mirror
image once, for the flip sign); each ranking then names its top ``k``
slices, and we count what those slices hold:

- ``needing_edits``: how many of them a radiologist would have to edit
  (``effort_scoring.slices_needing_edits``);
- ``error_share``: the share of all wrong voxels of the volume on them;
- ``missed_found`` / ``fp_found``: reference lesions the model missed, and
  false-positive components, that have at least one voxel on them.

Rankings: ``old`` (the earlier plugin: entropy summed near the predicted
tumour), ``suggest`` (``workflow.suggest``, without and with the flip sign),
``random`` (mean of 20 draws of brain slices) and ``dice`` (the truth's
order: the ceiling). Cheap (two segmentations per patient): a quick way to
compare ranking rules before the full effort experiment.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from ..jobs import Clock, Progress
from .effort import BaseModel, brain_slices, segment
from .effort_scoring import pick_by_dice, slices_needing_edits

RANKINGS = ("old", "suggest", "suggest+flip", "random", "dice")


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


def coverage(picks: Sequence[int], prediction: np.ndarray, truth: np.ndarray, brain: Sequence[int]) -> dict:
    """What the picked slices hold (see the module docstring)."""
    wrong = (prediction != truth).reshape(prediction.shape[0], -1).sum(axis=1)
    missed, false = _lesion_slices(prediction, truth)
    chosen = set(int(z) for z in picks)
    return {
        "needing_edits": len(slices_needing_edits(prediction, truth, sorted(chosen))),
        "error_share": float(wrong[sorted(chosen)].sum() / max(wrong.sum(), 1)),
        "missed_found": sum(bool(lesion & chosen) for lesion in missed),
        "missed": len(missed),
        "fp_found": sum(bool(component & chosen) for component in false),
        "fp": len(false),
        "needing_edits_in_brain": len(slices_needing_edits(prediction, truth, list(brain))),
    }


def rank(name: str, result: Any, truth: np.ndarray, brain: Sequence[int], k: int, rng: np.random.Generator) -> list:
    from ..workflow.review import least_certain_slices
    from ..workflow.suggest import pick_slices, slice_scores

    if name == "old":
        p = result.probabilities.astype(np.float32) / 255.0
        entropy = -(np.where(p > 0, p * np.log(np.clip(p, 1e-7, 1)), 0)).sum(axis=0) / np.log(4)
        return least_certain_slices(entropy, result.labels, k=k)
    if name.startswith("suggest"):
        flipped = result.flipped if name.endswith("flip") else None
        scores = slice_scores(result.probabilities, result.labels, flipped_labels=flipped).total
        inside = np.zeros_like(scores)
        inside[list(brain)] = scores[list(brain)]
        return pick_slices(inside, k)
    if name == "random":
        return [int(z) for z in rng.choice(list(brain), size=min(k, len(brain)), replace=False)]
    return pick_by_dice(result.labels, truth, brain, [], k, rng)


def ranking_check(base: BaseModel, seeds: Sequence[int], k: int = 10, *, shape: Any = None, device: Any = "cpu",
                  cancel: Any = None) -> Generator[Progress, None, dict[str, Any]]:
    """Every ranking's coverage on every patient's first prediction; returns per-patient rows and means."""
    from ..synth.generate import make_case

    clock = Clock(len(seeds), "patients", cancel)
    rows = []
    for seed in seeds:
        clock.check()
        case = make_case("metastasis", seed, **({"shape": shape} if shape else {}))
        brain = brain_slices(base.model, base.preprocessing, case)
        result = segment(base.model, base.preprocessing, case, device, flip=True)
        row: dict[str, Any] = {"case": case.name}
        for name in RANKINGS:
            rng = np.random.default_rng(seed)
            draws = 20 if name == "random" else 1
            found = [coverage(rank(name, result, case.label, brain, k, rng), result.labels, case.label, brain)
                     for _ in range(draws)]
            row[name] = {key: float(np.mean([f[key] for f in found])) for key in found[0]}
        rows.append(row)
        yield clock.tick(case.name)
    means = {name: {key: float(np.mean([r[name][key] for r in rows])) for key in rows[0][name]} for name in RANKINGS}
    return {"k": k, "rows": rows, "means": means}
