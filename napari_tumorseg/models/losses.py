"""The training and adaptation loss (soft Dice + cross-entropy) and the hard Dice used to rank and guard.

Loss: ``cross_entropy + (1 - mean soft Dice over the three tumour classes)``,
the nnU-Net recipe. Cross-entropy gives every voxel a gradient (so the skull
and the healthy brain stay background); the Dice term keeps a tumour of a
few hundred voxels from drowning in a slice of tens of thousands. The soft
Dice is computed over the whole batch ("batch Dice") with a smoothing of 1
voxel, so a class absent from a slice still has a finite, small gradient.

A class absent from the whole batch's reference is the exception that
matters when adapting: a lower-grade glioma's corrections hold no enhancing
tumour, its Dice term is then ``1 / (sum of its probabilities + 1)``, and
its gradient grows as that sum falls, so the step pushes enhancing tumour
down everywhere, on later cases too. ``absent_weight`` weighs such terms in
the Dice mean (1: the nnU-Net recipe, used in training and, by default, in
adaptation: docs/results/absent-class found a lower weight keeps more of the
next cases' enhancement but scores them lower; 0: Dice over the present
classes only, the absent class left to cross-entropy).

Distillation: KL(teacher || network) per pixel, the pull towards another network's softmax that training's
flip distillation (``training.distillation``) and adaptation's replay of the parent's softmax
(``adapt.sampling.Replay``) both use.

Scores: the BraTS regions WT, TC and ET (``io.labels.REGIONS``); a region
empty in both prediction and reference counts as 1 (nothing to find, nothing
found), as in the BraTS challenge evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from ..io.labels import NUM_CLASSES, REGIONS

DICE_SMOOTH = 1.0
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, absent_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy plus (1 - soft Dice) over the tumour classes.

    Args:
        logits: (B, 4, H, W) raw network outputs.
        target: (B, H, W) int64 internal labels 0..3.
        absent_weight: weight, in the Dice mean, of a class the batch's target does not
            hold (the present classes weigh 1); see the module docstring.
    """
    ce = F.cross_entropy(logits, target)
    probs = logits.softmax(dim=1)[:, 1:]
    onehot = F.one_hot(target, NUM_CLASSES).permute(0, 3, 1, 2)[:, 1:].to(probs.dtype)
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * intersection + DICE_SMOOTH) / (denominator + DICE_SMOOTH)
    if absent_weight == 1.0:
        return ce + (1 - dice.mean())
    present = onehot.sum(dims) > 0
    weights = torch.where(present, torch.ones_like(dice), torch.full_like(dice, absent_weight))
    # No class present and a zero weight: the Dice term is empty, cross-entropy alone remains.
    return ce + ((1 - dice) * weights).sum() / weights.sum().clamp_min(1e-12)


def distillation_loss(logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per pixel, averaged over the batch's pixels (0 when the two agree).

    Args:
        logits: (B, C, H, W) the student's raw outputs.
        teacher_probs: (B, C, H, W) the teacher's probabilities.
    """
    log_student = F.log_softmax(logits.float(), dim=1)
    pixels = logits.shape[0] * logits.shape[2] * logits.shape[3]
    return F.kl_div(log_student, teacher_probs, reduction="sum") / pixels


def adaptation_loss(absent_weight: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The adaptation's loss: ``dice_ce_loss`` with the absent classes' Dice terms weighted ``absent_weight``."""
    if absent_weight == 1.0:
        return dice_ce_loss
    return partial(dice_ce_loss, absent_weight=absent_weight)


def region_dice(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Dice of each BraTS region over all voxels of the arrays (any shape).

    Args:
        prediction: internal labels.
        reference: internal labels, same shape.
    """
    out: dict[str, float] = {}
    for name, classes in REGIONS.items():
        pred = np.isin(prediction, classes)
        ref = np.isin(reference, classes)
        total = int(pred.sum()) + int(ref.sum())
        out[name] = 1.0 if total == 0 else 2.0 * int((pred & ref).sum()) / total
    return out


def mean_region_dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Mean of the WT, TC and ET Dice over all voxels of the arrays."""
    return float(np.mean(list(region_dice(prediction, reference).values())))


def per_slice_dice(prediction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean region Dice of each slice: (N, H, W) labels -> (N,) float64.

    Args:
        prediction: (N, H, W) internal labels.
        reference: (N, H, W) internal labels.
    """
    return np.array([mean_region_dice(p, r) for p, r in zip(prediction, reference)], dtype=np.float64)
