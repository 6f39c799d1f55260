"""MAML meta-gradients (hand-derived and finite differences), first vs second order, active ordering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_adapt_helpers import drive, tiny_model, toy_slices
from torch import nn
from torch.func import functional_call

from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import CaseCorrections, Corrections
from napari_tumorseg.models.losses import dice_ce_loss
from napari_tumorseg.adapt.maml import active_schedule, meta_gradient, meta_tune, split_good_bad

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
    """F(theta) = sum_i L_q(theta - alpha grad L_s(theta)), computed directly for finite differences."""
    total = 0.0
    for support, query in tasks:
        p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        x, y = support[0]
        inner = torch.autograd.grad(dice_ce_loss(functional_call(model, p, (x[None],)), y[None]), list(p.values()))
        adapted = {k: v.detach() - alpha * g for (k, v), g in zip(p.items(), inner)}
        xq, yq = query[0]
        total += float(dice_ce_loss(functional_call(model, adapted, (xq[None],)), yq[None]))
    return total


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


def test_meta_gradient_leaves_parameters_untouched():
    model = TinyConvNet()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    meta_gradient(model, dict(model.named_parameters()), _conv_tasks(), inner_lr=0.5, first_order=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_split_and_schedule_put_the_least_learned_first():
    dice = [0.6, 0.1, 0.9, 0.3, 0.8]
    bad, good, threshold = split_good_bad(dice)
    assert threshold == 0.6
    assert bad == [1, 3] and good == [0, 4, 2]
    assert active_schedule(bad, good, 2) == [[1, 0], [3, 4], [2]]
    assert split_good_bad(dice, threshold=0.85)[0] == [1, 3, 0, 4]
    assert active_schedule([5, 6, 7], [], 2) == [[5, 6], [7]]


def test_active_meta_tune_trains_low_dice_slices_first():
    # A model that predicts background everywhere scores, per slice: ET-only 0, NCR-only 1/3,
    # ED-only 2/3, empty 1 (regions empty in both count 1).
    inputs, _ = toy_slices(5, seed=1)
    labels = np.zeros((5, 32, 32), np.uint8)
    labels[0, 8:16, 8:16] = 2  # ED    -> 2/3
    labels[1, 8:16, 8:16] = 3  # ET    -> 0
    labels[3, 8:16, 8:16] = 1  # NCR   -> 1/3
    corrections = Corrections.of(CaseCorrections("c", inputs, labels, (0, 1, 2, 3, 4)))
    model = tiny_model(background=True)
    config = default_config("active", steps=3, crop=16)
    _, result = drive(meta_tune(model, corrections, config))
    assert result.details["bad_tasks"] == ["c:z1", "c:z3"]
    assert result.details["good_tasks"][0] == "c:z0"
    assert result.task_order == ["c:z1", "c:z0", "c:z3", "c:z2", "c:z4"]
