"""The 2D (2.5D) U-Net over axial slices, static or with dynamic convolutions (Dy-CNN).

Input ``(B, C, H, W)`` float32 with ``C = (2 * context + 1) * 4 + 4``: the four
modalities of the slice and of its ``context`` neighbours on each side, then
four constant availability planes (1 where the modality exists, 0 where it
was missing and its image channels were zeroed). ``H`` and ``W`` must be
multiples of ``2**depth``. Output: ``(B, 4, H, W)`` logits over background,
NCR, ED, ET.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .blocks import (
    ActFactory,
    ConvFactory,
    Down,
    NormFactory,
    TwoConv,
    UpCat,
    make_activation,
    make_norm,
    static_conv3x3,
)
from .config import ModelConfig
from .dynconv import DynamicConv2d, get_temperature, set_temperature


class UNet2D(nn.Module):
    """A U-Net with ``depth`` down-samplings and ``base_width * 2**level`` feature maps.

    Args:
        in_channels: input channels (image planes and availability planes).
        num_classes: output classes.
        base_width: feature maps at full resolution.
        depth: number of 2x down-samplings.
        conv: factory of the 3x3 convolutions (static or dynamic).
        norm: factory of the normalisations (instance or group norm).
        act: factory of the activations.
        dropout: dropout after each decoder TwoConv.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_width: int = 16,
        depth: int = 4,
        *,
        conv: ConvFactory = static_conv3x3,
        norm: NormFactory | None = None,
        act: ActFactory | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        norm = norm or partial(make_norm, "instance")
        act = act or partial(make_activation, "leaky_relu")
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = depth
        self.stem = TwoConv(in_channels, widths[0], conv, norm, act)
        self.downs = nn.ModuleList(
            Down(widths[level], widths[level + 1], conv, norm, act) for level in range(depth)
        )
        self.ups = nn.ModuleList(
            UpCat(widths[level + 1], widths[level], widths[level], conv, norm, act, dropout)
            for level in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the problem if ``x`` cannot go through the network."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        multiple = self.size_multiple
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(f"input height and width must be multiples of {multiple}, got {tuple(x.shape[2:])}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            self.check_input(x)
        features = [self.stem(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        y = features.pop()
        for up in self.ups:
            y = up(y, features.pop())
        return self.head(y)


class DyUNet2D(UNet2D):
    """The Dy-CNN: the same U-Net with every 3x3 convolution a :class:`DynamicConv2d`.

    Args:
        in_channels: input channels.
        num_classes: output classes.
        base_width: feature maps at full resolution.
        depth: number of 2x down-samplings.
        num_kernels: K kernels per dynamic convolution.
        attention_reduction: hidden width of each attention is in_channels // this.
        temperature: initial attention temperature of every layer.
        norm: factory of the normalisations.
        act: factory of the activations.
        dropout: dropout after each decoder TwoConv.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_width: int = 16,
        depth: int = 4,
        *,
        num_kernels: int = 4,
        attention_reduction: int = 4,
        temperature: float = 30.0,
        norm: NormFactory | None = None,
        act: ActFactory | None = None,
        dropout: float = 0.0,
    ) -> None:
        conv = partial(
            DynamicConv2d,
            kernel_size=3,
            num_kernels=num_kernels,
            reduction=attention_reduction,
            temperature=temperature,
        )
        super().__init__(in_channels, num_classes, base_width, depth, conv=conv, norm=norm, act=act, dropout=dropout)

    @property
    def temperature(self) -> float:
        """Attention temperature shared by every dynamic convolution; settable."""
        value = get_temperature(self)
        assert value is not None  # a DyUNet2D always has dynamic convolutions
        return value

    @temperature.setter
    def temperature(self, value: float) -> None:
        set_temperature(self, value)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store the model's 4-D weights channels-last, in place; returns the model.

    With channels-last inputs too, oneDNN runs the static 3x3 convolutions
    several times faster on the CPU. Outputs are unchanged (up to float
    rounding); the 5-D kernel banks of dynamic convolutions are left as they are.
    """
    for parameter in model.parameters():
        if parameter.dim() == 4:
            parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
    return model


def model_from_config(config: ModelConfig) -> UNet2D:
    """The network a config describes, freshly initialised (seed torch first for reproducibility)."""
    norm = partial(make_norm, config.norm, groups=config.norm_groups)
    act = partial(make_activation, config.activation)
    common = dict(
        in_channels=config.in_channels,
        num_classes=config.num_classes,
        base_width=config.base_width,
        depth=config.depth,
        norm=norm,
        act=act,
        dropout=config.dropout,
    )
    if config.arch == "unet":
        model: UNet2D = UNet2D(**common)
    else:
        model = DyUNet2D(
            **common,
            num_kernels=config.num_kernels,
            attention_reduction=config.attention_reduction,
            temperature=config.temperature,
        )
    model.config = config
    return model
