"""Pieces every adaptation method shares: the working copy, the optimiser, prediction, results.

Every method trains a deep copy of the model it is given, so the caller's
model (the active version, maybe being used by the viewer) is never touched:
a cancel or an error simply drops the copy.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import AdaptationError
from ..models.labels import class_map
from ..models.precision import resolve_precision
from .config import AdaptConfig

PREDICT_BATCH = 8


def working_copy(model: nn.Module, layers: str = "all") -> nn.Module:
    """A deep copy in eval mode, on the CPU or the model's device, learning ``layers`` (``AdaptConfig.layers``).

    Eval mode because the networks have no batch norm (instance/group norm
    behave the same in both modes) and dropout during a few-step adaptation
    only adds noise; the function optimised is the one used at inference.
    """
    working = copy.deepcopy(model)
    working.eval()
    # A model handed over from inference may have had gradients switched off; the copy learns everything.
    working.requires_grad_(True)
    if layers == "decoder":
        keep_encoder(working)
    # The Segmenter stores static weights channels-last, which speeds inference but slows these
    # small training steps (and their double backward) on the CPU: train in the default layout.
    for parameter in working.parameters():
        parameter.data = parameter.data.contiguous()
    return working


def keep_encoder(model: nn.Module) -> None:
    """Switch off the gradients of a U-Net's encoder (its ``stem`` and ``downs``): only the decoder learns."""
    parts = [getattr(model, name, None) for name in ("stem", "downs")]
    if any(not isinstance(part, nn.Module) for part in parts):
        raise AdaptationError(f"{type(model).__name__} has no U-Net encoder (stem, downs) to keep; adapt all layers")
    for part in parts:
        part.requires_grad_(False)


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Name -> parameter for every parameter that requires a gradient, in module order."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def make_optimizer(parameters: list[nn.Parameter], config: AdaptConfig) -> torch.optim.Optimizer:
    """Adam, or plain SGD (``theta <- theta - lr * grad``, Algorithm 1's meta step), at ``config.lr``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr)
    return torch.optim.Adam(parameters, lr=config.lr)


def model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def training_precision(config: AdaptConfig, model: nn.Module) -> str:
    """The arithmetic ("fp32" or "bf16") of this run's passes on the model's device (see ``models.precision``)."""
    try:
        return resolve_precision(config.precision, model_device(model))
    except ValueError as error:
        raise AdaptationError(str(error)) from None


def uses_channels_last(model: nn.Module) -> bool:
    """Whether the model's convolution weights are stored channels-last (as the Segmenter leaves static nets)."""
    for parameter in model.parameters():
        if parameter.dim() == 4:
            return parameter.is_contiguous(memory_format=torch.channels_last) and not parameter.is_contiguous()
    return False


def _outputs(model: nn.Module, inputs: np.ndarray, batch_size: int) -> Iterator[torch.Tensor]:
    """The network's raw outputs, batch by batch, in evaluation mode (its mode restored afterwards)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    # Inputs in the weights' layout: oneDNN then runs the convolutions without reordering.
    layout = torch.channels_last if uses_channels_last(model) else torch.contiguous_format
    try:
        for start in range(0, inputs.shape[0], batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])).to(device)
            yield model(batch.contiguous(memory_format=layout))
    finally:
        model.train(was_training)


@torch.inference_mode()
def predict_logits(model: nn.Module, inputs: np.ndarray, batch_size: int = PREDICT_BATCH) -> torch.Tensor:
    """A model's float32 logits (N, K, H, W), on the CPU, computed as :func:`predict_labels` computes its labels."""
    return torch.cat([output.float().cpu() for output in _outputs(model, inputs, batch_size)])


@torch.inference_mode()
def predict_labels(model: nn.Module, inputs: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Arg-max labels of a model on network-ready slices.

    Args:
        model: the network (its train/eval mode is restored afterwards).
        inputs: (N, C, H, W) float32.
        batch_size: slices per forward pass.

    Returns:
        (N, H, W) uint8 internal labels.
    """
    parts = [class_map(output).to(torch.uint8).cpu().numpy() for output in _outputs(model, inputs, batch_size)]
    return np.concatenate(parts) if parts else np.empty((0, *inputs.shape[2:]), np.uint8)


@dataclass
class MethodResult:
    """What a method's generator returns when it finishes.

    Args:
        model: the adapted working copy.
        losses: the training loss of every step.
        task_order: meta-tuning: the slices in the order their tasks were
            first used ("case:zN"); naive/dycnn: the batches in order.
        details: method-specific facts for the report (task Dice, split, temperature).
    """

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    task_order: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


def warm_up_optimizers() -> None:
    """Import what torch would otherwise import when the first optimizer is built (``torch._dynamo``:
    1.2-1.4 s of import work under the GIL). The dock does it when it is built; ``bench-adapt`` before
    it starts timing, and reports the cost apart."""
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
