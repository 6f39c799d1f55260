"""Where a network runs: the device asked for ("auto": CUDA, then MPS, then the CPU) and its batch size.

Segmentation, adaptation, training and the experiments all choose their device here, so an unknown or
absent device is the same one-line ``ModelError`` everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelError

if TYPE_CHECKING:
    import torch

# Slices per batch by device type when the caller does not say.
DEFAULT_BATCH = {"cpu": 4, "cuda": 32, "mps": 16}


def choose_device(requested: str | None = "auto") -> torch.device:
    """``"auto"``: CUDA, then Apple MPS, then the CPU. Anything else must exist here."""
    import torch

    if requested in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as error:
        raise ModelError(f"unknown device {requested!r} (use auto, cpu, cuda, cuda:N or mps)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {requested!r} requested but CUDA is not available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ModelError(f"device {requested!r} requested but this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError(f"device {requested!r} requested but MPS is not available")
    return device


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError) if t)
    return isinstance(error, oom_types)
