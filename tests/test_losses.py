"""The loss's absent-class weight: what it changes, and that an adaptation run uses the config's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_adapt_helpers import drive, tiny_model, toy_anchor, toy_corrections

from napari_tumorseg.adapt import run as run_module
from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.errors import AdaptationError
from napari_tumorseg.models.losses import DICE_SMOOTH, adaptation_loss, dice_ce_loss

ET = 3


def _batch(with_et: bool) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=generator)
    target = torch.zeros(2, 8, 8, dtype=torch.int64)
    target[:, 2:5, 2:5] = 2
    target[:, 3, 3] = 1
    if with_et:
        target[0, 6, 6] = ET
    return logits, target


def _class_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probs = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(target, 4).permute(0, 3, 1, 2)[:, 1:].float()
    inter = (probs * onehot).sum((0, 2, 3))
    return (2 * inter + DICE_SMOOTH) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + DICE_SMOOTH)


def test_weight_one_is_the_training_recipe_and_every_weight_agrees_when_all_classes_are_present():
    logits, target = _batch(with_et=True)
    recipe = F.cross_entropy(logits, target) + 1 - _class_dice(logits, target).mean()
    assert torch.allclose(dice_ce_loss(logits, target), recipe)
    for weight in (0.0, 0.25):
        assert torch.allclose(dice_ce_loss(logits, target, absent_weight=weight), recipe)


def test_weight_zero_takes_the_dice_mean_over_the_present_classes_only():
    logits, target = _batch(with_et=False)
    dice = _class_dice(logits, target)
    expected = F.cross_entropy(logits, target) + 1 - dice[:2].mean()
    assert torch.allclose(dice_ce_loss(logits, target, absent_weight=0.0), expected)
    half = F.cross_entropy(logits, target) + ((1 - dice) * torch.tensor([1.0, 1.0, 0.5])).sum() / 2.5
    assert torch.allclose(dice_ce_loss(logits, target, absent_weight=0.5), half)


def test_an_absent_class_is_pushed_down_less_the_smaller_its_weight():
    """The reason for the weight: at 1 the absent class's Dice term drives its logits down everywhere."""
    _, target = _batch(with_et=False)
    pushes = []
    for weight in (1.0, 0.25, 0.0):
        logits = _batch(with_et=False)[0].requires_grad_(True)
        dice_ce_loss(logits, target, absent_weight=weight).backward()
        pushes.append(float(logits.grad[:, ET].sum()))  # > 0: gradient descent lowers the ET logits
    assert pushes[0] > pushes[1] > pushes[2] > 0


def test_no_class_present_at_weight_zero_leaves_cross_entropy_alone():
    logits = torch.randn(1, 4, 8, 8)
    target = torch.zeros(1, 8, 8, dtype=torch.int64)
    assert torch.allclose(dice_ce_loss(logits, target, absent_weight=0.0), F.cross_entropy(logits, target))


def test_adaptation_loss_is_the_plain_loss_at_weight_one():
    assert adaptation_loss(1.0) is dice_ce_loss
    logits, target = _batch(with_et=False)
    assert torch.allclose(adaptation_loss(0.3)(logits, target), dice_ce_loss(logits, target, absent_weight=0.3))


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_the_config_refuses_a_weight_outside_zero_to_one(weight):
    with pytest.raises(AdaptationError, match="absent_class_weight"):
        default_config("active", absent_class_weight=weight)


def test_an_adaptation_run_trains_with_the_configs_absent_class_weight(monkeypatch):
    seen = []
    real_runner = run_module.METHOD_RUNNERS["naive"]

    def spy(*args, loss_fn, **kwargs):
        seen.append(loss_fn)
        return (yield from real_runner(*args, loss_fn=loss_fn, **kwargs))

    monkeypatch.setitem(run_module.METHOD_RUNNERS, "naive", spy)
    config = default_config("naive", steps=1, crop=16, replay=0, absent_class_weight=0.3)
    drive(run_module.run_adaptation(tiny_model(), toy_corrections(), config, anchor=toy_anchor()))
    logits, target = _batch(with_et=False)
    assert len(seen) == 1
    assert torch.allclose(seen[0](logits, target), dice_ce_loss(logits, target, absent_weight=0.3))
    assert not torch.allclose(seen[0](logits, target), dice_ce_loss(logits, target))
