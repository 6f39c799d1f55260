"""Keep what the model calls of a tumour class the corrections do not hold: a bias correction after adapting.

Adapted on a lower-grade glioma, whose corrected slices hold no enhancing tumour, the model learns that
enhancing tumour is rare and calls much less of it on the next cases (docs/results/absent-class,
anchor-blind-spot). The corrections say nothing about that class, so what the model thinks of it should not
move. In class-incremental learning the same shift, towards the classes just taught, is corrected on the
output layer's bias with a small held-back set (BiC: Wu et al., CVPR 2019): the features keep what they
learnt, the decision threshold of the untaught class goes back where it was.

Here the held-back set is the guard's anchor (synthetic gliomas the user never edits): after adapting, the
head's bias of each class the corrected slices lack is moved by the one constant that makes the new version
mark as many anchor voxels of that class as its parent did. The network's logits are an affine function of
that bias, so the anchor's logits are computed once and the constant is found on them by bisection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..io.labels import CLASS_ABBREVIATIONS, ED, ET, NCR
from .corrections import Corrections
from .eval_sets import EvalSet, marked_key
from .training import model_device

# Classes in the order their bias is corrected: the later ones see the earlier ones' shift.
TUMOUR_CLASSES = (ET, NCR, ED)
_SEARCH = 12.0  # the largest bias shift looked for, in logits (a shift of 12 turns a class on or off anywhere)
_TOLERANCE = 1e-3


def absent_classes(corrections: Corrections) -> tuple[int, ...]:
    """The tumour classes no corrected slice of any case holds."""
    present = set()
    for case in corrections.cases:
        present.update(int(v) for v in np.unique(case.labels))
    return tuple(c for c in TUMOUR_CLASSES if c not in present)


def class_counts(anchor_scores: Mapping[str, float]) -> dict[int, float]:
    """Voxels of each class a version marks on the anchor, from its region counts (WT, TC, ET marked)."""
    wt, tc, et = (float(anchor_scores[marked_key(r)]) for r in ("WT", "TC", "ET"))
    return {ET: et, NCR: tc - et, ED: wt - tc}


def _logits(model: nn.Module, anchor: EvalSet) -> list[torch.Tensor]:
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [model(torch.from_numpy(np.ascontiguousarray(inputs)).to(device)).float().cpu()
                    for inputs, _ in anchor.groups]
    finally:
        model.train(was_training)


def _count(logits: Sequence[torch.Tensor], shift: torch.Tensor, cls: int) -> int:
    return int(sum(int(((group + shift.view(1, -1, 1, 1)).argmax(dim=1) == cls).sum()) for group in logits))


def _matching_shift(logits: Sequence[torch.Tensor], shift: torch.Tensor, cls: int, target: float) -> float:
    """The bias shift of ``cls`` (on top of ``shift``) whose marked voxel count comes nearest ``target``.

    The count grows with the shift, so bisection finds the smallest shift that reaches the target; the
    shift one step below is taken instead when its count is nearer.
    """
    def count_at(value: float) -> int:
        trial = shift.clone()
        trial[cls] += value
        return _count(logits, trial, cls)

    low, high = -_SEARCH, _SEARCH
    if count_at(high) < target:
        return high
    if count_at(low) >= target:
        return low
    while high - low > _TOLERANCE:
        middle = (low + high) / 2
        low, high = (middle, high) if count_at(middle) < target else (low, middle)
    return high if abs(count_at(high) - target) <= abs(count_at(low) - target) else low


def keep_absent_classes(
    adapted: nn.Module, corrections: Corrections, anchor: EvalSet, parent_scores: Mapping[str, float]
) -> dict[str, float]:
    """Move the head's bias of each class the corrections lack so ``adapted`` marks the parent's anchor count.

    Args:
        adapted: the adapted network (changed in place); its last layer is ``head``, a convolution with bias.
        corrections: the corrected slices.
        anchor: the guard's anchor set.
        parent_scores: the parent's anchor scores with the marked counts (``score_set(..., marked=True)``).

    Returns:
        The shift of each corrected class's bias by name ({"ET": 1.7}); empty when every class is corrected
        or the network has no such head.
    """
    classes = absent_classes(corrections)
    head = getattr(adapted, "head", None)
    if not classes or not isinstance(head, nn.Conv2d) or head.bias is None:
        return {}
    targets = class_counts(parent_scores)
    logits = _logits(adapted, anchor)
    shift = torch.zeros(logits[0].shape[1])
    for cls in classes:
        shift[cls] = _matching_shift(logits, shift, cls, targets[cls])
    with torch.no_grad():
        head.bias.add_(shift.to(head.bias.device, head.bias.dtype))
    return {CLASS_ABBREVIATIONS[c]: round(float(shift[c]), 4) for c in classes}
