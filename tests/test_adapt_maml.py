"""MAML meta-gradients (hand-derived and finite differences), first vs second order, active ordering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_adapt_helpers import drive, tiny_model, toy_corrections, toy_slices
from torch import nn
from torch.func import functional_call

from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import CaseCorrections, Corrections
from napari_tumorseg.models.losses import dice_ce_loss
from napari_tumorseg.models.precision import full_precision
from napari_tumorseg.adapt.maml import meta_gradient, meta_tune
from napari_tumorseg.adapt.naive import naive_finetune
from napari_tumorseg.adapt.ordering import TaskRanker, pair_tasks
from napari_tumorseg.adapt.sampling import Replay, SlicePool

torch.set_num_threads(1)


class Scale(nn.Module):
    """f(x) = w * x with one scalar parameter: MAML's meta-gradient by hand."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x


def squared(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((out - target) ** 2).mean()


def _scalar_sample(x: float, y: float):
    return torch.tensor([x], dtype=torch.float64), torch.tensor([y], dtype=torch.float64)


def _scalar_task(a: float, b: float, c: float, d: float):
    return ([_scalar_sample(a, b)], [_scalar_sample(c, d)])


def _linear_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out * target.unsqueeze(1).double()).mean()


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_hand_derivation(first_order):
    # L_s(w) = (w a - b)^2, L_q(w) = (w c - d)^2, w' = w - alpha * 2a(wa - b)
    # second order: dF/dw = 2c(w'c - d)(1 - 2 alpha a^2); first order drops the last factor.
    w, alpha = 0.7, 0.1
    a, b, c, d = 1.5, 2.0, -0.5, 1.0
    model = Scale(w)
    params = dict(model.named_parameters())
    grads, loss = meta_gradient(
        model, params, [_scalar_task(a, b, c, d)], inner_lr=alpha, first_order=first_order, loss_fn=squared
    )
    w_adapted = w - alpha * 2 * a * (w * a - b)
    expected = 2 * c * (w_adapted * c - d) * (1 if first_order else 1 - 2 * alpha * a * a)
    assert grads["w"].item() == pytest.approx(expected, rel=1e-12)
    assert loss == pytest.approx((w_adapted * c - d) ** 2, rel=1e-12)


