"""Passive and active meta-tune: MAML on the corrected slices (paper 000, Algorithm 1).

Tasks. Each corrected slice is one task T_i. Its support sample D and its
query sample D'_i are two independent random views (crop + flip, see
``sampling.make_view``) of that slice, so the query asks "after one step on
this look at the slice, is the rest of it right?".

Step. For a meta batch of tasks (``meta_batch_size``):

    theta'_i = theta - alpha * grad_theta L_{T_i}(f_theta; D)          (inner, plain SGD)
    theta   <- theta - beta  * grad_theta sum_i L_{T_i}(f_theta'_i; D'_i)   (meta)

The inner step is computed functionally (``torch.func.functional_call`` with a
dict of new tensors); parameters are never edited in place there. Second
order keeps the graph of the inner gradient (``create_graph=True``) so the
meta-gradient carries the Hessian term; first order (FOMAML) detaches it.
The meta step is applied by an optimiser on the working copy (Adam by
default, or SGD for the literal update). With replay, the source slices'
loss at theta is added to the meta objective (it is theta, not theta'_i,
that becomes the new model, so that is where forgetting is limited).

Order. Passive: tasks in a random (seeded) order, reshuffled every epoch.
Active: tasks ranked once by the current model's Dice on their slice, split
at ``good_threshold`` (default: the median) into bad (unlearned) and good
(learned) tasks; meta batches take the least-learned bad tasks first and
pair them with good tasks, least-learned first too, so learned features keep
being rehearsed while the unlearned ones are learned (Figure 1b).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ..jobs import CancelFlag, Clock, Progress
from ..models.losses import dice_ce_loss, per_slice_dice
from .config import PHASE_ADAPTING, AdaptConfig
from .corrections import Corrections
from .sampling import LossFn, Replay, Sample, SlicePool, correction_pools, flat_tasks, grouped_loss, sample_views
from .training import MethodResult, make_optimizer, model_device, predict_labels, trainable_parameters, working_copy

MetaTask = tuple[Sequence[Sample], Sequence[Sample]]  # (support, query)


def meta_gradient(
    model: nn.Module,
    params: dict[str, torch.Tensor],
    tasks: Sequence[MetaTask],
    *,
    inner_lr: float,
    first_order: bool,
    loss_fn: LossFn = dice_ce_loss,
) -> tuple[dict[str, torch.Tensor], float]:
    """grad_theta sum_i L(f_{theta'_i}; query_i) with theta'_i = theta - alpha grad L(f_theta; support_i).

    Args:
        model: the network whose forward is called with ``params`` substituted.
        params: name -> tensor (requires_grad) for the parameters being meta-learned;
            the model's other parameters and buffers are used as they are.
        tasks: (support samples, query samples) of each task.
        inner_lr: alpha.
        first_order: drop the second-order term (the inner gradient is a constant).
        loss_fn: (logits, labels) -> scalar.

    Returns:
        The meta-gradient (name -> tensor, zeros where a parameter is unused)
        and the summed query loss.
    """
    names = list(params)
    leaves = [params[n] for n in names]
    meta_grads = [torch.zeros_like(p) for p in leaves]
    total_loss = 0.0

    def with_params(values: dict[str, torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: functional_call(model, values, (x,))

    for support, query in tasks:
        support_loss = grouped_loss(with_params(params), support, loss_fn)
        inner_grads = torch.autograd.grad(support_loss, leaves, create_graph=not first_order, allow_unused=True)
        adapted = {}
        for name, leaf, grad in zip(names, leaves, inner_grads):
            if grad is None:
                adapted[name] = leaf
            else:
                adapted[name] = leaf - inner_lr * (grad.detach() if first_order else grad)
        query_loss = grouped_loss(with_params(adapted), query, loss_fn)
        # One backward per task keeps a single task's graph in memory at a time.
        grads = torch.autograd.grad(query_loss, leaves, allow_unused=True)
        for accumulated, grad in zip(meta_grads, grads):
            if grad is not None:
                accumulated.add_(grad)
        total_loss += float(query_loss.detach())
    return dict(zip(names, meta_grads)), total_loss


def split_good_bad(dice: Sequence[float], threshold: float | None = None) -> tuple[list[int], list[int], float]:
    """Split tasks into bad (Dice < threshold) and good ones, each sorted least-learned first.

    Args:
        dice: the current model's Dice on each task's slice.
        threshold: None uses the median Dice.

    Returns:
        (bad task indices, good task indices, the threshold used).
    """
    values = np.asarray(dice, dtype=np.float64)
    used = float(np.median(values)) if threshold is None else float(threshold)
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    bad = [i for i in order if values[i] < used]
    good = [i for i in order if values[i] >= used]
    return bad, good, used


def active_schedule(bad: Sequence[int], good: Sequence[int], meta_batch_size: int) -> list[list[int]]:
    """Meta batches for one epoch: least-learned bad tasks first, each paired with good ones.

    Each batch takes ceil(m/2) tasks from the bad queue and the rest from the
    good queue; when one queue is empty the other fills the batch. Every task
    appears once.

    Args:
        bad: bad task indices, least-learned first.
        good: good task indices, least-learned first.
        meta_batch_size: m, tasks per meta batch.
    """
    bad_queue, good_queue = list(bad), list(good)
    batches: list[list[int]] = []
    from_bad = math.ceil(meta_batch_size / 2)
    while bad_queue or good_queue:
        batch = [bad_queue.pop(0) for _ in range(min(from_bad, len(bad_queue)))]
        while len(batch) < meta_batch_size and (good_queue or bad_queue):
            batch.append(good_queue.pop(0) if good_queue else bad_queue.pop(0))
        batches.append(batch)
    return batches


def passive_schedule(num_tasks: int, meta_batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Meta batches for one epoch: a random permutation of the tasks, chunked."""
    order = torch.randperm(num_tasks, generator=generator).tolist()
    return [order[i : i + meta_batch_size] for i in range(0, num_tasks, meta_batch_size)]


def task_dice(model: nn.Module, pools: Sequence[SlicePool]) -> list[float]:
    """The model's mean region Dice on each corrected slice, in ``flat_tasks`` order."""
    scores: list[float] = []
    for pool in pools:
        prediction = predict_labels(model, pool.inputs.cpu().numpy())
        scores.extend(per_slice_dice(prediction, pool.labels.cpu().numpy()).tolist())
    return scores


def _batches(
    config: AdaptConfig, num_tasks: int, generator: torch.Generator, active_epoch: list[list[int]] | None
) -> Iterator[list[int]]:
    while True:
        epoch = (
            active_epoch if active_epoch is not None else passive_schedule(num_tasks, config.meta_batch_size, generator)
        )
        yield from epoch


def meta_tune(
    model: nn.Module,
    corrections: Corrections,
    config: AdaptConfig,
    *,
    cancel: CancelFlag = None,
    replay: Replay | None = None,
    loss_fn: LossFn = dice_ce_loss,
) -> Generator[Progress, None, MethodResult]:
    """Meta-tune a copy of ``model`` on the corrections; passive or active per ``config.method``.

    Args:
        model: the current model (left untouched).
        corrections: the corrected slices.
        config: ``method`` "passive" or "active", ``steps`` meta steps, ``lr``
            (beta), ``inner_lr`` (alpha), ``first_order``, ``meta_batch_size``,
            ``crop``, ``good_threshold``, ``seed``.
        cancel: checked before every meta step; a cancel raises Cancelled.
        replay: source slices mixed into every meta step, or None.
        loss_fn: (logits, labels) -> scalar.

    Yields:
        Progress after every meta step.

    Returns:
        MethodResult with the adapted copy, the losses and the task order.
    """
    clock = Clock(config.steps, PHASE_ADAPTING, cancel)
    clock.check()
    working = working_copy(model)
    params = trainable_parameters(working)
    optimizer = make_optimizer(list(params.values()), config)
    generator = torch.Generator().manual_seed(config.seed)
    pools = correction_pools(corrections, model_device(model))
    tasks = flat_tasks(pools)
    names = [pools[p].names[i] for p, i in tasks]
    details: dict = {"first_order": config.first_order, "meta_batch_size": config.meta_batch_size}

    active_epoch = None
    if config.method == "active":
        dice = task_dice(working, pools)
        bad, good, threshold = split_good_bad(dice, config.good_threshold)
        active_epoch = active_schedule(bad, good, config.meta_batch_size)
        details.update(
            task_dice={names[i]: round(dice[i], 4) for i in range(len(tasks))},
            bad_tasks=[names[i] for i in bad],
            good_tasks=[names[i] for i in good],
            good_threshold=threshold,
        )
    batches = _batches(config, len(tasks), generator, active_epoch)

    losses: list[float] = []
    task_order: list[str] = []
    for _ in range(config.steps):
        clock.check()
        batch = next(batches)
        meta_tasks = []
        for task in batch:
            pool_index, slice_index = tasks[task]
            support = sample_views(pools[pool_index], [slice_index], generator, config.crop)
            query = sample_views(pools[pool_index], [slice_index], generator, config.crop)
            meta_tasks.append((support, query))
            if names[task] not in task_order:
                task_order.append(names[task])
        grads, loss = meta_gradient(
            working, params, meta_tasks, inner_lr=config.inner_lr, first_order=config.first_order, loss_fn=loss_fn
        )
        for name, parameter in params.items():
            parameter.grad = grads[name]  # replaces last step's gradient
        if replay is not None:
            replay_loss = replay.loss(working, generator, loss_fn)
            replay_loss.backward()  # adds to the meta-gradient already in .grad
            loss += float(replay_loss.detach())
        optimizer.step()
        losses.append(loss)
        yield clock.tick(detail=", ".join(names[t] for t in batch), loss=loss)
    return MethodResult(working, losses, task_order, details)
