"""The sets a model version is scored on, before and after adaptation, and their score.

Each set is a list of equal-size slice groups, one group per case:

- ``corrections``: the corrected slices (did the model learn them?);
- ``held_out``: other slices of the same cases that have a reference mask
  (did the correction generalise?), when there are any;
- ``anchor``: a fixed set of source-domain (synthetic glioma) slices (did it
  forget what it knew?);
- ``memory``: corrected slices of the user's *earlier* cases, from the memory
  of corrections (did it forget what the user taught it?), when there are any.

A set's score is the Dice of each BraTS region (WT, TC, ET) over all of its
voxels pooled, and their mean; pooling keeps a slice with a tiny tumour from
swinging the score. The forgetting guard (``guard``) decides on these scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ..io.labels import REGION_TITLES, region_mask
from ..models.losses import region_dice
from .corrections import Corrections
from .sampling import SlicePool
from .training import predict_labels

CORRECTIONS_SET, HELD_OUT_SET, ANCHOR_SET, MEMORY_SET = "corrections", "held_out", "anchor", "memory"
MEMORY_GUARD_SLICES = 16


@dataclass(frozen=True, eq=False)
class EvalSet:
    """Slices with reference labels, grouped by size.

    Args:
        name: "corrections", "held_out", "anchor" or another label.
        groups: (inputs (N, C, H, W) float32, labels (N, H, W) uint8) per group.
        description: where the slices come from (seeds, cases), for the report.
    """

    name: str
    groups: tuple[tuple[np.ndarray, np.ndarray], ...]
    description: dict = field(default_factory=dict)

    @property
    def num_slices(self) -> int:
        return sum(int(inputs.shape[0]) for inputs, _ in self.groups)


def correction_sets(corrections: Corrections) -> list[EvalSet]:
    """The corrections set, and the held-out set when some case has reference slices."""
    sets = [EvalSet(CORRECTIONS_SET, tuple((c.inputs, c.labels) for c in corrections.cases))]
    held_out = tuple((c.reference_inputs, c.reference_labels) for c in corrections.cases if c.has_reference)
    if held_out:
        sets.append(EvalSet(HELD_OUT_SET, held_out))  # type: ignore[arg-type]
    return sets


def memory_set(pools: Sequence[SlicePool], max_slices: int = MEMORY_GUARD_SLICES) -> EvalSet | None:
    """The earlier cases' corrected slices to score, one group per case; None when the memory holds none.

    ``pools`` come oldest case first (``CorrectionMemory.pools``). Slices are taken a
    case at a time, newest case first, one slice from each in turn, until ``max_slices``:
    many cases each keep a few, one case keeps them all.
    """
    cases = [p for p in reversed(pools) if len(p)]
    taken = [0] * len(cases)
    left = max_slices
    while left > 0 and any(t < len(p) for t, p in zip(taken, cases)):
        for i, pool in enumerate(cases):
            if left > 0 and taken[i] < len(pool):
                taken[i] += 1
                left -= 1
    groups = tuple((p.inputs[:n].cpu().numpy(), p.labels[:n].cpu().numpy().astype(np.uint8))
                   for p, n in zip(cases, taken) if n)
    if not groups:
        return None
    names = [name for p, n in zip(cases, taken) for name in p.names[:n]]
    return EvalSet(MEMORY_SET, groups, {"cases": sorted({n.split(":z")[0] for n in names}), "slices": names})


def score_set(model: nn.Module, evaluation: EvalSet, *, marked: bool = False) -> dict[str, float]:
    """WT, TC, ET Dice over the pooled voxels of a set, and their mean; with ``marked``, also each region's
    voxels the model marks ("WT_marked", "TC_marked", "ET_marked": the guard's shrink limit reads them)."""
    return score_predictions([predict_labels(model, inputs) for inputs, _ in evaluation.groups], evaluation,
                             marked=marked)


def score_predictions(predictions: Sequence[np.ndarray], evaluation: EvalSet, *, marked: bool = False
                      ) -> dict[str, float]:
    """:func:`score_set` of labels already predicted, one array per group of ``evaluation``."""
    prediction = np.concatenate([np.asarray(p).reshape(-1) for p in predictions])
    references = [np.asarray(labels).reshape(-1) for _, labels in evaluation.groups]
    scores = region_dice(prediction, np.concatenate(references))
    scores["mean"] = float(np.mean(list(scores.values())))
    if marked:
        scores.update({marked_key(region): float(region_mask(prediction, region).sum()) for region in REGION_TITLES})
    return {k: round(float(v), 6) for k, v in scores.items()}


def marked_key(region: str) -> str:
    """The scores' key of a region's voxels marked by the model ("ET_marked")."""
    return f"{region}_marked"


def score_all(model: nn.Module, sets: Sequence[EvalSet]) -> dict[str, dict[str, float]]:
    """score_set of every set, by name."""
    return {s.name: score_set(model, s) for s in sets}


def region_scores(scores: Mapping[str, float]) -> dict[str, float]:
    """The per-region entries (WT, TC, ET) of a set's scores."""
    return {region: float(scores[region]) for region in REGION_TITLES if region in scores}


def anchor_key(anchor: EvalSet) -> str:
    """A short fingerprint of an anchor set's definition (scores on different sets do not compare)."""
    import hashlib
    import json

    described = json.dumps({"slices": anchor.num_slices, **anchor.description}, sort_keys=True, default=str)
    return hashlib.sha256(described.encode()).hexdigest()[:16]