class TinyConvNet(nn.Module):
    """conv -> tanh -> conv in float64: smooth, so finite differences are exact to ~1e-8."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1).double()
        self.conv2 = nn.Conv2d(3, 4, 1).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.tanh(self.conv1(x)))


def _conv_tasks():
    g = torch.Generator().manual_seed(5)

    def sample():
        return torch.randn(2, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 4, (6, 6), generator=g)

    return [([sample()], [sample()]) for _ in range(2)]


def _meta_objective(model, params, tasks, alpha):
    """F(theta) = mean_i L_q(theta - alpha grad L_s(theta)), computed directly for finite differences."""
    total = 0.0
    for support, query in tasks:
        p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        x, y = support[0]
        inner = torch.autograd.grad(dice_ce_loss(functional_call(model, p, (x[None],)), y[None]), list(p.values()))
        adapted = {k: v.detach() - alpha * g for (k, v), g in zip(p.items(), inner)}
        xq, yq = query[0]
        total += float(dice_ce_loss(functional_call(model, adapted, (xq[None],)), yq[None]))
    return total / len(tasks)


def test_second_order_meta_gradient_matches_finite_differences_and_first_order_differs():
    model, tasks, alpha = TinyConvNet(), _conv_tasks(), 0.5
    params = dict(model.named_parameters())
    second, _ = meta_gradient(model, params, tasks, inner_lr=alpha, first_order=False)
    first, _ = meta_gradient(model, params, tasks, inner_lr=alpha, first_order=True)
    eps = 1e-6
    for name in ("conv1.weight", "conv2.bias"):
        flat = params[name].detach().reshape(-1)
        for index in (0, flat.numel() - 1):
            shifted = []
            for sign in (1, -1):
                trial = {k: v.detach().clone() for k, v in params.items()}
                trial[name].view(-1)[index] += sign * eps
                shifted.append(_meta_objective(model, trial, tasks, alpha))
            numeric = (shifted[0] - shifted[1]) / (2 * eps)
            assert second[name].reshape(-1)[index].item() == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    # The Hessian term matters for a nonlinear network with this step size.
    difference = sum(float((second[k] - first[k]).norm()) for k in second)
    scale = sum(float(second[k].norm()) for k in second)
    assert difference > 1e-3 * scale


def test_first_and_second_order_agree_when_the_loss_is_linear_in_the_parameters():
    # A linear network and a loss linear in its output: the Hessian is zero, so FOMAML is exact.
    torch.manual_seed(0)
    model = nn.Conv2d(2, 4, 1).double()
    params = dict(model.named_parameters())
    tasks = _conv_tasks()
    second, _ = meta_gradient(model, params, tasks, inner_lr=0.3, first_order=False, loss_fn=_linear_loss)
    first, _ = meta_gradient(model, params, tasks, inner_lr=0.3, first_order=True, loss_fn=_linear_loss)
    for name in second:
        torch.testing.assert_close(second[name], first[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_leaves_parameters_untouched(first_order):
    model = TinyConvNet()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    meta_gradient(model, dict(model.named_parameters()), _conv_tasks(), inner_lr=0.5, first_order=first_order)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _first_order_by_functional_call(model, tasks, alpha):
    """FOMAML written out with ``functional_call`` at theta'_i: the reference for the query copy."""
    params = dict(model.named_parameters())
    names, leaves = list(params), list(params.values())
    totals = [torch.zeros_like(p) for p in leaves]
    for support, query in tasks:
        (x, y), (xq, yq) = support[0], query[0]
        inner = torch.autograd.grad(dice_ce_loss(full_precision(model(x[None])), y[None]), leaves)
        adapted = {n: leaf - alpha * g for n, leaf, g in zip(names, leaves, inner)}
        outer = dice_ce_loss(full_precision(functional_call(model, adapted, (xq[None],))), yq[None]) / len(tasks)
        for total, g in zip(totals, torch.autograd.grad(outer, leaves)):
            total.add_(g)
    return dict(zip(names, totals))


def _unet_tasks(count: int = 3):
    inputs, labels = toy_slices(2 * count, 4)
    x, y = torch.from_numpy(inputs), torch.from_numpy(labels).long()
    return [([(x[2 * i], y[2 * i])], [(x[2 * i + 1], y[2 * i + 1])]) for i in range(count)]


