"""The U-Net and Dy-CNN: shapes, dynamic convolution, temperature, functional calls."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from napari_tumorseg.models import ModelConfig, build_model
from napari_tumorseg.models.dynconv import (
    DynamicConv2d,
    TemperatureAnnealer,
    get_temperature,
    set_temperature,
)
from napari_tumorseg.models.unet import DyUNet2D, UNet2D

torch.set_num_threads(1)

TINY = dict(base_width=4, depth=2)


def _input(model: UNet2D, batch: int = 2, size: tuple[int, int] = (16, 24), seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.in_channels, *size, generator=generator)


@pytest.mark.parametrize("arch", ["unet", "dycnn"])
@pytest.mark.parametrize("context", [0, 2])
def test_logits_shape_and_input_channels(arch: str, context: int) -> None:
    torch.manual_seed(0)
    model = build_model(arch, context=context, **TINY).eval()
    assert model.in_channels == (2 * context + 1) * 4 + 4 == model.config.in_channels
    with torch.no_grad():
        out = model(_input(model))
    assert out.shape == (2, 4, 16, 24)
    assert torch.isfinite(out).all()


def test_build_model_records_hparams_and_rejects_unknown() -> None:
    model = build_model("dycnn", base_width=8, depth=3, num_kernels=3, norm="group")
    assert model.config == ModelConfig(arch="dycnn", base_width=8, depth=3, num_kernels=3, norm="group")
    assert isinstance(model, DyUNet2D)
    assert model.stem.conv_0.conv.weight.shape == (3, 8, 8, 3, 3)
    assert model.size_multiple == 8
    with pytest.raises(ValueError, match="architecture"):
        build_model("vnet")
    with pytest.raises(ValueError, match="widht"):
        build_model("unet", base_widht=8)


def test_defaults_base16_depth4_and_no_running_statistics() -> None:
    for arch in ("unet", "dycnn"):
        model = build_model(arch)
        assert model.config.base_width == 16 and model.config.depth == 4
        assert model.head.in_channels == 16
        assert len(model.downs) == 4
        # No batch norm anywhere: nothing a functional call would have to thread through.
        assert list(model.buffers()) == []
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_wrong_input_is_a_clear_error() -> None:
    model = build_model("unet", **TINY)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.zeros(1, model.in_channels, 18, 16))


@pytest.mark.parametrize("arch", ["unet", "dycnn"])
def test_samples_of_a_batch_are_independent(arch: str) -> None:
    # Instance norm and per-sample kernels: a slice's labels never depend on its batch mates.
    torch.manual_seed(1)
    model = build_model(arch, **TINY).eval()
    x = _input(model, batch=3)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def _dynconv_reference(layer: DynamicConv2d, x: torch.Tensor) -> torch.Tensor:
    """Per-sample loop: mix the K kernels with the sample's attention, then a plain conv."""
    outputs = []
    for sample in x:
        pooled = sample.mean(dim=(1, 2))
        logits = layer.attention.fc2(torch.relu(layer.attention.fc1(pooled)))
        weights = torch.softmax(logits / layer.temperature, dim=0)
        kernel = sum(weights[k] * layer.weight[k] for k in range(layer.num_kernels))
        bias = None if layer.bias is None else sum(weights[k] * layer.bias[k] for k in range(layer.num_kernels))
        outputs.append(F.conv2d(sample[None], kernel, bias, padding=layer.kernel_size // 2))
    return torch.cat(outputs)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 30.0])
def test_grouped_dynamic_conv_equals_per_sample_loop(bias: bool, temperature: float) -> None:
    torch.manual_seed(2)
    layer = DynamicConv2d(5, 7, 3, num_kernels=4, temperature=temperature, bias=bias)
    x = torch.randn(3, 5, 9, 11)
    torch.testing.assert_close(layer(x), _dynconv_reference(layer, x), rtol=1e-5, atol=1e-5)


