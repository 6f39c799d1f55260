"""Step back instead of reject: a version part of the way from the parent to the adapted weights.

One round of adaptation on two slices of a new tumour type forgets part of
the source domain: on the tuning range (metastasis 33000-33007) the full step
lost 0.028 mean Dice of 80 held-out source slices on average, and the guard
rejected 7 versions of 8, so the user kept nothing of what they taught. The
weights 0.5 of the way back to the parent's kept half the gain on the case
(+0.022 against +0.042) and forgot almost nothing (0.002); a smaller learning
rate kept less gain per unit of forgetting and a heavier replay forgot more
(docs/results/step-back). Interpolating a fine-tuned network's weights with
the ones it started from is WiSE-FT (Wortsman et al., CVPR 2022).

So when the guard rejects the full step, the versions STEP_BACK_FRACTIONS of
the way from the parent are scored in turn and the first the guard accepts is
kept; the report says how far it stepped and why the full step was refused.
A user who forces a version gets the full step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..jobs import Progress
from .guard import GuardDecision

STEP_BACK_FRACTIONS = (0.75, 0.5, 0.25)


def interpolated(parent: nn.Module, adapted: nn.Module, fraction: float) -> nn.Module:
    """A copy of ``adapted`` whose floating-point weights and buffers lie ``fraction`` of the way from ``parent``'s.

    Args:
        parent: the network the adaptation started from (not modified).
        adapted: the adapted network, same architecture (not modified).
        fraction: 0 gives the parent's weights, 1 the adapted ones.
    """
    mixed = copy.deepcopy(adapted)
    start = parent.state_dict()
    with torch.no_grad():
        for key, value in mixed.state_dict().items():
            if value.is_floating_point():
                origin = start[key].to(value.device, value.dtype)
                value.copy_(origin + fraction * (value - origin))
    return mixed.eval()


@dataclass
class SteppedBack:
    """The version kept after the full step was refused."""

    fraction: float
    model: nn.Module
    after: dict[str, dict[str, float]]
    decision: GuardDecision


def step_back(
    parent: nn.Module,
    adapted: nn.Module,
    score: Callable[[nn.Module], Generator[Progress, None, dict]],
    judge: Callable[[dict], GuardDecision],
    full_step: GuardDecision,
    fractions: tuple[float, ...] = STEP_BACK_FRACTIONS,
) -> Generator[Progress, None, SteppedBack | None]:
    """The first version ``fraction`` of the way from ``parent`` to ``adapted`` that ``judge`` accepts, or None.

    Args:
        parent, adapted: the networks before and after the adaptation.
        score: scores a version on the guard's sets (a long job: yields its progress), returning
            its scores per set (it may stop at the first set that makes the guard refuse).
        judge: the guard's decision on a version's scores after.
        full_step: the guard's decision on the full step (named in the kept version's reason).
        fractions: the steps tried, in order.
    """
    refused = full_step.reason.removeprefix("rejected: ")
    for fraction in fractions:
        version = interpolated(parent, adapted, fraction)
        after = yield from score(version)
        decision = judge(after)
        if decision.accepted:
            reason = (f"stepped back to {fraction:g} of the way from the previous version and accepted: "
                      f"{decision.reason.removeprefix('accepted: ')}. The full step was refused: {refused}")
            return SteppedBack(fraction, version, after, replace(decision, reason=reason))
    return None
