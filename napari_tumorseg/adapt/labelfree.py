"""The label-free check: what an adaptation changed where nobody gave a reference.

A radiologist's case has no reference mask, so the guard's held-out check
(other slices of the case, scored against their reference) never runs on
it. What can be measured without labels:

- agreement before -> after on slices the user *looked at and left alone*
  (implicitly approved: a version that redraws them is suspect), and on a
  few more uncorrected slices spread over the brain;
- the predicted tumour volume on those slices before and after (an
  adaptation that doubles or erases the tumour it was not shown is suspect),
  and the same for each region on its own: the tumour core (TC) and the
  enhancing tumour (ET). Five slices of a glioma without enhancing tumour
  taught the model "less enhancing tumour": the whole tumour moved by under
  10 %, the enhancing part fell to a quarter or a third. Only the
  per-region volumes show that.

The numbers go on the card and into the report; large changes raise a
warning there. They do not reject a version on their own: a correction that
teaches the model a missed lesion may rightly change slices the user had
not looked at closely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ..io.labels import REGION_TITLES, REGIONS
from ..models.losses import region_dice
from .training import predict_labels

# Below this mean Dice between the labels before and after, the looked-at slices "changed".
AGREEMENT_WARNING = 0.8
# A relative change of the predicted tumour volume beyond this (and over MIN_ML) is worth a warning.
VOLUME_WARNING = 0.5
MIN_ML = 0.5
# The same for the core and the enhancing tumour, smaller than the whole: over a dozen slices an
# enhancing rim is a few tenths of a millilitre.
REGION_MIN_ML = 0.1
# A slice counts as changed when its whole-tumour agreement is below this and this many voxels moved.
SLICE_AGREEMENT = 0.8
SLICE_MIN_VOXELS = 20
DEFAULT_UNLABELLED = 12


@dataclass(frozen=True, eq=False)
class UnlabelledSlices:
    """Uncorrected slices of one case, network-ready, for the label-free check.

    Args:
        inputs: (N, C, H, W) float32 network input.
        indices: canonical z of each slice.
        viewed: the indices among them the user looked at and left alone.
        before: (N, H, W) labels the user saw there (the prediction of the model
            being adapted), or None to predict them with that model.
        voxel_ml: the volume of one voxel in ml.
    """

    inputs: np.ndarray
    indices: tuple[int, ...]
    viewed: tuple[int, ...] = ()
    before: np.ndarray | None = None
    voxel_ml: float = 0.001

    def __post_init__(self) -> None:
        if self.inputs.ndim != 4 or len(self.indices) != self.inputs.shape[0]:
            raise ValueError(f"{len(self.indices)} indices for unlabelled inputs of shape {self.inputs.shape}")
        if self.before is not None and self.before.shape != (self.inputs.shape[0], *self.inputs.shape[2:]):
            raise ValueError(f"labels before {self.before.shape} do not match the inputs {self.inputs.shape}")
        if not set(self.viewed) <= set(self.indices):
            raise ValueError("viewed slices must be among the unlabelled slices")


def choose_unlabelled(
    brain: Sequence[int], corrected: Sequence[int], viewed: Sequence[int] = (), count: int = DEFAULT_UNLABELLED
) -> tuple[list[int], list[int]]:
    """(slices to check, the viewed ones among them): the viewed slices first, then brain slices spread evenly.

    Args:
        brain: the case's slices through the brain.
        corrected: the corrected slices (never checked: they have labels).
        viewed: slices the user looked at, most recent last.
        count: at least this many slices in all (more when more were viewed, up to 2 x count).
    """
    taken = set(int(z) for z in corrected)
    inside = [int(z) for z in brain if int(z) not in taken]
    allowed = set(inside)
    looked = list(dict.fromkeys(int(z) for z in reversed(list(viewed)) if int(z) in allowed))[: 2 * count]
    chosen = list(looked)
    rest = [z for z in inside if z not in set(chosen)]
    need = max(count - len(chosen), 0)
    if need and rest:
        picks = np.linspace(0, len(rest) - 1, min(need, len(rest))).round().astype(int)
        chosen += [rest[i] for i in sorted(set(picks.tolist()))]
    return sorted(chosen), sorted(looked)


@dataclass(frozen=True)
class LabelFreeCheck:
    """Before -> after without a reference (see the module docstring).

    Args:
        slices: unlabelled slices checked.
        viewed: how many of them the user had looked at.
        agreement: mean region Dice between the labels before and after, all checked slices pooled.
        viewed_agreement: the same on the viewed slices only (None when none were viewed).
        changed_slices: slices whose whole tumour moved (agreement < 0.8 and >= 20 voxels).
        tumour_ml_before: predicted whole-tumour volume on the checked slices before, in ml.
        tumour_ml_after: the same after.
        warning: one sentence when something changed a lot, else "".
        region_ml_before: predicted volume of each region ("WT", "TC", "ET") on the checked slices before, in ml.
        region_ml_after: the same after.
    """

    slices: int
    viewed: int
    agreement: float
    viewed_agreement: float | None
    changed_slices: tuple[int, ...]
    tumour_ml_before: float
    tumour_ml_after: float
    warning: str = ""
    region_ml_before: dict[str, float] = field(default_factory=dict)
    region_ml_after: dict[str, float] = field(default_factory=dict)

    @property
    def volume_change(self) -> float:
        """Relative change of the predicted tumour volume (0 when there was none before and after)."""
        return _relative(self.tumour_ml_before, self.tumour_ml_after)

    def region_change(self, region: str) -> float:
        """Relative change of one region's predicted volume (0 when there was none before and after)."""
        return _relative(self.region_ml_before.get(region, 0.0), self.region_ml_after.get(region, 0.0))

    def to_dict(self) -> dict:
        change = self.volume_change
        return {
            "slices": self.slices,
            "viewed": self.viewed,
            "agreement": round(self.agreement, 4),
            "viewed_agreement": None if self.viewed_agreement is None else round(self.viewed_agreement, 4),
            "changed_slices": list(self.changed_slices),
            "tumour_ml": {"before": round(self.tumour_ml_before, 3), "after": round(self.tumour_ml_after, 3),
                          "change": round(change, 4) if np.isfinite(change) else None},
            "region_ml": {region: {"before": round(self.region_ml_before[region], 3),
                                   "after": round(self.region_ml_after.get(region, 0.0), 3),
                                   "change": _rounded(self.region_change(region))}
                          for region in self.region_ml_before},
            "warning": self.warning,
        }


