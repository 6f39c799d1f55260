"""Training samples for adaptation: augmented views of slices, grouped forwards, replay.

A *view* of a slice is a random crop (biased towards the tumour) and a random
left-right flip. Crops make steps cheap on a CPU and, for meta-tuning, make
the support and query samples of a task two different looks at the same
slice. Slices of different cases have different sizes (each is cropped to its
own brain), so losses are computed per group of equal-shape samples and
averaged with weights by sample count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..models.precision import full_precision
from .corrections import Corrections

Sample = tuple[torch.Tensor, torch.Tensor]  # (C, H, W) float32 input, (H, W) int64 labels
Forward = Callable[[torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Probability that a crop is centred on a tumour voxel; the rest are anywhere
# in the slice so the skull and healthy brain keep being seen as background.
TUMOUR_CROP_PROBABILITY = 0.75


@dataclass(frozen=True, eq=False)
class SlicePool:
    """Slices of equal size, as tensors.

    Args:
        inputs: (N, C, H, W) float32.
        labels: (N, H, W) int64 internal labels.
        names: a label per slice for reports, e.g. "BraTS-001:z70".
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: torch.device | str) -> SlicePool:
        """The pool on ``device`` (itself when already there)."""
        if self.inputs.device == torch.device(device):
            return self
        return SlicePool(self.inputs.to(device), self.labels.to(device), self.names)

    @classmethod
    def from_arrays(cls, inputs: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> SlicePool:
        return cls(
            torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64)),
            tuple(names),
        )


def correction_pools(corrections: Corrections, device: torch.device | str = "cpu") -> list[SlicePool]:
    """One pool per case (slices of a case share the case's cropped size), on ``device``."""
    return [
        SlicePool.from_arrays(c.inputs, c.labels, [f"{c.case_name}:z{z}" for z in c.slice_indices]).to(device)
        for c in corrections.cases
    ]


def flat_tasks(pools: Sequence[SlicePool]) -> list[tuple[int, int]]:
    """Every slice of every pool as (pool index, slice index), in pool order."""
    return [(p, i) for p, pool in enumerate(pools) for i in range(len(pool))]


def make_view(inputs: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, crop: int | None) -> Sample:
    """A random view of one slice: crop (``crop`` x ``crop``, capped at the slice) and flip.

    Args:
        inputs: (C, H, W) slice input.
        labels: (H, W) slice labels.
        generator: the seeded random source (views are reproducible).
        crop: the side of the crop; None keeps the whole slice. Give a
            multiple of the network's size multiple.
    """
    height, width = labels.shape
    if crop is not None and (height > crop or width > crop):
        crop_h, crop_w = min(crop, height), min(crop, width)
        tumour = torch.nonzero(labels > 0).cpu()
        use_tumour = len(tumour) > 0 and torch.rand((), generator=generator).item() < TUMOUR_CROP_PROBABILITY
        if use_tumour:
            centre_y, centre_x = tumour[int(torch.randint(len(tumour), (), generator=generator))].tolist()
            # Any window that contains the chosen voxel, clamped to the slice.
            top = centre_y - int(torch.randint(crop_h, (), generator=generator))
            left = centre_x - int(torch.randint(crop_w, (), generator=generator))
        else:
            top = int(torch.randint(height - crop_h + 1, (), generator=generator))
            left = int(torch.randint(width - crop_w + 1, (), generator=generator))
        top = min(max(top, 0), height - crop_h)
        left = min(max(left, 0), width - crop_w)
        inputs = inputs[:, top : top + crop_h, left : left + crop_w]
        labels = labels[top : top + crop_h, left : left + crop_w]
    if torch.rand((), generator=generator).item() < 0.5:
        inputs, labels = inputs.flip(-1), labels.flip(-1)
    return inputs, labels


def sample_views(pool: SlicePool, indices: Sequence[int], generator: torch.Generator, crop: int | None) -> list[Sample]:
    """One random view of each of ``indices`` in ``pool``."""
    return [make_view(pool.inputs[i], pool.labels[i], generator, crop) for i in indices]


