"""Named building blocks of the 2D U-Nets (after MONAI's ``nets/basic_unet.py``).

Every block takes its convolution, normalisation and activation as factories,
so the static U-Net and the Dy-CNN share one definition and differ only in the
``conv`` factory (``nn.Conv2d`` or ``DynamicConv2d``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# (in_channels, out_channels) -> a 3x3, padding-1 convolution without bias.
ConvFactory = Callable[[int, int], nn.Module]
# channels -> a normalisation layer.
NormFactory = Callable[[int], nn.Module]
# () -> an activation layer.
ActFactory = Callable[[], nn.Module]


def static_conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A plain 3x3 convolution; no bias, since the normalisation after it removes the mean."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)


def make_norm(name: str, channels: int, groups: int = 8) -> nn.Module:
    """A normalisation without running statistics: the same in training and inference.

    Args:
        name: "instance" (per sample and channel) or "group".
        channels: feature maps to normalise.
        groups: group norm only; reduced to the largest divisor of ``channels`` not above it.
    """
    if name == "instance":
        # Group norm with one channel per group *is* instance norm (per sample and
        # channel, over H x W, affine per channel, same eps), with the same parameter
        # names; its CPU kernel is ~3x faster and keeps channels-last tensors.
        return nn.GroupNorm(channels, channels, affine=True)
    if name == "group":
        groups = max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels, affine=True)
    raise ValueError(f"unknown norm {name!r}; expected 'instance' or 'group'")


def make_activation(name: str) -> nn.Module:
    """Not in-place: torch.func transforms (MAML) handle out-of-place ops most simply."""
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}; expected 'leaky_relu', 'relu' or 'gelu'")


class ConvNormAct(nn.Sequential):
    """Convolution, normalisation, activation.

    Args:
        in_channels: input feature maps.
        out_channels: output feature maps.
        conv: factory of the convolution.
        norm: factory of the normalisation.
        act: factory of the activation.
    """

    def __init__(
        self, in_channels: int, out_channels: int, conv: ConvFactory, norm: NormFactory, act: ActFactory
    ) -> None:
        super().__init__()
        self.add_module("conv", conv(in_channels, out_channels))
        self.add_module("norm", norm(out_channels))
        self.add_module("act", act())


class TwoConv(nn.Sequential):
    """Two ConvNormAct layers, with optional dropout after them.

    Args:
        in_channels: input feature maps.
        out_channels: feature maps of both layers.
        conv: factory of the convolutions.
        norm: factory of the normalisations.
        act: factory of the activations.
        dropout: dropout probability (0 = no dropout layer).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv: ConvFactory,
        norm: NormFactory,
        act: ActFactory,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.add_module("conv_0", ConvNormAct(in_channels, out_channels, conv, norm, act))
        self.add_module("conv_1", ConvNormAct(out_channels, out_channels, conv, norm, act))
        if dropout > 0:
            self.add_module("dropout", nn.Dropout2d(dropout))


class Down(nn.Sequential):
    """2x max-pooling, then TwoConv.

    Args:
        in_channels: input feature maps.
        out_channels: output feature maps.
        conv: factory of the convolutions.
        norm: factory of the normalisations.
        act: factory of the activations.
    """

    def __init__(
        self, in_channels: int, out_channels: int, conv: ConvFactory, norm: NormFactory, act: ActFactory
    ) -> None:
        super().__init__()
        self.add_module("max_pooling", nn.MaxPool2d(kernel_size=2))
        self.add_module("convs", TwoConv(in_channels, out_channels, conv, norm, act))


class UpCat(nn.Module):
    """2x transposed-convolution up-sampling, concatenation with the skip, TwoConv.

    The up-sampling stays a static convolution in the Dy-CNN too: it only
    resamples, the 3x3 convolutions after it carry the dynamic kernels.

    Args:
        in_channels: feature maps coming from the coarser level.
        skip_channels: feature maps of the skip connection.
        out_channels: output feature maps.
        conv: factory of the convolutions.
        norm: factory of the normalisations.
        act: factory of the activations.
        dropout: dropout probability after the convolutions.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        conv: ConvFactory,
        norm: NormFactory,
        act: ActFactory,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.convs = TwoConv(skip_channels + out_channels, out_channels, conv, norm, act, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([skip, self.upsample(x)], dim=1))
