"""The arithmetic precision of the network's passes: float32, or bfloat16 where the CPU computes it natively.

Adapting on 5 corrected slices is 160 forward and backward passes of
convolutions, about 25 CPU-seconds in float32 on 2 cores. CPUs with bfloat16
matrix units (Intel's AMX and AVX512-BF16: Sapphire Rapids and later Xeons,
AMD's Zen 4 and later) run those convolutions in bfloat16 through oneDNN at
1.5-1.8x the speed (a 208x160 slice of the shipped U-Net, forward and
backward, 2 threads of such a Xeon: 0.087 s -> 0.059 s; a batch of four
0.249 s -> 0.137 s). Autocast keeps the weights, the optimiser's update and
the loss in float32 and computes only the convolutions and matrix products in
bfloat16: mixed precision, not a bfloat16 model. Where the CPU lacks these
units oneDNN emulates bfloat16 and is slower than float32, so "auto" takes it
only where it is native. On a GPU "auto" stays float32: not yet measured there.

The choice is the user's (``AdaptConfig.precision``, ``--precision``), with
``TUMORSEG_PRECISION`` (fp32, bf16) deciding what "auto" means on a machine:
the test suite pins fp32 with it so its results do not depend on the CPU.
See docs/results/adapt-precision for what it changes in the adapted models.
Training (``TrainConfig.precision``) has no "auto" and stays float32 by
default: docs/results/bf16-training for why.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
PRECISION_ENV = "TUMORSEG_PRECISION"
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16}


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (CPU: AMX or AVX512-BF16)."""
    if torch.device(device).type != "cpu":
        return False
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # a torch without the query: assume not
        return False
    return bool(capabilities.get("amx_bf16") or capabilities.get("avx512_bf16"))


def resolve_precision(requested: str, device: torch.device | str) -> str:
    """"fp32" or "bf16": ``requested`` itself, or for "auto" the environment's choice, else bf16 where native.

    Raises:
        ValueError: ``requested`` (or the environment variable) is not a known precision.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; expected one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    pinned = os.environ.get(PRECISION_ENV, "").strip().lower()
    if pinned:
        if pinned not in PRECISIONS:
            raise ValueError(f"{PRECISION_ENV}={pinned!r} is not one of {', '.join(PRECISIONS)}")
        if pinned != "auto":
            return pinned
    return "bf16" if native_bf16(device) else "fp32"


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` in float32 when a pass under bf16 left them in half width (else as they are):
    the loss and its reductions stay exact, and float64 (the tests' hand derivations) stays float64."""
    return logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits


@contextlib.contextmanager
def compute_precision(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run the enclosed forward passes (and so their backward) in ``precision`` ("fp32" or "bf16").

    Only whole steps go inside (never a ``yield`` of a long job): autocast is
    per-thread state, and a caller between two steps must not inherit it.
    """
    if precision == "fp32":
        yield
        return
    if precision not in _AUTOCAST_DTYPES:
        raise ValueError(f"precision {precision!r} is not resolved to one of fp32, {', '.join(_AUTOCAST_DTYPES)}")
    with torch.autocast(device_type=torch.device(device).type, dtype=_AUTOCAST_DTYPES[precision]):
        yield
