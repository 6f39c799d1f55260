"""Hyper-parameters of the networks and of the preprocessing they expect (no torch here).

A checkpoint stores both dataclasses as JSON, so a saved model can be rebuilt
and fed exactly the input it was trained on without running any code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..io.case import MODALITIES
from ..io.labels import NUM_CLASSES

ARCHITECTURES: tuple[str, ...] = ("unet", "dycnn")
NORMS: tuple[str, ...] = ("instance", "group")
ACTIVATIONS: tuple[str, ...] = ("leaky_relu", "relu", "gelu")
# Masks the networks predict use the internal labels of io/labels.py.
LABEL_CONVENTION = "internal: 0 background, 1 NCR, 2 ED, 3 ET"
# A checkpoint's header may declare any network; building it allocates what it says. These bound
# what a config may ask for (the shipped networks: base width 16, depth 4, 2 M parameters).
MAX_SETTING = {"base_width": 512, "depth": 8, "context": 8, "num_modalities": 16, "num_classes": 16,
               "norm_groups": 512, "num_kernels": 16, "attention_reduction": 512}
MAX_PARAMETERS = 100_000_000


def _from_dict(cls: type, data: dict[str, Any], what: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {what} field(s) {sorted(unknown)}")
    return cls(**data)


@dataclass(frozen=True)
class ModelConfig:
    """Every hyper-parameter that defines a network's architecture.

    Args:
        arch: "unet" (static convolutions) or "dycnn" (dynamic convolutions).
        base_width: feature maps at full resolution; level i has base_width * 2**i.
        depth: number of 2x down-samplings; inputs must be a multiple of 2**depth.
        context: neighbouring axial slices on each side given as extra channels
            (2.5D); the input has (2 * context + 1) * 4 image channels.
        num_modalities: image channels per slice (FLAIR, T1, T1c, T2).
        num_classes: output classes (background, NCR, ED, ET).
        norm: "instance" or "group" (never batch norm: no running statistics,
            so functional calls for meta-learning are well defined).
        norm_groups: groups of group norm (capped at the channel count).
        activation: "leaky_relu", "relu" or "gelu".
        dropout: dropout after each double convolution of the decoder (0 = none).
        num_kernels: Dy-CNN only: K kernels mixed by the attention.
        attention_reduction: Dy-CNN only: hidden width of the attention MLP is
            in_channels // attention_reduction (at least 4).
        temperature: Dy-CNN only: softmax temperature of the attention; a
            checkpoint records the value the model had when it was saved.
    """

    arch: str = "unet"
    base_width: int = 16
    depth: int = 4
    context: int = 0
    num_modalities: int = len(MODALITIES)
    num_classes: int = NUM_CLASSES
    norm: str = "instance"
    norm_groups: int = 8
    activation: str = "leaky_relu"
    dropout: float = 0.0
    num_kernels: int = 4
    attention_reduction: int = 4
    temperature: float = 30.0

    def __post_init__(self) -> None:
        for name, limit in MAX_SETTING.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            if value > limit:
                raise ValueError(f"{name} = {value} is beyond any network this program builds (at most {limit})")
        for name in ("dropout", "temperature"):
            if not isinstance(getattr(self, name), (int, float)) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHITECTURES}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; expected one of {ACTIVATIONS}")
        for name in ("base_width", "depth", "num_modalities", "num_classes", "num_kernels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.approximate_parameters() > MAX_PARAMETERS:
            raise ValueError(f"base_width {self.base_width} at depth {self.depth} makes about "
                             f"{self.approximate_parameters():,} parameters; at most {MAX_PARAMETERS:,}")

    def approximate_parameters(self) -> int:
        """About how many weights the network has (two 3x3 convolutions per level, down and up), before building it."""
        kernels = self.num_kernels if self.arch == "dycnn" else 1
        widths = [self.base_width * 2**level for level in range(self.depth + 1)]
        return 4 * 9 * kernels * sum(width * width for width in widths) + 9 * self.in_channels * self.base_width

    @property
    def image_channels(self) -> int:
        return (2 * self.context + 1) * self.num_modalities

    @property
    def in_channels(self) -> int:
        """Image channels of every slice of the context, then one availability plane per modality."""
        return self.image_channels + self.num_modalities

    @property
    def size_multiple(self) -> int:
        """Height and width of an input must be a multiple of this."""
        return 2**self.depth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data, "model config")


@dataclass(frozen=True)
class PreprocessingConfig:
    """How a volume becomes network input; saved with the weights it was trained with.

    Args:
        normalization: "zscore-brain": each modality minus its mean, over its
            standard deviation, both over its non-zero (brain) voxels; voxels
            outside stay 0.
        crop_margin: voxels kept around the brain's bounding box (union of the
            modalities' non-zero masks) in y and x, and slices in z.
        modalities: channel order of the image planes.
    """

    normalization: str = "zscore-brain"
    crop_margin: int = 4
    modalities: tuple[str, ...] = MODALITIES

    def __post_init__(self) -> None:
        if self.normalization != "zscore-brain":
            raise ValueError(f"unknown normalization {self.normalization!r}; expected 'zscore-brain'")
        if self.crop_margin < 0:
            raise ValueError(f"crop_margin must be >= 0, got {self.crop_margin}")
        object.__setattr__(self, "modalities", tuple(self.modalities))
        if self.modalities != MODALITIES:
            raise ValueError(f"modalities must be {MODALITIES}, got {self.modalities}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["modalities"] = list(self.modalities)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessingConfig:
        return _from_dict(cls, data, "preprocessing config")
