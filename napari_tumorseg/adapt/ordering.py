"""Which corrected slices meta-tuning learns from at each step, and in what order (paper 000, Algorithm 1).

Tasks and pairing. Every corrected slice is a task. A meta batch holds
tasks of one case only ("for the meta batch size of one patient"), cases
taking turns. Within the case the slices are ranked (see below) and split
in two halves: the first half of the ranking and the rest. With the
Dice ranking of active meta-tune these are the bad (unlearned) and the good
(learned) tasks of Algorithm 1, T_b and T_g. Each meta batch takes its
supports alternately from the two halves, first-ranked first, and pairs each
support with a query slice from the *other* half: a step on an unlearned
slice is judged by a learned one (it must not spoil it), a step on a
learned slice by an unlearned one (it should help it) — Figure 1b's "learn
the unlearned features without forgetting the learned ones". Support and
query are different slices of the same case whenever the case has two;
with a single corrected slice they are two views of it (one flipped).

Orders. ``worst-first`` (active): ranked by the current model's Dice on the
slice, lowest first, and *re-ranked at every step* from what the model
scored on the supports it just saw (the support forward pass is at the
current weights, so its Dice is exact and costs nothing extra); a slice
stays first until the model has learned it. ``best-first``: the same
pairing on the reversed ranking, the control that tells whether the order
is what helps. ``random`` (passive): a fresh random ranking every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .sampling import SlicePool, flat_tasks

Pair = tuple[int, int]  # (support task, query task), indices into the run's flat task list


class TaskRanker:
    """The run's tasks, the model's Dice on each as last seen, and the meta batches they give.

    Args:
        pools: the corrected slices, one pool per case.
        order: "worst-first", "best-first" or "random".
        generator: the run's seeded random source (random order, nothing else).
        dice: the model's Dice on each task before the first step (flat task order);
            None for the random order, which does not need it.
    """

    def __init__(
        self, pools: Sequence[SlicePool], order: str, generator: torch.Generator, dice: Sequence[float] | None = None
    ) -> None:
        self.tasks = flat_tasks(pools)
        self.order = order
        self.generator = generator
        if order != "random" and dice is None:
            raise ValueError(f"the {order} order needs the model's Dice on every task")
        self.dice = [float(v) for v in dice] if dice is not None else [math.nan] * len(self.tasks)
        self.by_case = [[t for t, (p, _) in enumerate(self.tasks) if p == case] for case in range(len(pools))]
        self.by_case = [tasks for tasks in self.by_case if tasks]
        self._turn = 0

    def observe(self, task: int, dice: float) -> None:
        """The model's Dice on ``task``'s slice at the current weights (re-ranks the next batches)."""
        self.dice[task] = float(dice)

    def ranking(self, tasks: Sequence[int]) -> list[int]:
        """``tasks`` in this run's order: by Dice (ties by position) or at random."""
        if self.order == "random":
            return [tasks[i] for i in torch.randperm(len(tasks), generator=self.generator).tolist()]
        sign = 1.0 if self.order == "worst-first" else -1.0
        return sorted(tasks, key=lambda t: (sign * self.dice[t], t))

    def next_batch(self, size: int) -> list[Pair]:
        """The next meta batch: ``size`` (support, query) pairs from the next case in turn."""
        tasks = self.by_case[self._turn % len(self.by_case)]
        self._turn += 1
        return pair_tasks(self.ranking(tasks), size)


def pair_tasks(ranked: Sequence[int], size: int) -> list[Pair]:
    """Supports alternately from the ranking's first half and its rest; each query from the other half.

    Args:
        ranked: one case's tasks, first-ranked first.
        size: pairs wanted; with fewer tasks the ranking is gone through again (so a meta
            step always runs ``2 * size`` slices, whatever the number of corrected slices).

    Returns:
        (support, query) pairs; support and query differ unless the case has one task.
    """
    half = math.ceil(len(ranked) / 2)
    first, rest = list(ranked[:half]), list(ranked[half:])
    pairs: list[Pair] = []
    for j in range(size):
        if not rest:  # one task: support and query are two views of it
            pairs.append((first[0], first[0]))
            continue
        position = j // 2
        group, other = (first, rest) if j % 2 == 0 else (rest, first)
        pairs.append((group[position % len(group)], other[position % len(other)]))
    return pairs


def slice_dice(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Mean region Dice of each slice of a batch's arg-max prediction (the ranking's measure)."""
    from ..models.labels import class_map
    from ..models.losses import per_slice_dice

    prediction = class_map(logits.detach()).to(torch.uint8).cpu().numpy()
    return per_slice_dice(prediction, labels.detach().cpu().numpy().astype(np.uint8)).tolist()
