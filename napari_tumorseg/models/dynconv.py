"""Dynamic convolution (Chen et al., CVPR 2020), the layer of the Dy-CNN (paper 004).

K static kernels are mixed, per sample, by an attention computed from the
layer's input: global average pooling -> FC -> ReLU -> FC -> softmax(z / T).
The aggregated kernel of each sample is applied as ONE grouped convolution
over the whole batch: the batch is folded into the channel axis and each
sample is a group, so the cost is that of a static convolution plus a tiny
kernel mix, not K convolutions.

The temperature T starts high (about 30: near-uniform attention, so all K
kernels learn) and is annealed to 1 early in training (Chen et al. sec. 3.3);
:class:`TemperatureAnnealer` does that for a whole model.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class KernelAttention(nn.Module):
    """Per-sample weights over K kernels: GAP -> FC -> ReLU -> FC -> softmax(z / T).

    Args:
        in_channels: feature maps of the layer input.
        num_kernels: K.
        hidden: width of the hidden FC layer.
    """

    def __init__(self, in_channels: int, num_kernels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, num_kernels)

    def forward(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        logits = self.fc2(F.relu(self.fc1(pooled)))
        return torch.softmax(logits / temperature, dim=1)


class DynamicConv2d(nn.Module):
    """A convolution whose kernel is an input-dependent mix of K kernels.

    Args:
        in_channels: input feature maps.
        out_channels: output feature maps.
        kernel_size: square kernel size (odd).
        num_kernels: K, the number of kernels mixed.
        reduction: hidden width of the attention is in_channels // reduction (at least 4).
        temperature: softmax temperature of the attention (a plain attribute,
            changed with :func:`set_temperature` or a :class:`TemperatureAnnealer`).
        bias: add a (mixed) bias; off by default because a normalisation follows.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        num_kernels: int = 4,
        reduction: int = 4,
        temperature: float = 30.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.num_kernels = num_kernels
        self.temperature = float(temperature)
        self.weight = nn.Parameter(torch.empty(num_kernels, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(num_kernels, out_channels)) if bias else None
        self.attention = KernelAttention(in_channels, num_kernels, max(in_channels // reduction, 4))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Each kernel initialised as nn.Conv2d initialises its single kernel.
        fan_in = self.in_channels * self.kernel_size**2
        for k in range(self.num_kernels):
            nn.init.kaiming_uniform_(self.weight[k], a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, K) mixing weights for input ``x``; rows sum to 1."""
        return self.attention(x, self.temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        attention = self.attention(x, self.temperature)  # (B, K)
        # (B, K) @ (K, O*I*k*k) -> one kernel per sample, stacked as B groups.
        kernels = (attention @ self.weight.reshape(self.num_kernels, -1)).reshape(
            batch * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size
        )
        bias = None if self.bias is None else (attention @ self.bias).reshape(-1)
        out = F.conv2d(
            x.reshape(1, batch * channels, height, width),
            kernels,
            bias,
            padding=self.kernel_size // 2,
            groups=batch,
        )
        return out.reshape(batch, self.out_channels, out.shape[-2], out.shape[-1])

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"num_kernels={self.num_kernels}, temperature={self.temperature:g}"
        )


def dynamic_convs(model: nn.Module) -> list[DynamicConv2d]:
    return [m for m in model.modules() if isinstance(m, DynamicConv2d)]


def set_temperature(model: nn.Module, value: float) -> int:
    """Set the attention temperature of every dynamic convolution; returns how many were set."""
    if value <= 0:
        raise ValueError(f"temperature must be > 0, got {value}")
    layers = dynamic_convs(model)
    for layer in layers:
        layer.temperature = float(value)
    return len(layers)


def get_temperature(model: nn.Module) -> float | None:
    """The temperature of the model's dynamic convolutions (None for a static network)."""
    layers = dynamic_convs(model)
    if not layers:
        return None
    values = {layer.temperature for layer in layers}
    if len(values) > 1:
        raise ValueError(f"dynamic convolutions disagree on the temperature: {sorted(values)}")
    return values.pop()


class TemperatureAnnealer:
    """Linear temperature schedule for a whole model: ``start`` -> ``end`` over ``steps`` steps.

    Call :meth:`step` once per optimiser step. After ``steps`` steps the
    temperature stays at ``end``. :meth:`freeze` pins the temperature (e.g.
    for continual updates after training) until :meth:`unfreeze`.

    Args:
        model: a network with dynamic convolutions (a static one is left untouched).
        start: temperature at step 0 (Chen et al.: 30).
        end: temperature from step ``steps`` on (1).
        steps: length of the annealing.
        current_step: where to resume (for restarted training).
    """

    def __init__(
        self, model: nn.Module, start: float = 30.0, end: float = 1.0, steps: int = 1000, current_step: int = 0
    ) -> None:
        if start <= 0 or end <= 0:
            raise ValueError(f"temperatures must be > 0, got start={start}, end={end}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.model = model
        self.start = float(start)
        self.end = float(end)
        self.steps = int(steps)
        self.current_step = int(current_step)
        self.frozen_value: float | None = None
        set_temperature(model, self.value_at(self.current_step))

    def value_at(self, step: int) -> float:
        if self.steps == 0 or step >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * max(step, 0) / self.steps

    @property
    def temperature(self) -> float:
        return self.frozen_value if self.frozen_value is not None else self.value_at(self.current_step)

    @property
    def frozen(self) -> bool:
        return self.frozen_value is not None

    def step(self) -> float:
        """Advance one step (unless frozen) and apply; returns the temperature now in use."""
        if not self.frozen:
            self.current_step += 1
        set_temperature(self.model, self.temperature)
        return self.temperature

    def freeze(self, value: float | None = None) -> None:
        """Pin the temperature at ``value`` (default: the current one)."""
        self.frozen_value = float(self.temperature if value is None else value)
        set_temperature(self.model, self.frozen_value)

    def unfreeze(self) -> None:
        self.frozen_value = None
        set_temperature(self.model, self.temperature)

    def state_dict(self) -> dict[str, float | int | None]:
        return {
            "start": self.start,
            "end": self.end,
            "steps": self.steps,
            "current_step": self.current_step,
            "frozen_value": self.frozen_value,
        }

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        self.start = float(state["start"])
        self.end = float(state["end"])
        self.steps = int(state["steps"])
        self.current_step = int(state["current_step"])
        frozen = state.get("frozen_value")
        self.frozen_value = None if frozen is None else float(frozen)
        set_temperature(self.model, self.temperature)
