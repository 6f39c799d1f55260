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
that bias, so the anchor's logits are computed once and the constant is read off them (an order statistic).

The anchor's phantoms enhance brightly, and bright voxels keep their class through a loss of confidence that
erases faint ones, which real enhancing tumour often is. Further calibration sets (``AdaptConfig.
keep_absent_faint``: phantoms whose tumour enhances faintly) each ask for their own constant, the one that
keeps *their* count; the largest is taken, so that no set loses the class (docs/results/keep-absent-faint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..io.labels import CLASS_ABBREVIATIONS, ED, ET, NCR
from ..models.labels import class_map
from .corrections import Corrections
from .eval_sets import EvalSet, marked_key
from .training import predict_logits

# Classes in the order their bias is corrected: the later ones see the earlier ones' shift.
TUMOUR_CLASSES = (ET, NCR, ED)
_SEARCH = 12.0  # the largest bias shift made, in logits (a shift of 12 turns a class on or off anywhere)
_TOLERANCE = 1e-3  # logits: past the last margin when every voxel, or none, is to be marked


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


def set_logits(model: nn.Module, evaluation: EvalSet) -> list[torch.Tensor]:
    """The network's float32 logits (on the CPU) on each group of a set, computed as the guard's scoring does."""
    return [predict_logits(model, inputs) for inputs, _ in evaluation.groups]


def _margins(logits: Sequence[torch.Tensor], shift: torch.Tensor, cls: int) -> torch.Tensor:
    """Per anchor voxel, how far ``cls``'s logit (with ``shift``) stays below the best other class's.

    With its bias raised by ``d`` a voxel is marked ``cls`` exactly when its margin is below ``d``.
    """
    parts = []
    for group in logits:
        shifted = group + shift.view(1, -1, 1, 1)
        others = torch.cat([shifted[:, :cls], shifted[:, cls + 1:]], dim=1)
        parts.append((others.max(dim=1).values - shifted[:, cls]).reshape(-1))
    return torch.cat(parts)


def _matching_shift(logits: Sequence[torch.Tensor], shift: torch.Tensor, cls: int, target: float) -> float:
    """The bias shift of ``cls`` (on top of ``shift``) that makes it marked on ``target`` anchor voxels.

    The voxels marked at a shift ``d`` are those whose margin is below ``d``, so the shift that marks ``k``
    of them lies between the k-th and the (k+1)-th smallest margin: the midpoint is taken. One order
    statistic of the margins, not a search over shifts (each trial of which would be a pass over the set).
    """
    ordered = torch.sort(_margins(logits, shift, cls)).values
    k = int(round(target))
    if k <= 0:
        value = float(ordered[0]) - _TOLERANCE
    elif k >= ordered.numel():
        value = float(ordered[-1]) + _TOLERANCE
    else:
        value = (float(ordered[k - 1]) + float(ordered[k])) / 2
    return max(-_SEARCH, min(_SEARCH, value))


def marked_counts(logits: Sequence[torch.Tensor]) -> dict[int, float]:
    """Voxels the network marks as each tumour class, from its logits on a set."""
    labels = [class_map(group) for group in logits]
    return {c: float(sum(int((group == c).sum()) for group in labels)) for c in TUMOUR_CLASSES}


@dataclass
class AbsentCorrection:
    """What :func:`keep_absent_classes` did: the bias shift of each class, and the anchor it was read off.

    Args:
        shift: per output class, the logits added to the head's bias (0 for the classes left alone).
        classes: the classes moved (those the corrections lack).
        anchor_logits: the adapted network's logits on the anchor, before the shift.
    """

    shift: torch.Tensor
    classes: tuple[int, ...]
    anchor_logits: list[torch.Tensor]

    def by_name(self) -> dict[str, float]:
        """The shift of each moved class by name ({"ET": 1.7}), for the report."""
        return {CLASS_ABBREVIATIONS[c]: round(float(self.shift[c]), 4) for c in self.classes}

    def anchor_labels(self) -> list[np.ndarray]:
        """The corrected network's labels on the anchor, read off its logits: no second pass over the set."""
        return [class_map(group + self.shift.view(1, -1, 1, 1)).to(torch.uint8).numpy()
                for group in self.anchor_logits]


def keep_absent_classes(
    adapted: nn.Module,
    corrections: Corrections,
    anchor: EvalSet,
    parent_scores: Mapping[str, float],
    *,
    parent: nn.Module | None = None,
    calibration: Sequence[EvalSet] = (),
    anchor_logits: Sequence[torch.Tensor] | None = None,
) -> AbsentCorrection | None:
    """Move the head's bias of each class the corrections lack so ``adapted`` marks the parent's counts.

    Args:
        adapted: the adapted network (changed in place); its last layer is ``head``, a convolution with bias.
        corrections: the corrected slices.
        anchor: the guard's anchor set.
        parent_scores: the parent's anchor scores with the marked counts (``score_set(..., marked=True)``).
        parent: the network ``adapted`` was adapted from; needed only for ``calibration``.
        calibration: further sets whose counts are kept too (the largest shift of all the sets is made).
        anchor_logits: ``adapted``'s logits on the anchor (:func:`set_logits`), when the caller has them.

    Returns:
        What was moved; None when every class is corrected or the network has no such head.
    """
    classes = absent_classes(corrections)
    head = getattr(adapted, "head", None)
    if not classes or not isinstance(head, nn.Conv2d) or head.bias is None:
        return None
    if calibration and parent is None:
        raise ValueError("calibration sets need the parent network, whose counts they keep")
    anchor_logits = list(anchor_logits) if anchor_logits is not None else set_logits(adapted, anchor)
    sets = [(anchor_logits, class_counts(parent_scores))]
    sets += [(set_logits(adapted, s), marked_counts(set_logits(parent, s))) for s in calibration if s.num_slices]
    shift = torch.zeros(anchor_logits[0].shape[1])
    for cls in classes:
        shift[cls] = max(_matching_shift(logits, shift, cls, targets[cls]) for logits, targets in sets)
    with torch.no_grad():
        head.bias.add_(shift.to(head.bias.device, head.bias.dtype))
    return AbsentCorrection(shift, classes, anchor_logits)
