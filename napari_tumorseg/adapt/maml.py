"""Passive and active meta-tune: MAML on the corrected slices (paper 000, Algorithm 1).

Tasks. Each corrected slice is one task T_i. A meta batch is
``meta_batch_size`` tasks of one case (cases take turns); each task's
support sample D is its slice and its query sample D'_i a *different*
corrected slice of the same case, chosen by ``ordering.pair_tasks`` (each
a random left-right flip of the whole slice, or a crop when ``crop`` is
set). So the query asks "after one step on this slice, is the case's other
slice right?", which is what makes MAML more than fine-tuning on a batch.

Step. For a meta batch of m tasks:

    theta'_i = theta - alpha * grad_theta L(f_theta; D_i)                     (inner, plain SGD)
    theta   <- theta - beta  * grad_theta (1/m) sum_i L(f_theta'_i; D'_i)    (meta)

The query losses are averaged (as naive fine-tuning averages over its
batch), so the same beta means the same step size for both. Second order
computes the inner step functionally (``torch.func.functional_call`` with a
dict of new tensors) and keeps the graph of the inner gradient
(``create_graph=True``) so the meta-gradient carries the Hessian term. First
order (FOMAML, the default) treats the inner gradient as a constant, so the
query's gradient at theta'_i is its meta-gradient term: theta'_i is copied
into a second copy of the network (:class:`QueryCopy`) and the query runs on
it as a plain module, bit for bit the functional result with less host work
per pass. The model being meta-learned is never edited in place there.
The meta step is applied by an optimiser on the working copy (plain SGD by
default). With replay, the source slices' loss at theta is added to the
meta objective (it is theta, not theta'_i, that becomes the new model, so
that is where forgetting is limited).

Tasks one at a time. ``meta_gradient`` loops over the tasks (support
forward/backward at theta, the inner step, query forward/backward at
theta'_i), though single-slice passes cost more per slice than a batch of
four. Batching the first-order tasks with ``torch.func.vmap`` (per-task
support gradients at the shared theta, then the queries each at its own
theta'_i, the parameters batched) gives the same meta-gradient, and the
U-Net and the Dy-CNN both run under it, but on the CPU it cost more: vmap
turns per-task weights and per-sample weight gradients into grouped
convolutions, and a first-order meta step of two 208x160 tasks with the
base-16 U-Net took 0.70-0.75 CPU-s against the loop's 0.59-0.61 (one
thread), ``bench-adapt --threads 2`` 26.8 CPU-s against 25.9-26.2
(2026-12-01). That path (and its equality test) is in the history at
6132fef, should a GPU make it worth measuring again.

Order. See ``ordering``: active ranks the slices by the current model's
Dice, worst first, re-ranked after every step; passive draws a random
ranking every step; "best-first" is the control with active's pairing on
the reversed ranking.

Compute. A first-order meta step runs 2m slices forward and backward
(support and query of each task), plus the replay slices: with m = 2 the
same as a naive step on a batch of 4 (``details["passes"]`` counts them).
The ordered variants also score the corrected slices once before the first
step (inference only).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Sequence

import torch
from torch import nn
from torch.func import functional_call

from ..jobs import CancelFlag, Clock, Progress
from ..models.losses import dice_ce_loss, per_slice_dice
from ..models.precision import compute_precision, full_precision
from .config import PHASE_ADAPTING, AdaptConfig
from .corrections import Corrections
from .ordering import TaskRanker, slice_dice
from .sampling import LossFn, Replay, Sample, SlicePool, correction_pools, grouped_loss, make_view
from .training import (
    MethodResult,
    make_optimizer,
    model_device,
    predict_labels,
    trainable_parameters,
    training_precision,
    working_copy,
)

MetaTask = tuple[Sequence[Sample], Sequence[Sample]]  # (support, query)


def meta_gradient(
    model: nn.Module,
    params: dict[str, torch.Tensor],
    tasks: Sequence[MetaTask],
    *,
    inner_lr: float,
    first_order: bool,
    loss_fn: LossFn = dice_ce_loss,
    observe: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    query_copy: QueryCopy | None = None,
) -> tuple[dict[str, torch.Tensor], float]:
    """grad_theta (1/m) sum_i L(f_{theta'_i}; query_i) with theta'_i = theta - alpha grad L(f_theta; support_i).

    Args:
        model: the network whose forward is called with ``params`` substituted.
        params: name -> tensor (requires_grad) for the parameters being meta-learned;
            the model's other parameters and buffers are used as they are. First order:
            the model's own parameters (``trainable_parameters``).
        tasks: (support samples, query samples) of each task.
        inner_lr: alpha.
        first_order: drop the second-order term (the inner gradient is a constant).
        loss_fn: (logits, labels) -> scalar.
        observe: called with (task index, support logits, support labels) of every task whose
            support is a single sample: the model's output at theta, for re-ranking.
        query_copy: first order: the copy of ``model`` the queries run on (made here when None;
            ``meta_tune`` keeps one for all its steps).

    Returns:
        The meta-gradient (name -> tensor, zeros where a parameter is unused)
        and the mean query loss.
    """
    if first_order:
        queries = query_copy if query_copy is not None else QueryCopy(model, list(params))
        return _first_order_gradient(model, params, tasks, inner_lr, loss_fn, observe, queries)
    names = list(params)
    leaves = [params[n] for n in names]
    meta_grads = [torch.zeros_like(p) for p in leaves]
    total_loss = 0.0
    count = max(len(tasks), 1)

    def with_params(values: dict[str, torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: functional_call(model, values, (x,))

    for index, (support, query) in enumerate(tasks):
        support_loss = _support_loss(with_params(params), support, loss_fn, observe, index)
        inner_grads = torch.autograd.grad(support_loss, leaves, create_graph=True, allow_unused=True)
        adapted = {name: leaf if grad is None else leaf - inner_lr * grad
                   for name, leaf, grad in zip(names, leaves, inner_grads)}
        query_loss = grouped_loss(with_params(adapted), query, loss_fn) / count
        # One backward per task keeps a single task's graph in memory at a time.
        _accumulate(meta_grads, torch.autograd.grad(query_loss, leaves, allow_unused=True))
        total_loss += float(query_loss.detach())
    return dict(zip(names, meta_grads)), total_loss


class QueryCopy:
    """A second copy of the network that first-order queries run on, theta'_i copied into its parameters.

    First order needs no graph through the inner step, so the query's gradient with respect to
    theta'_i *is* its meta-gradient term. Running it as a plain module (rather than
    ``functional_call``, which re-binds every parameter on each call) keeps the per-pass
    host work small: on a GPU the adaptation's passes are host-bound (docs/results/gpu-checks).

    Args:
        model: the network being meta-learned.
        names: the meta-learned parameters' names.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        self.module = copy.deepcopy(model)
        own = dict(self.module.named_parameters())
        for parameter in own.values():
            parameter.requires_grad_(False)
        self.params = [own[name].requires_grad_(True) for name in names]

    def load(self, leaves: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None], inner_lr: float) -> None:
        """Set the copy to theta' = theta - inner_lr * grad (theta where a parameter got no gradient)."""
        with torch.no_grad():
            for target, leaf, grad in zip(self.params, leaves, grads):
                target.copy_(leaf if grad is None else leaf - inner_lr * grad)
        # Autocast caches its low-precision casts of leaf parameters until its context exits; these
        # leaves were just rewritten, so the casts of the last task's theta' must not be reused.
        torch.clear_autocast_cache()


