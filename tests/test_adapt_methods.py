"""The adaptation methods: they learn the corrections, leave the given model alone, honour cancel."""

from __future__ import annotations

import threading

import pytest
import torch
from test_adapt_helpers import drive, same_state, state_copy, tiny_model, toy_corrections, toy_slices

from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.continual import dycnn_continual
from napari_tumorseg.adapt.corrections import Corrections
from napari_tumorseg.models.losses import dice_ce_loss
from napari_tumorseg.adapt.maml import meta_tune
from napari_tumorseg.adapt.naive import naive_finetune
from napari_tumorseg.jobs import Cancelled
from napari_tumorseg.adapt.sampling import Replay, SlicePool, correction_pools, grouped_loss
from napari_tumorseg.errors import AdaptationError
from napari_tumorseg.models.dynconv import get_temperature

torch.set_num_threads(1)

RUNNERS = {"naive": naive_finetune, "passive": meta_tune, "active": meta_tune, "dycnn": dycnn_continual}
# Enough steps at a toy-sized learning rate to move a tiny network clearly.
TOY = dict(steps=12, lr=1e-2, inner_lr=1e-2, crop=16)


@torch.no_grad()
def corrections_loss(model: torch.nn.Module, corrections: Corrections) -> float:
    samples = [(p.inputs[i], p.labels[i]) for p in correction_pools(corrections) for i in range(len(p))]
    return float(grouped_loss(model, samples, dice_ce_loss))


@pytest.mark.parametrize("method", ["naive", "passive", "active", "dycnn"])
def test_method_changes_weights_lowers_loss_and_keeps_the_original(method):
    arch = "dycnn" if method == "dycnn" else "unet"
    model = tiny_model(arch)
    original = state_copy(model)
    corrections = toy_corrections()
    config = default_config(method, **TOY)
    reports, result = drive(RUNNERS[method](model, corrections, config))
    assert same_state(original, state_copy(model)), "the given model must never be modified"
    assert not same_state(original, state_copy(result.model))
    assert corrections_loss(result.model, corrections) < corrections_loss(model, corrections) - 0.05
    assert [r.done for r in reports] == list(range(1, len(reports) + 1))
    assert reports[-1].total == len(reports) and reports[-1].eta == 0
    assert len(result.losses) == len(reports)


@pytest.mark.parametrize("first_order", [True, False])
def test_meta_tune_is_deterministic_for_a_seed(first_order):
    corrections = toy_corrections()
    config = default_config("passive", steps=3, crop=16, first_order=first_order, seed=7)
    runs = [drive(meta_tune(tiny_model(), corrections, config))[1] for _ in range(2)]
    assert runs[0].losses == runs[1].losses
    assert runs[0].task_order == runs[1].task_order
    assert same_state(state_copy(runs[0].model), state_copy(runs[1].model))


def test_continual_keeps_the_attention_temperature_and_goes_batch_by_batch():
    model = tiny_model("dycnn")
    model.temperature = 1.7
    cases = toy_corrections(3, seed=1, name="a").cases + toy_corrections(2, seed=2, name="b").cases
    config = default_config("dycnn", steps=3, crop=16)
    reports, result = drive(dycnn_continual(model, Corrections(cases), config))
    assert get_temperature(result.model) == 1.7 and get_temperature(model) == 1.7
    assert result.details["temperature"] == 1.7
    assert len(reports) == 6
    assert [r.detail for r in reports] == ["batch 1/2"] * 3 + ["batch 2/2"] * 3
    assert result.task_order[0].startswith("batch 1: a:") and result.task_order[1].startswith("batch 2: b:")


def test_continual_refuses_a_static_network():
    with pytest.raises(AdaptationError, match="no dynamic convolutions"):
        drive(dycnn_continual(tiny_model("unet"), toy_corrections(), default_config("dycnn")))


@pytest.mark.parametrize("method", ["naive", "active", "dycnn"])
def test_cancel_stops_at_the_next_step_and_leaves_the_model(method):
    arch = "dycnn" if method == "dycnn" else "unet"
    model = tiny_model(arch)
    original = state_copy(model)
    cancel = threading.Event()
    generator = RUNNERS[method](model, toy_corrections(), default_config(method, steps=50, crop=16), cancel=cancel)
    seen = [next(generator), next(generator)]
    cancel.set()
    with pytest.raises(Cancelled):
        next(generator)
    assert [r.done for r in seen] == [1, 2]
    assert same_state(original, state_copy(model))


def test_cancel_flag_may_be_a_callable():
    calls = iter([False, False, True])
    generator = naive_finetune(
        tiny_model(), toy_corrections(), default_config("naive", steps=9), cancel=lambda: next(calls)
    )
    with pytest.raises(Cancelled):
        drive(generator)


