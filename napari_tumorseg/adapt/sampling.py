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

from ..models.losses import distillation_loss
from ..models.precision import full_precision
from .corrections import Corrections

Sample = tuple[torch.Tensor, torch.Tensor]  # (C, H, W) float32 input, (H, W) int64 labels
# A replayed sample that also carries its teacher's (K, H, W) probabilities (see ``Replay``).
TaughtSample = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
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


@dataclass(frozen=True)
class ViewWindow:
    """Where a view lies in its slice (rows ``top:top + height``, columns ``left:left + width``) and whether
    it is mirrored left-right; ``apply`` cuts any tensor of the slice's last two dimensions the same way."""

    top: int
    left: int
    height: int
    width: int
    flip: bool

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        view = tensor[..., self.top : self.top + self.height, self.left : self.left + self.width]
        return view.flip(-1) if self.flip else view


def view_window(labels: torch.Tensor, generator: torch.Generator, crop: int | None) -> ViewWindow:
    """A random view's window: a crop (``crop`` x ``crop``, capped at the slice; biased to the tumour) and a flip.

    Args:
        labels: (H, W) slice labels (the tumour the crop is biased to).
        generator: the seeded random source (views are reproducible).
        crop: the side of the crop; None keeps the whole slice. Give a
            multiple of the network's size multiple.
    """
    height, width = labels.shape
    top, left, crop_h, crop_w = 0, 0, height, width
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
    flip = torch.rand((), generator=generator).item() < 0.5
    return ViewWindow(top, left, crop_h, crop_w, flip)


def make_view(inputs: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, crop: int | None) -> Sample:
    """A random view of one slice (``view_window``): inputs (C, H, W) and labels (H, W) cut the same way."""
    window = view_window(labels, generator, crop)
    return window.apply(inputs), window.apply(labels)


def sample_views(pool: SlicePool, indices: Sequence[int], generator: torch.Generator, crop: int | None) -> list[Sample]:
    """One random view of each of ``indices`` in ``pool``."""
    return [make_view(pool.inputs[i], pool.labels[i], generator, crop) for i in indices]


def grouped_loss(forward: Forward, samples: Sequence[Sample | TaughtSample], loss_fn: LossFn,
                 distill_weight: float = 0.0) -> torch.Tensor:
    """The loss over samples of possibly different sizes, as one scalar.

    Samples of equal shape go through the network as one batch; the group
    losses are averaged with weights by their number of samples.

    Args:
        forward: input batch (B, C, H, W) -> logits (B, 4, H, W); e.g. a model,
            or a ``functional_call`` closure with other parameters.
        samples: (input, labels) pairs, or (input, labels, teacher probabilities) triples.
        loss_fn: (logits, labels) -> scalar.
        distill_weight: a triple's loss also has this times KL(teacher || network)
            (``models.losses.distillation_loss``).
    """
    if not samples:
        raise ValueError("no samples to compute a loss on")
    groups: dict[tuple[int, ...], list[Sample | TaughtSample]] = {}
    for sample in samples:
        groups.setdefault((*sample[0].shape, len(sample)), []).append(sample)
    total: torch.Tensor | None = None
    for group in groups.values():
        inputs = torch.stack([s[0] for s in group])
        labels = torch.stack([s[1] for s in group])
        logits = full_precision(forward(inputs))
        term = loss_fn(logits, labels)
        if distill_weight and len(group[0]) == 3:
            term = term + distill_weight * distillation_loss(logits, torch.stack([s[2] for s in group]))
        term = term * (len(group) / len(samples))
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
        teachers: per source pool, (2, N, K, H, W) probabilities of the model being adapted, taken
            before its first step, on each slice and its mirror (``teacher_probabilities``); with
            ``distill_weight`` > 0 a replayed source slice is also pulled towards them (see ``grouped_loss``): "dark
            experience replay" (Buzzega et al., NeurIPS 2020), which keeps the old function
            where it is unsure, not only where its labels are, as a labels-only replay does.
        distill_weight: the weight of that pull, against the replayed slices' label loss.
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
        teachers: Sequence[torch.Tensor] = (),
        distill_weight: float = 0.0,
    ) -> None:
        self.pools = list(pools)
        if teachers and len(teachers) != len(self.pools):
            raise ValueError(f"{len(teachers)} teacher sets for {len(self.pools)} replay pools")
        self.teachers = list(teachers)
        self.distill_weight = float(distill_weight) if self.teachers else 0.0
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
        self.teachers = [teacher.to(device) for teacher in self.teachers]
        self.memory = [pool.to(device) for pool in self.memory]
        return self

    def _draw(self, pools: Sequence[SlicePool], slices: Sequence[tuple[int, int]], count: int,
              generator: torch.Generator, teachers: Sequence[torch.Tensor] = ()) -> list[Sample | TaughtSample]:
        if count and self.by_case:
            case = int(torch.randint(len(pools), (), generator=generator))
            slices = [(p, i) for p, i in slices if p == case]
        picks = torch.randperm(len(slices), generator=generator)[:count].tolist() if count else []
        samples = []
        for pick in picks:
            pool_index, slice_index = slices[pick]
            pool = pools[pool_index]
            window = view_window(pool.labels[slice_index], generator, self.crop)
            sample = (window.apply(pool.inputs[slice_index]), window.apply(pool.labels[slice_index]))
            if teachers:  # the parent's softmax on this very view: of the mirrored slice when it is mirrored
                sample += (window.apply(teachers[pool_index][int(window.flip), slice_index]),)
            samples.append(sample)
        return samples

    def loss(self, forward: Forward, generator: torch.Generator, loss_fn: LossFn) -> torch.Tensor:
        """The weighted loss of ``per_step`` random source slices and ``memory_per_step`` memory slices."""
        teachers = self.teachers if self.distill_weight else ()
        samples = self._draw(self.pools, self.slices, self.per_step, generator, teachers)
        samples += self._draw(self.memory, self.memory_slices, self.memory_per_step, generator)
        self.last_count = len(samples)
        return self.weight * grouped_loss(forward, samples, loss_fn, self.distill_weight)

    def describe(self) -> dict:
        described = {"slices": len(self.slices), "per_step": self.per_step, "weight": self.weight}
        if self.distill_weight:
            described["distill_weight"] = self.distill_weight
        if self.memory_slices:
            described["memory"] = {
                "cases": sorted({name.split(":z")[0] for pool in self.memory for name in pool.names}),
                "slices": len(self.memory_slices),
                "per_step": self.memory_per_step,
            }
        return described


@torch.no_grad()
def teacher_probabilities(
    model: torch.nn.Module, pools: Sequence[SlicePool], batch_size: int = 8
) -> list[torch.Tensor]:
    """``Replay``'s teachers: per pool, (2, N, K, H, W) float32 softmax of the model, in eval mode, on each slice
    (index 0) and on its mirror image, mirrored back (index 1), so that a mirrored view's teacher is what the
    model says of that view itself. Exact for whole-slice views (the plugin's); a crop's teacher is cut from
    the whole slice's, which saw more context than the crop does.

    ``no_grad``, not ``inference_mode``: the probabilities are later saved for the distillation's backward pass.
    """
    was_training = model.training
    model.eval()

    def softmax(inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([full_precision(model(inputs[start : start + batch_size])).softmax(dim=1)
                          for start in range(0, len(inputs), batch_size)])

    try:
        return [torch.stack([softmax(pool.inputs), softmax(pool.inputs.flip(-1)).flip(-1)]) for pool in pools]
    finally:
        model.train(was_training)