def _first_order_gradient(
    model: nn.Module, params: dict[str, torch.Tensor], tasks: Sequence[MetaTask], inner_lr: float,
    loss_fn: LossFn, observe: Callable[[int, torch.Tensor, torch.Tensor], None] | None, query_copy: QueryCopy,
) -> tuple[dict[str, torch.Tensor], float]:
    """FOMAML: the support pass on ``model`` itself, the query pass on ``query_copy`` at theta'_i."""
    own = dict(model.named_parameters())
    if any(own.get(name) is not tensor for name, tensor in params.items()):
        raise ValueError("first-order meta-gradients take the model's own parameters")
    names = list(params)
    leaves = [params[n] for n in names]
    meta_grads = [torch.zeros_like(p) for p in leaves]
    total_loss = 0.0
    count = max(len(tasks), 1)
    for index, (support, query) in enumerate(tasks):
        support_loss = _support_loss(model, support, loss_fn, observe, index)
        query_copy.load(leaves, torch.autograd.grad(support_loss, leaves, allow_unused=True), inner_lr)
        query_loss = grouped_loss(query_copy.module, query, loss_fn) / count
        _accumulate(meta_grads, torch.autograd.grad(query_loss, query_copy.params, allow_unused=True))
        total_loss += float(query_loss.detach())
    return dict(zip(names, meta_grads)), total_loss