def grouped_loss(forward: Forward, samples: Sequence[Sample], loss_fn: LossFn) -> torch.Tensor:
    """The loss over samples of possibly different sizes, as one scalar.

    Samples of equal shape go through the network as one batch; the group
    losses are averaged with weights by their number of samples.

    Args:
        forward: input batch (B, C, H, W) -> logits (B, 4, H, W); e.g. a model,
            or a ``functional_call`` closure with other parameters.
        samples: (input, labels) pairs.
        loss_fn: (logits, labels) -> scalar.
    """
    if not samples:
        raise ValueError("no samples to compute a loss on")
    groups: dict[tuple[int, ...], list[Sample]] = {}
    for sample in samples:
        groups.setdefault(tuple(sample[0].shape), []).append(sample)
    total: torch.Tensor | None = None
    for group in groups.values():
        inputs = torch.stack([s[0] for s in group])
        labels = torch.stack([s[1] for s in group])
        term = loss_fn(full_precision(forward(inputs)), labels) * (len(group) / len(samples))
        total = term if total is None else total + term
    assert total is not None
    return total


class Replay:
    """Slices mixed into every step to limit forgetting: the source domain's, and the user's earlier cases'.

    Args:
        pools: the source slices (synthetic glioma, see ``anchors.replay_pools``),
            one pool per case since cases differ in size.
        per_step: source slices drawn (with the generator) for each step.
        weight: the replay loss is added to the corrections' loss times this.
        crop: crop side of the replayed views (as for the corrections).
        memory: the user's corrections of earlier cases (see ``adapt.memory``), one
            pool per case; replayed too, so adapting to this case does not erase them.
        memory_per_step: memory slices drawn for each step (when there are any).
        by_case: draw each step's source slices from one source case, and its memory slices
            from one earlier case, each picked at random: slices of one case share a size, so
            each draw is one batch through the network, not one per case drawn (on a GPU a
            step's passes, not its arithmetic, set its time). A draw then holds at most that
            case's slices.
    """

    def __init__(
        self,
        pools: Sequence[SlicePool],
        per_step: int = 2,
        weight: float = 0.5,
        crop: int | None = None,
        *,
        memory: Sequence[SlicePool] = (),
        memory_per_step: int = 0,
        by_case: bool = False,
    ) -> None:
        self.pools = list(pools)
        self.slices = flat_tasks(self.pools)
        self.memory = [pool for pool in memory if len(pool)]
        self.memory_slices = flat_tasks(self.memory)
        if not self.slices and not self.memory_slices:
            raise ValueError("the replay set is empty")
        self.per_step = max(1, min(int(per_step), len(self.slices))) if self.slices else 0
        self.memory_per_step = min(max(int(memory_per_step), 0), len(self.memory_slices))
        self.weight = float(weight)
        self.crop = crop
        self.by_case = by_case
        self.last_count = 0  # slices in the last loss (forward/backward passes of a step)

    def to(self, device: torch.device | str) -> Replay:
        """Move the slices to ``device`` (the model's) once, not at every step."""
        self.pools = [pool.to(device) for pool in self.pools]
        self.memory = [pool.to(device) for pool in self.memory]
        return self

    def _draw(self, pools: Sequence[SlicePool], slices: Sequence[tuple[int, int]], count: int,
              generator: torch.Generator) -> list[Sample]:
        if count and self.by_case:
            case = int(torch.randint(len(pools), (), generator=generator))
            slices = [(p, i) for p, i in slices if p == case]
        picks = torch.randperm(len(slices), generator=generator)[:count].tolist() if count else []
        samples = []
        for pick in picks:
            pool_index, slice_index = slices[pick]
            pool = pools[pool_index]
            samples.append(make_view(pool.inputs[slice_index], pool.labels[slice_index], generator, self.crop))
        return samples

    def loss(self, forward: Forward, generator: torch.Generator, loss_fn: LossFn) -> torch.Tensor:
        """The weighted loss of ``per_step`` random source slices and ``memory_per_step`` memory slices."""
        samples = self._draw(self.pools, self.slices, self.per_step, generator)
        samples += self._draw(self.memory, self.memory_slices, self.memory_per_step, generator)
        self.last_count = len(samples)
        return self.weight * grouped_loss(forward, samples, loss_fn)

    def describe(self) -> dict:
        described = {"slices": len(self.slices), "per_step": self.per_step, "weight": self.weight}
        if self.memory_slices:
            described["memory"] = {
                "cases": sorted({name.split(":z")[0] for pool in self.memory for name in pool.names}),
                "slices": len(self.memory_slices),
                "per_step": self.memory_per_step,
            }
        return described