class CountingReplay(Replay):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def loss(self, forward, generator, loss_fn):
        self.calls += 1
        return super().loss(forward, generator, loss_fn)


@pytest.mark.parametrize("by_case", [False, True])
def test_replay_by_case_draws_one_case_per_step_so_one_pass(by_case):
    """Two source cases and two earlier cases of other sizes: by case, each draw is one shape, one batch."""
    pools = [SlicePool.from_arrays(*toy_slices(4, seed=s, size=size), [f"c{s}:z{i}" for i in range(4)])
             for s, size in ((1, 32), (2, 48))]
    memory = [SlicePool.from_arrays(*toy_slices(3, seed=s, size=size), [f"m{s}:z{i}" for i in range(3)])
              for s, size in ((3, 64), (4, 80))]
    replay = Replay(pools, per_step=3, memory=memory, memory_per_step=2, by_case=by_case)
    generator = torch.Generator().manual_seed(0)
    shapes_per_draw, sources_seen = [], set()

    def forward(batch):
        shapes_per_draw[-1].append(tuple(batch.shape))
        return torch.zeros(batch.shape[0], 4, *batch.shape[2:], requires_grad=True)

    for _ in range(40):
        shapes_per_draw.append([])
        replay.loss(forward, generator, lambda logits, labels: logits.sum())
        sources_seen.update(batch[-1] for batch in shapes_per_draw[-1])
        assert replay.last_count == 5
    passes = [len(draw) for draw in shapes_per_draw]
    if by_case:
        assert all(n == 2 for n in passes)  # one source case, one earlier case
        assert sources_seen == {32, 48, 64, 80}  # every case is drawn in time
    else:
        assert max(passes) == 4  # slices of both source and both earlier cases: a pass for each


def test_replay_by_case_reaches_the_replay_from_the_command_line():
    from napari_tumorseg.adapt.run import make_replay
    from napari_tumorseg.cli import build_parser
    from napari_tumorseg.cli.adapt import _config

    pools = [SlicePool.from_arrays(*toy_slices(2, seed=1), ["a:z0", "a:z1"])]
    for flags, expected in (([], False), (["--replay-by-case"], True), (["--no-replay-by-case"], False)):
        config = _config(build_parser().parse_args(["bench-adapt", *flags]))
        assert config.replay_by_case is expected
        assert make_replay(config, pools, tiny_model()).by_case is expected


@pytest.mark.parametrize("method", ["naive", "passive", "active", "dycnn"])
def test_decoder_only_keeps_the_encoder_and_learns_the_decoder(method):
    arch = "dycnn" if method == "dycnn" else "unet"
    model = tiny_model(arch)
    result = drive(RUNNERS[method](model, toy_corrections(), default_config(method, layers="decoder", **TOY)))[1]
    before, after = model.state_dict(), result.model.state_dict()
    encoder = [name for name in before if name.startswith(("stem.", "downs."))]
    decoder = [name for name in before if name.startswith(("ups.", "head.")) and before[name].is_floating_point()]
    assert encoder and decoder
    assert all(torch.equal(before[name], after[name]) for name in encoder)
    assert any(not torch.equal(before[name], after[name]) for name in decoder)
    assert corrections_loss(result.model, toy_corrections()) < corrections_loss(model, toy_corrections())


def test_decoder_only_needs_a_u_net_and_reaches_the_config_from_the_command_line():
    from napari_tumorseg.adapt.training import working_copy
    from napari_tumorseg.cli import build_parser
    from napari_tumorseg.cli.adapt import _config

    with pytest.raises(AdaptationError, match="no U-Net encoder"):
        working_copy(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1)), "decoder")
    with pytest.raises(AdaptationError, match="unknown layers"):
        default_config("active", layers="encoder")
    for flags, expected in (([], "all"), (["--layers", "decoder"], "decoder"), (["--layers", "all"], "all")):
        assert _config(build_parser().parse_args(["bench-adapt", *flags])).layers == expected


@pytest.mark.parametrize("method", ["naive", "passive", "dycnn"])
def test_replay_is_mixed_into_every_step(method):
    inputs, labels = toy_slices(3, seed=5)
    replay = CountingReplay([SlicePool.from_arrays(inputs, labels, ["s0", "s1", "s2"])], per_step=2, crop=16)
    arch = "dycnn" if method == "dycnn" else "unet"
    config = default_config(method, steps=3, crop=16)
    _, plain = drive(RUNNERS[method](tiny_model(arch), toy_corrections(), config))
    _, replayed = drive(RUNNERS[method](tiny_model(arch), toy_corrections(), config, replay=replay))
    assert replay.calls == 3
    assert replayed.losses != plain.losses
    assert replay.describe() == {"slices": 3, "per_step": 2, "weight": 0.5}