def test_dynamic_conv_is_one_grouped_convolution(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = DynamicConv2d(4, 6, 3, num_kernels=4)
    calls: list[int] = []
    real_conv2d = F.conv2d

    def counting_conv2d(*args, **kwargs):
        calls.append(kwargs.get("groups", 1))
        return real_conv2d(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counting_conv2d)
    layer(torch.randn(5, 4, 8, 8))
    assert calls == [5]  # one call, the batch as groups; not K calls


def test_high_temperature_gives_uniform_attention() -> None:
    torch.manual_seed(3)
    layer = DynamicConv2d(6, 6, 3, num_kernels=4)
    with torch.no_grad():
        layer.attention.fc2.weight.mul_(20)  # sharp logits, so T=1 is far from uniform
    x = torch.randn(4, 6, 8, 8)
    layer.temperature = 1e6
    torch.testing.assert_close(layer.attention_weights(x), torch.full((4, 4), 0.25), atol=1e-4, rtol=0)
    layer.temperature = 1.0
    sharp = layer.attention_weights(x)
    torch.testing.assert_close(sharp.sum(dim=1), torch.ones(4))
    assert (sharp.max(dim=1).values - 0.25).abs().min() > 0.05


def test_temperature_is_set_on_the_whole_model() -> None:
    model = build_model("dycnn", **TINY)
    assert model.temperature == 30.0
    model.temperature = 4.0
    layers = [m for m in model.modules() if isinstance(m, DynamicConv2d)]
    assert len(layers) == 2 * (1 + 2 * model.depth) and {m.temperature for m in layers} == {4.0}
    assert get_temperature(build_model("unet", **TINY)) is None
    assert set_temperature(build_model("unet", **TINY), 2.0) == 0
    with pytest.raises(ValueError):
        model.temperature = 0.0


def test_annealer_is_linear_then_holds_and_freezes() -> None:
    model = build_model("dycnn", **TINY)
    annealer = TemperatureAnnealer(model, start=30.0, end=1.0, steps=29)
    assert model.temperature == 30.0
    seen = [annealer.step() for _ in range(31)]
    assert seen[0] == pytest.approx(29.0) and seen[13] == pytest.approx(16.0)
    assert seen[28:] == [1.0, 1.0, 1.0] and model.temperature == 1.0

    annealer = TemperatureAnnealer(model, steps=10)
    annealer.step()
    annealer.freeze()
    assert annealer.frozen and annealer.step() == pytest.approx(27.1) and model.temperature == pytest.approx(27.1)
    annealer.freeze(1.0)
    assert model.temperature == 1.0
    resumed = TemperatureAnnealer(model, steps=99)
    resumed.load_state_dict(annealer.state_dict())
    assert resumed.frozen and model.temperature == 1.0
    resumed.unfreeze()
    assert model.temperature == pytest.approx(27.1)


@pytest.mark.parametrize("arch", ["unet", "dycnn"])
def test_second_order_gradients_flow_through_functional_call(arch: str) -> None:
    """One MAML step: the meta-gradient reaches every parameter through the inner update."""
    torch.manual_seed(4)
    model = build_model(arch, **TINY)
    if arch == "dycnn":
        model.temperature = 1.0  # sharp attention: the kernel mix matters
    params = {name: p for name, p in model.named_parameters()}
    x, target = _input(model, batch=2), torch.randint(0, 4, (2, 16, 24))

    inner_loss = F.cross_entropy(functional_call(model, params, (x,)), target)
    grads = torch.autograd.grad(inner_loss, list(params.values()), create_graph=True)
    adapted = {name: p - 0.1 * g for (name, p), g in zip(params.items(), grads)}
    outer_loss = F.cross_entropy(functional_call(model, adapted, (x,)), target)
    meta_grads = torch.autograd.grad(outer_loss, list(params.values()))

    assert all(torch.isfinite(g).all() for g in meta_grads)
    reached = {name for name, g in zip(params, meta_grads) if g.abs().sum() > 0}
    # A tiny random net may have an attention whose ReLUs are all off for this input,
    # so demand nearly all tensors, and every one of the first layer.
    assert len(reached) >= 0.9 * len(params)
    assert {name for name in params if name.startswith("stem.conv_0")} <= reached
    # The module's own parameters are untouched by the functional call.
    torch.testing.assert_close(functional_call(model, params, (x,)), model(x))


def test_functional_call_with_other_weights_changes_output() -> None:
    torch.manual_seed(5)
    model = build_model("dycnn", **TINY).eval()
    x = _input(model)
    shifted = {name: p.detach() + 0.05 for name, p in model.named_parameters()}
    with torch.no_grad():
        assert not torch.allclose(functional_call(model, shifted, (x,)), model(x))


def test_instance_norm_is_per_sample_and_channel() -> None:
    from napari_tumorseg.models.blocks import make_norm

    torch.manual_seed(6)
    norm = make_norm("instance", 6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 6, 7, 9) * 4 + 2
    expected = F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=1e-5)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    assert sorted(name for name, _ in norm.named_parameters()) == ["bias", "weight"]
    group = make_norm("group", 12, groups=8)  # 8 does not divide 12: the largest divisor below, 6
    assert group.num_groups == 6


def test_channels_last_weights_give_the_same_output() -> None:
    from napari_tumorseg.models.unet import to_channels_last

    torch.manual_seed(7)
    model = build_model("unet", **TINY).eval()
    x = _input(model)
    with torch.no_grad():
        expected = model(x)
        to_channels_last(model)
        assert model.stem.conv_0.conv.weight.is_contiguous(memory_format=torch.channels_last)
        got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
