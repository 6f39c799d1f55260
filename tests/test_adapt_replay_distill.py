"""Replay with the parent's softmax (``AdaptConfig.replay_distill``): the teachers line up with the views they
belong to, off changes nothing, on it holds the adapted network nearer its parent on the replayed slices."""

from __future__ import annotations

import pytest
import torch
from test_adapt_helpers import drive, tiny_model, toy_corrections, toy_slices

from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.naive import naive_finetune
from napari_tumorseg.adapt.run import make_replay
from napari_tumorseg.adapt.sampling import Replay, SlicePool, teacher_probabilities
from napari_tumorseg.errors import AdaptationError
from napari_tumorseg.models.losses import dice_ce_loss, distillation_loss


def _pools() -> list[SlicePool]:
    """Two source cases of different sizes, so draws group by shape; crops of 16 move the window."""
    return [SlicePool.from_arrays(*toy_slices(4, seed=s, size=size), [f"c{s}:z{i}" for i in range(4)])
            for s, size in ((1, 32), (2, 48))]


def _replay_losses(replay: Replay, model: torch.nn.Module, draws: int = 12) -> list[float]:
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        return [float(replay.loss(model, generator, dice_ce_loss)) for _ in range(draws)]


def test_the_parents_own_teachers_add_nothing_so_every_view_carries_its_own_slices_probabilities():
    """Teachers are the model's softmax: if a mirrored view got the unmirrored slice's, the KL would not be 0."""
    model, pools = tiny_model(), _pools()
    teachers = teacher_probabilities(model, pools)
    assert [tuple(t.shape) for t in teachers] == [(2, 4, 4, 32, 32), (2, 4, 4, 48, 48)]
    assert not torch.allclose(teachers[0][0], teachers[0][1], atol=1e-3)  # a network does not see a mirror alike
    labels_only = Replay(pools, per_step=3)
    taught = Replay(pools, per_step=3, teachers=teachers, distill_weight=5.0)
    assert _replay_losses(taught, model) == pytest.approx(_replay_losses(labels_only, model), abs=1e-5)


def test_a_zero_weight_draws_and_scores_exactly_as_the_labels_only_replay():
    model, pools = tiny_model(), _pools()
    other = teacher_probabilities(tiny_model(seed=1), pools)
    labels_only = Replay(pools, per_step=3, crop=16)
    off = Replay(pools, per_step=3, crop=16, teachers=other, distill_weight=0.0)
    on = Replay(pools, per_step=3, crop=16, teachers=other, distill_weight=1.0)
    assert _replay_losses(off, model) == _replay_losses(labels_only, model)
    assert off.describe() == labels_only.describe() and on.describe()["distill_weight"] == 1.0
    # Another network's softmax as the teacher: the pull is there, and it is the KL term on top of the labels'.
    gaps = [a - b for a, b in zip(_replay_losses(on, model), _replay_losses(labels_only, model), strict=True)]
    assert min(gaps) > 0


def test_grouped_loss_adds_the_weighted_kl_of_the_taught_samples_only():
    from napari_tumorseg.adapt.sampling import grouped_loss

    model = tiny_model()
    inputs, labels = (torch.from_numpy(a) for a in toy_slices(2, seed=4))
    labels = labels.long()
    teacher = torch.full((4, *labels.shape[1:]), 0.25)
    samples = [(inputs[0], labels[0], teacher), (inputs[1], labels[1])]
    with torch.no_grad():
        total = grouped_loss(model, samples, dice_ce_loss, distill_weight=2.0)
        first = model(inputs[:1])
        expected = (dice_ce_loss(first, labels[:1]) + 2.0 * distillation_loss(first, teacher[None])) / 2
        expected = expected + dice_ce_loss(model(inputs[1:]), labels[1:]) / 2
    assert float(total) == pytest.approx(float(expected), rel=1e-5)


def _drift(adapted: torch.nn.Module, parent: torch.nn.Module, pools: list[SlicePool]) -> float:
    """KL(parent || adapted) over every replay slice: how far adapting moved the source domain's function."""
    with torch.no_grad():
        return sum(float(distillation_loss(adapted(p.inputs), parent(p.inputs).softmax(1))) for p in pools)


def test_the_pull_keeps_the_adapted_network_nearer_its_parent_on_the_replayed_slices():
    parent, pools = tiny_model(), _pools()
    corrections = toy_corrections(seed=7)
    drifts = {}
    for weight in (0.0, 5.0):
        config = default_config("naive", steps=8, lr=0.05, crop=16, replay_distill=weight)
        replay = make_replay(config, pools, parent)
        assert bool(replay.teachers) is (weight > 0)
        _, result = drive(naive_finetune(parent, corrections, config, replay=replay))
        drifts[weight] = _drift(result.model, parent, pools)
    assert 0 < drifts[5.0] < 0.8 * drifts[0.0]


def test_the_weight_reaches_the_replay_from_the_command_line_and_a_negative_one_is_refused():
    from napari_tumorseg.cli import build_parser
    from napari_tumorseg.cli.adapt import _config

    model, pools = tiny_model(), _pools()
    for flags, expected in (([], 0.0), (["--replay-distill", "1"], 1.0)):
        config = _config(build_parser().parse_args(["bench-adapt", *flags]))
        assert config.replay_distill == expected
        replay = make_replay(config, pools, model)
        assert replay.distill_weight == expected and len(replay.teachers) == (2 if expected else 0)
    with pytest.raises(AdaptationError, match="replay_distill"):
        default_config("active", replay_distill=-1.0)
