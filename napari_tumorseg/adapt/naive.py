"""Naive fine-tune: plain gradient steps on the corrected slices (paper 000's baseline).

Each step takes a random view (crop + flip) of up to ``batch_size`` corrected
slices, cycling through all of them in a seeded random order, and makes one
optimiser step (plain SGD by default, Adam on request) on the Dice +
cross-entropy loss averaged over the batch, plus the replay loss when replay
is on. With the default batch of 4 a step runs as many slices forward and
backward as a meta step of two tasks (``details["passes"]`` counts them).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence

import torch
from torch import nn

from ..jobs import CancelFlag, Clock, Progress
from ..models.losses import dice_ce_loss
from ..models.precision import compute_precision
from .config import PHASE_ADAPTING, AdaptConfig
from .corrections import Corrections
from .sampling import LossFn, Replay, SlicePool, correction_pools, flat_tasks, grouped_loss, make_view
from .training import MethodResult, make_optimizer, model_device, trainable_parameters, training_precision, working_copy


def cycling_batches(
    tasks: Sequence[tuple[int, int]], batch_size: int, generator: torch.Generator
) -> Iterator[list[tuple[int, int]]]:
    """Batches of ``batch_size`` tasks drawn without replacement, reshuffled when all were used.

    A batch holds each task at most once when there are enough of them; with
    fewer tasks than ``batch_size`` they repeat (each time another random
    view), so a step always runs ``batch_size`` slices: the same passes as a
    meta step whatever the number of corrected slices.
    """
    queue: list[tuple[int, int]] = []
    while True:
        batch: list[tuple[int, int]] = []
        while len(batch) < batch_size:
            if not queue:
                queue = [tasks[i] for i in torch.randperm(len(tasks), generator=generator).tolist()]
            candidate = queue.pop(0)
            if candidate not in batch or len(tasks) < batch_size:
                batch.append(candidate)
        yield batch


def gradient_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    pools: Sequence[SlicePool],
    batch: Sequence[tuple[int, int]],
    config: AdaptConfig,
    generator: torch.Generator,
    replay: Replay | None,
    loss_fn: LossFn,
    precision: str = "fp32",
) -> tuple[float, int]:
    """One optimiser step on views of ``batch`` (and replay); returns the loss and the slices passed.

    ``precision`` ("fp32" or "bf16", resolved) is the arithmetic of the passes; the update is float32.
    """
    samples = [make_view(pools[p].inputs[i], pools[p].labels[i], generator, config.crop) for p, i in batch]
    with compute_precision(precision, model_device(model)):
        loss = grouped_loss(model, samples, loss_fn)
        passes = len(samples)
        if replay is not None:
            loss = loss + replay.loss(model, generator, loss_fn)
            passes += replay.last_count
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    optimizer.step()
    return float(loss.detach()), passes


def naive_finetune(
    model: nn.Module,
    corrections: Corrections,
    config: AdaptConfig,
    *,
    cancel: CancelFlag = None,
    replay: Replay | None = None,
    loss_fn: LossFn = dice_ce_loss,
) -> Generator[Progress, None, MethodResult]:
    """Fine-tune a copy of ``model`` on the corrected slices.

    Args:
        model: the current model (left untouched).
        corrections: the corrected slices.
        config: ``steps``, ``lr``, ``optimizer``, ``batch_size``, ``crop``, ``seed``.
        cancel: checked before every step; a cancel raises Cancelled.
        replay: source slices mixed into every step, or None.
        loss_fn: (logits, labels) -> scalar.

    Yields:
        Progress after every step.

    Returns:
        MethodResult with the adapted copy and the losses.
    """
    clock = Clock(config.steps, PHASE_ADAPTING, cancel)
    clock.check()
    working = working_copy(model, config.layers)
    optimizer = make_optimizer(list(trainable_parameters(working).values()), config)
    generator = torch.Generator().manual_seed(config.seed)
    pools = correction_pools(corrections, model_device(model))
    batches = cycling_batches(flat_tasks(pools), config.batch_size, generator)
    precision = training_precision(config, working)
    losses: list[float] = []
    total_passes = 0
    for _ in range(config.steps):
        clock.check()
        loss, passes = gradient_step(working, optimizer, pools, next(batches), config, generator, replay, loss_fn,
                                     precision)
        losses.append(loss)
        total_passes += passes
        yield clock.tick(loss=loss)
    details = {"batch_size": config.batch_size, "passes": total_passes, "precision": precision}
    return MethodResult(working, losses, [], details)