@pytest.mark.parametrize("autocast", [False, True])
def test_first_order_queries_on_a_copy_equal_functional_call_at_theta_prime(autocast):
    """Bit for bit, in float32 and in bfloat16 autocast (whose cache of leaf casts must not serve the
    previous task's theta' to the next query)."""
    model, tasks = tiny_model(), _unet_tasks()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        expected = _first_order_by_functional_call(model, tasks, 0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        got, _ = meta_gradient(model, dict(model.named_parameters()), tasks, inner_lr=0.05, first_order=True)
    for name, value in expected.items():
        assert torch.equal(got[name], value), name


def test_first_order_meta_gradient_refuses_parameters_other_than_the_models():
    model = TinyConvNet()
    others = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    with pytest.raises(ValueError, match="own parameters"):
        meta_gradient(model, others, _conv_tasks(), inner_lr=0.5, first_order=True)


def test_query_losses_are_averaged_over_the_tasks():
    model, tasks = TinyConvNet(), _conv_tasks()
    params = dict(model.named_parameters())
    one, loss_one = meta_gradient(model, params, tasks[:1], inner_lr=0.5, first_order=True)
    twice, loss_twice = meta_gradient(model, params, [tasks[0], tasks[0]], inner_lr=0.5, first_order=True)
    assert loss_twice == pytest.approx(loss_one)
    for name in one:
        torch.testing.assert_close(twice[name], one[name])


def test_pairs_take_supports_from_both_halves_and_queries_from_the_other_half():
    assert pair_tasks([7, 5, 9, 8], 2) == [(7, 9), (9, 7)]
    assert pair_tasks([7, 5, 9, 8], 4) == [(7, 9), (9, 7), (5, 8), (8, 5)]
    assert pair_tasks([7, 5, 9], 2) == [(7, 9), (9, 7)]
    assert pair_tasks([7, 9], 4) == [(7, 9), (9, 7), (7, 9), (9, 7)]  # fewer slices than tasks: again
    assert pair_tasks([4], 2) == [(4, 4), (4, 4)]  # one slice: support and query are two views of it
    for ranked in ([1, 2], [1, 2, 3], [1, 2, 3, 4, 5, 6]):
        assert all(s != q for s, q in pair_tasks(ranked, 4))


def test_worst_first_is_reranked_by_what_the_model_scores_and_best_first_mirrors_it():
    pools = [SlicePool.from_arrays(*toy_slices(4, seed=1), ["a", "b", "c", "d"])]
    generator = torch.Generator().manual_seed(0)
    worst = TaskRanker(pools, "worst-first", generator, dice=[0.9, 0.1, 0.5, 0.7])
    assert worst.next_batch(2) == [(1, 3), (3, 1)]
    worst.observe(1, 0.95)  # the worst slice learned: it leaves the front of the queue
    assert worst.next_batch(2) == [(2, 0), (0, 2)]
    best = TaskRanker(pools, "best-first", generator, dice=[0.9, 0.1, 0.5, 0.7])
    assert best.next_batch(2) == [(0, 2), (2, 0)]
    with pytest.raises(ValueError):
        TaskRanker(pools, "worst-first", generator)


def test_a_meta_batch_holds_one_case_and_support_and_query_are_different_slices():
    first = toy_slices(3, seed=1)
    second = toy_slices(2, seed=2)
    corrections = Corrections((CaseCorrections("a", *first, (1, 2, 3)), CaseCorrections("b", *second, (4, 5))))
    config = default_config("active", steps=4, crop=16)
    _, result = drive(meta_tune(tiny_model(), corrections, config))
    batches = result.details["meta_batches"]
    assert len(batches) == 4
    for batch in batches:
        cases = {name.split(":")[0] for pair in batch for name in pair}
        assert len(cases) == 1
        assert all(support != query for support, query in batch)
    assert [batch[0][0].split(":")[0] for batch in batches] == ["a", "b", "a", "b"]  # cases take turns


def test_active_meta_tune_starts_with_the_least_learned_slice_and_control_with_the_best():
    # A model that predicts background everywhere scores, per slice: ET-only 0, NCR-only 1/3,
    # ED-only 2/3, empty 1 (regions empty in both count 1).
    inputs, _ = toy_slices(4, seed=1)
    labels = np.zeros((4, 32, 32), np.uint8)
    labels[0, 8:16, 8:16] = 2  # ED    -> 2/3
    labels[1, 8:16, 8:16] = 3  # ET    -> 0
    labels[3, 8:16, 8:16] = 1  # NCR   -> 1/3
    corrections = Corrections.of(CaseCorrections("c", inputs, labels, (0, 1, 2, 3)))
    _, active = drive(meta_tune(tiny_model(background=True), corrections, default_config("active", steps=1, crop=16)))
    assert active.details["order"] == "worst-first"
    assert active.details["meta_batches"][0] == [["c:z1", "c:z0"], ["c:z0", "c:z1"]]
    control = default_config("active", steps=1, crop=16, order="best-first")
    _, best = drive(meta_tune(tiny_model(background=True), corrections, control))
    assert best.details["meta_batches"][0] == [["c:z2", "c:z3"], ["c:z3", "c:z2"]]
    assert set(active.details["final_task_dice"]) == {"c:z0", "c:z1", "c:z2", "c:z3"}


@pytest.mark.parametrize("slices", [1, 2, 5])
def test_meta_tune_and_naive_do_the_same_passes_with_their_defaults(slices):
    replay = Replay([SlicePool.from_arrays(*toy_slices(3, seed=5), ["s0", "s1", "s2"])], per_step=4)
    corrections = toy_corrections(slices)
    _, naive = drive(naive_finetune(tiny_model(), corrections, default_config("naive", steps=3), replay=replay))
    _, active = drive(meta_tune(tiny_model(), corrections, default_config("active", steps=3), replay=replay))
    assert naive.details["passes"] == active.details["passes"] == 3 * (4 + 3)
