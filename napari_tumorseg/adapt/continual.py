"""Dy-CNN continual update: the lifelong setting of paper 004.

Corrections arrive as a stream of batches, one per case in the order given
(and, across runs, one adaptation per new batch, each starting from the
version the previous one made). Each batch gets ``steps`` optimiser steps on
its own slices only (plus replay when on); earlier batches are not revisited,
which is the lifelong-learning setting the paper shows the Dy-CNN survives
and the static U-Net does not.

The attention temperature of the dynamic convolutions is held at the value
the model was trained to (annealed to about 1): it is a plain attribute, not
a parameter, so no gradient touches it, and it is set explicitly and checked
after every step so an accidental annealer could not move it either.
"""

from __future__ import annotations

from collections.abc import Generator

import torch
from torch import nn

from ..errors import AdaptationError
from ..jobs import CancelFlag, Clock, Progress
from ..models.dynconv import get_temperature, set_temperature
from ..models.losses import dice_ce_loss
from .config import PHASE_ADAPTING, AdaptConfig
from .corrections import Corrections
from .naive import cycling_batches, gradient_step
from .sampling import LossFn, Replay, correction_pools, flat_tasks
from .training import MethodResult, make_optimizer, model_device, trainable_parameters, training_precision, working_copy


def require_dycnn(model: nn.Module) -> float:
    """The model's attention temperature; AdaptationError if it is not a Dy-CNN."""
    temperature = get_temperature(model)
    if temperature is None:
        raise AdaptationError(
            "the dycnn method updates a Dy-CNN, but this model has no dynamic convolutions; "
            "use naive, passive or active"
        )
    return temperature


def dycnn_continual(
    model: nn.Module,
    corrections: Corrections,
    config: AdaptConfig,
    *,
    cancel: CancelFlag = None,
    replay: Replay | None = None,
    loss_fn: LossFn = dice_ce_loss,
) -> Generator[Progress, None, MethodResult]:
    """Update a copy of a Dy-CNN on each case's corrections in turn, temperature frozen.

    Args:
        model: the current Dy-CNN (left untouched).
        corrections: one batch per case, in arrival order.
        config: ``steps`` per batch, ``lr``, ``optimizer``, ``batch_size``, ``crop``, ``seed``.
        cancel: checked before every step; a cancel raises Cancelled.
        replay: source slices mixed into every step, or None.
        loss_fn: (logits, labels) -> scalar.

    Raises:
        AdaptationError: the model has no dynamic convolutions.
    """
    temperature = require_dycnn(model)
    pools = correction_pools(corrections, model_device(model))
    clock = Clock(config.steps * len(pools), PHASE_ADAPTING, cancel)
    clock.check()
    working = working_copy(model, config.layers)
    set_temperature(working, temperature)
    optimizer = make_optimizer(list(trainable_parameters(working).values()), config)
    generator = torch.Generator().manual_seed(config.seed)
    precision = training_precision(config, working)
    losses: list[float] = []
    arrivals: list[str] = []
    total_passes = 0
    for pool_index, pool in enumerate(pools):
        # Only this batch's slices: the stream does not come back to earlier ones.
        tasks = [t for t in flat_tasks(pools) if t[0] == pool_index]
        batches = cycling_batches(tasks, config.batch_size, generator)
        arrivals.append(f"batch {pool_index + 1}: " + ", ".join(pool.names))
        for _ in range(config.steps):
            clock.check()
            loss, passes = gradient_step(working, optimizer, pools, next(batches), config, generator, replay, loss_fn,
                                         precision)
            total_passes += passes
            if get_temperature(working) != temperature:
                raise AdaptationError(f"the attention temperature moved from {temperature} during a continual update")
            losses.append(loss)
            yield clock.tick(detail=f"batch {pool_index + 1}/{len(pools)}", loss=loss)
    details = {"temperature": temperature, "batches": len(pools), "passes": total_passes, "precision": precision}
    return MethodResult(working, losses, arrivals, details)