def _support_loss(forward: Callable[[torch.Tensor], torch.Tensor], support: Sequence[Sample], loss_fn: LossFn,
                  observe: Callable[[int, torch.Tensor, torch.Tensor], None] | None, index: int) -> torch.Tensor:
    """The support loss at theta; a single-sample support's output is shown to ``observe`` (re-ranking)."""
    if observe is None or len(support) != 1:
        return grouped_loss(forward, support, loss_fn)
    inputs, labels = support[0]
    logits = full_precision(forward(inputs[None]))
    observe(index, logits, labels[None])
    return loss_fn(logits, labels[None])


def _accumulate(totals: list[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> None:
    for accumulated, grad in zip(totals, grads):
        if grad is not None:
            accumulated.add_(grad)


def task_dice(model: nn.Module, pools: Sequence[SlicePool]) -> list[float]:
    """The model's mean region Dice on each corrected slice, in ``flat_tasks`` order."""
    scores: list[float] = []
    for pool in pools:
        prediction = predict_labels(model, pool.inputs.cpu().numpy())
        scores.extend(per_slice_dice(prediction, pool.labels.cpu().numpy()).tolist())
    return scores


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
            ``crop``, ``order`` (default: the method's), ``seed``.
        cancel: checked before every meta step; a cancel raises Cancelled.
        replay: source slices mixed into every meta step, or None.
        loss_fn: (logits, labels) -> scalar.

    Yields:
        Progress after every meta step.

    Returns:
        MethodResult with the adapted copy, the losses, the slices in the order they
        were first used as supports, and in ``details`` every meta batch's
        (support, query) pairs, the Dice ranking before and after, the passes.
    """
    clock = Clock(config.steps, PHASE_ADAPTING, cancel)
    clock.check()
    working = working_copy(model, config.layers)
    params = trainable_parameters(working)
    optimizer = make_optimizer(list(params.values()), config)
    generator = torch.Generator().manual_seed(config.seed)
    pools = correction_pools(corrections, model_device(model))
    order = config.task_order
    initial = None if order == "random" else task_dice(working, pools)
    ranker = TaskRanker(pools, order, generator, initial)
    names = [pools[p].names[i] for p, i in ranker.tasks]
    precision = training_precision(config, working)
    query_copy = QueryCopy(working, list(params)) if config.first_order else None
    details: dict = {"first_order": config.first_order, "meta_batch_size": config.meta_batch_size, "order": order,
                     "precision": precision}
    if initial is not None:
        details["task_dice"] = {names[i]: round(initial[i], 4) for i in range(len(names))}

    losses: list[float] = []
    task_order: list[str] = []
    batches: list[list[list[str]]] = []
    passes = 0
    for _ in range(config.steps):
        clock.check()
        pairs = ranker.next_batch(config.meta_batch_size)
        meta_tasks = []
        for support, query in pairs:
            meta_tasks.append(([_view(pools, ranker.tasks[support], generator, config.crop)],
                               [_view(pools, ranker.tasks[query], generator, config.crop)]))
            if names[support] not in task_order:
                task_order.append(names[support])
        batches.append([[names[s], names[q]] for s, q in pairs])

        def observe(index: int, logits: torch.Tensor, labels: torch.Tensor, pairs=pairs) -> None:
            ranker.observe(pairs[index][0], slice_dice(logits, labels)[0])

        with compute_precision(precision, model_device(working)):
            grads, loss = meta_gradient(
                working, params, meta_tasks, inner_lr=config.inner_lr, first_order=config.first_order,
                loss_fn=loss_fn, observe=observe if order != "random" else None, query_copy=query_copy,
            )
            passes += 2 * len(meta_tasks)
            for name, parameter in params.items():
                parameter.grad = grads[name]  # replaces last step's gradient
            if replay is not None:
                replay_loss = replay.loss(working, generator, loss_fn)
                replay_loss.backward()  # adds to the meta-gradient already in .grad
                loss += float(replay_loss.detach())
                passes += replay.last_count
        optimizer.step()
        losses.append(loss)
        yield clock.tick(detail=", ".join(f"{names[s]}->{names[q]}" for s, q in pairs), loss=loss)
    details.update(passes=passes, meta_batches=batches)
    if initial is not None:
        details["final_task_dice"] = {names[i]: round(ranker.dice[i], 4) for i in range(len(names))}
    return MethodResult(working, losses, task_order, details)


def _view(pools: Sequence[SlicePool], task: tuple[int, int], generator: torch.Generator, crop: int | None) -> Sample:
    pool, index = task
    return make_view(pools[pool].inputs[index], pools[pool].labels[index], generator, crop)