def _relative(before: float, after: float) -> float:
    if before <= 0:
        return 0.0 if after <= 0 else float("inf")
    return after / before - 1.0


def _rounded(change: float) -> float | None:
    return round(change, 4) if np.isfinite(change) else None


def _region_ml(labels: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Predicted volume of each region in ml."""
    return {region: float(np.count_nonzero(np.isin(labels, classes))) * voxel_ml
            for region, classes in REGIONS.items()}


def _agreement(before: np.ndarray, after: np.ndarray) -> float:
    return float(np.mean(list(region_dice(after, before).values())))


def labels_before(model: nn.Module, slices: UnlabelledSlices) -> np.ndarray:
    """What the user saw on the slices (given), else the model's prediction there."""
    return slices.before if slices.before is not None else predict_labels(model, slices.inputs)


def label_free_check(before: Sequence[np.ndarray], after_model: nn.Module,
                     groups: Sequence[UnlabelledSlices]) -> LabelFreeCheck:
    """Compare the labels before (one array per group) with the adapted model's on the same slices.

    Args:
        before: (N, H, W) labels before, per group (see :func:`labels_before`).
        after_model: the adapted network.
        groups: the unlabelled slices of each case.
    """
    pooled_before, pooled_after, viewed_before, viewed_after = [], [], [], []
    changed: list[int] = []
    ml_before = ml_after = 0.0
    regions_before = dict.fromkeys(REGIONS, 0.0)
    regions_after = dict.fromkeys(REGIONS, 0.0)
    viewed_count = 0
    for labels, group in zip(before, groups):
        after = predict_labels(after_model, group.inputs)
        pooled_before.append(labels.reshape(-1))
        pooled_after.append(after.reshape(-1))
        ml_before += float(np.count_nonzero(labels)) * group.voxel_ml
        ml_after += float(np.count_nonzero(after)) * group.voxel_ml
        for region, ml in _region_ml(labels, group.voxel_ml).items():
            regions_before[region] += ml
        for region, ml in _region_ml(after, group.voxel_ml).items():
            regions_after[region] += ml
        viewed = set(group.viewed)
        viewed_count += len(viewed)
        for z, b, a in zip(group.indices, labels, after):
            if z in viewed:
                viewed_before.append(b.reshape(-1))
                viewed_after.append(a.reshape(-1))
            moved = int(np.count_nonzero((b > 0) != (a > 0)))
            if moved >= SLICE_MIN_VOXELS and region_dice(a, b)["WT"] < SLICE_AGREEMENT:
                changed.append(int(z))
    if not pooled_before:
        return LabelFreeCheck(0, 0, 1.0, None, (), 0.0, 0.0)
    agreement = _agreement(np.concatenate(pooled_before), np.concatenate(pooled_after))
    viewed_agreement = (_agreement(np.concatenate(viewed_before), np.concatenate(viewed_after))
                        if viewed_before else None)
    check = LabelFreeCheck(sum(len(g.indices) for g in groups), viewed_count, agreement, viewed_agreement,
                           tuple(sorted(changed)), ml_before, ml_after,
                           region_ml_before=regions_before, region_ml_after=regions_after)
    return _with_warning(check)


def _with_warning(check: LabelFreeCheck) -> LabelFreeCheck:
    from dataclasses import replace

    problems = []
    if check.viewed_agreement is not None and check.viewed_agreement < AGREEMENT_WARNING:
        problems.append(f"the slices you looked at and left alone changed (agreement {check.viewed_agreement:.2f})")
    change = check.volume_change
    if abs(check.tumour_ml_after - check.tumour_ml_before) >= MIN_ML and abs(change) > VOLUME_WARNING:
        problems.append(
            f"the predicted tumour on unlabelled slices went {check.tumour_ml_before:.1f} -> "
            f"{check.tumour_ml_after:.1f} ml"
        )
    for region in ("TC", "ET"):  # the whole tumour is the line above
        before, after = check.region_ml_before.get(region, 0.0), check.region_ml_after.get(region, 0.0)
        if abs(after - before) >= REGION_MIN_ML and abs(check.region_change(region)) > VOLUME_WARNING:
            problems.append(
                f"the predicted {REGION_TITLES[region]} ({region}) on unlabelled slices went {before:.2f} -> "
                f"{after:.2f} ml ({_relative_words(before, after)})"
            )
    return replace(check, warning="; ".join(problems))


def _relative_words(before: float, after: float) -> str:
    """How a volume changed, at a glance: "down 69 %", "up 120 %", "none before"."""
    if before <= 0:
        return "none before"
    change = round(100 * _relative(before, after))
    return f"down {-change} %" if change < 0 else f"up {change} %"
