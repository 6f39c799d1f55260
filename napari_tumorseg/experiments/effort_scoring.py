"""The radiologist's-curve experiment's pieces: how a round is scored, and how each strategy picks slices.

Scoring is over the *whole rest of the volume* — every slice the
radiologist did not correct, healthy ones included — because that is what
the radiologist still has to check: tumour marked in a healthy slice is an
error to erase, a lesion missed anywhere is an error to paint.

- Dice of WT, TC and ET over the rest's voxels pooled (a region absent from
  both counts 1, BraTS's convention);
- lesion-wise sensitivity: reference lesions (3D whole-tumour components,
  joined within 1 voxel, over 2 mm³ — the BraTS metastasis settings) that a
  predicted component touches, over all of them; and the false-positive
  lesions (predicted components touching none);
- false-positive voxels (and ml): predicted tumour outside the reference;
- slices still needing edits: rest slices with at least 20 wrong voxels
  making up more than a fifth of the tumour on the slice (the larger of
  the predicted and the reference tumour) — a slice a radiologist would
  have to touch, not one whose outline is a voxel off;
- the final mask's Dice: the prediction with the corrected slices pasted
  in, over the whole volume — what the radiologist exports.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NEEDS_EDIT_MIN_VOXELS = 20
NEEDS_EDIT_FRACTION = 0.2
LESION_DILATION = 1  # BraTS 2023 metastasis settings
LESION_MIN_MM3 = 2.0


def rest_scores(
    prediction: np.ndarray, truth: np.ndarray, corrected: Sequence[int], spacing: Sequence[float]
) -> dict:
    """Every figure of a round (see the module docstring).

    Args:
        prediction: (Z, Y, X) internal labels the model gives (corrected slices included: they are masked out).
        truth: (Z, Y, X) reference labels.
        corrected: the corrected slices (left out of the rest; pasted into the final mask).
        spacing: voxel size in mm.
    """
    from ..metrics.lesions import lesion_wise_scores
    from ..models.losses import region_dice

    rest = np.ones(prediction.shape[0], bool)
    rest[list(corrected)] = False
    dice = region_dice(prediction[rest], truth[rest])
    pred_wt = (prediction > 0) & rest[:, None, None]
    ref_wt = (truth > 0) & rest[:, None, None]
    lesions = lesion_wise_scores(pred_wt, ref_wt, spacing, dilation=LESION_DILATION, min_volume_mm3=LESION_MIN_MM3)
    found = lesions.true_positives + lesions.false_negatives
    fp_voxels = int(np.count_nonzero(pred_wt & ~ref_wt))
    final = prediction.copy()
    final[list(corrected)] = truth[list(corrected)]
    return {
        "dice": {k: round(v, 5) for k, v in dice.items()},
        "lesion_sensitivity": round(lesions.true_positives / found, 5) if found else 1.0,
        "lesions": found,
        "fp_lesions": lesions.false_positives,
        "fp_voxels": fp_voxels,
        "fp_ml": round(fp_voxels * float(np.prod(spacing)) / 1000.0, 4),
        "slices_needing_edits": len(slices_needing_edits(prediction, truth, np.flatnonzero(rest))),
        "final_dice": {k: round(v, 5) for k, v in region_dice(final, truth).items()},
    }


def slices_needing_edits(prediction: np.ndarray, truth: np.ndarray, slices: Sequence[int]) -> list[int]:
    """The slices (among ``slices``) with enough wrong voxels that a radiologist would edit them."""
    out = []
    for z in slices:
        wrong = int(np.count_nonzero(prediction[z] != truth[z]))
        tumour = max(int(np.count_nonzero(prediction[z])), int(np.count_nonzero(truth[z])))
        if wrong >= NEEDS_EDIT_MIN_VOXELS and wrong > NEEDS_EDIT_FRACTION * tumour:
            out.append(int(z))
    return out


# --- strategies: which slices the radiologist corrects next -----------------------------------


def _fill(picks: list[int], candidates: Sequence[int], count: int, rng: np.random.Generator) -> list[int]:
    """Top up with random candidates when a strategy has fewer than ``count`` slices to offer."""
    left = [int(z) for z in candidates if int(z) not in set(picks)]
    if len(picks) < count and left:
        extra = rng.choice(len(left), size=min(count - len(picks), len(left)), replace=False)
        picks = picks + [left[i] for i in sorted(extra.tolist())]
    return picks


def pick_suggested(scores: np.ndarray, brain: Sequence[int], corrected: Sequence[int], count: int,
                   rng: np.random.Generator) -> list[int]:
    """The plugin's suggestions (``workflow.suggest.pick_slices``) among the brain slices."""
    from ..workflow.suggest import pick_slices

    inside = np.zeros_like(scores)
    inside[list(brain)] = scores[list(brain)]
    picks = pick_slices(inside, count, exclude=corrected)
    return _fill(picks, [z for z in brain if z not in set(corrected)], count, rng)


def pick_random(brain: Sequence[int], corrected: Sequence[int], count: int, rng: np.random.Generator) -> list[int]:
    """Slices through the brain at random (most of them healthy: what a random pick is)."""
    return _fill([], [z for z in brain if z not in set(corrected)], count, rng)


def pick_by_dice(prediction: np.ndarray, truth: np.ndarray, brain: Sequence[int], corrected: Sequence[int],
                 count: int, rng: np.random.Generator) -> list[int]:
    """The worst slices by the truth: lowest mean region Dice first, more wrong voxels first among ties.

    Slices the model already gets exactly right are never picked (they teach nothing).
    """
    from ..models.losses import mean_region_dice

    ranked = []
    for z in brain:
        if z in set(corrected):
            continue
        wrong = int(np.count_nonzero(prediction[z] != truth[z]))
        if wrong:
            ranked.append((mean_region_dice(prediction[z], truth[z]), -wrong, int(z)))
    picks = [z for _, _, z in sorted(ranked)[:count]]
    return _fill(picks, [z for z in brain if z not in set(corrected)], count, rng)
