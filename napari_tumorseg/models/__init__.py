"""Segmentation networks: a 2D/2.5D U-Net and its Dy-CNN variant, and their checkpoints.

Importing this package does not import torch (the configs are plain
dataclasses); building or loading a model does.

    model = build_model("dycnn", base_width=16, depth=4, context=1)
    save_checkpoint("model.safetensors", model)
    loaded = load_checkpoint("model.safetensors")   # .model, .config, .preprocessing
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ARCHITECTURES, LABEL_CONVENTION, ModelConfig, PreprocessingConfig

if TYPE_CHECKING:
    from .unet import UNet2D

__all__ = [
    "ARCHITECTURES",
    "LABEL_CONVENTION",
    "ModelConfig",
    "PreprocessingConfig",
    "build_model",
    "model_from_config",
]


def build_model(arch: str = "unet", **hparams: Any) -> UNet2D:
    """A freshly initialised network; ``hparams`` are :class:`ModelConfig` fields.

    The returned module carries its config as ``model.config``.
    Raises ValueError for an unknown architecture or hyper-parameter.
    """
    from .config import _from_dict

    config = _from_dict(ModelConfig, {"arch": arch, **hparams}, "model hyper-parameter")
    return model_from_config(config)


def model_from_config(config: ModelConfig) -> UNet2D:
    """The network a :class:`ModelConfig` describes, freshly initialised."""
    from .unet import model_from_config as _build

    return _build(config)
