"""Mirror averaging: the network's softmax averaged over in-plane flips of its input.

The shipped networks were trained with both in-plane flips (left-right and
anterior-posterior, ``training/data.py``), so each flipped slice is one they
know. Each flip gives a slightly different answer where the network is unsure;
averaging the probabilities keeps what all agree on and drops what only one
orientation sees: on the development data it removed most isolated false
components and raised the tumour core (docs/results/mirror-averaging). It
costs one forward pass per flip.

A flip set is named by what it adds to the plain pass; dims are those of a
``(batch, channel, H, W)`` tensor (H anterior-posterior, W left-right in the
canonical layout).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MIRROR_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "lr": ((), (-1,)),
    "ap": ((), (-2,)),
    "all": ((), (-1,), (-2,), (-2, -1)),
}
# "auto": every flip on a GPU, where four passes should cost well under a second (not measured yet); none
# on the CPU, where one pass of a BraTS volume takes 2.5-5 s on 2 cores and the volume must take at most
# 5 s. "all" was the best set on held-out phantoms (seeds 11000-11019), see docs/results/mirror-averaging.
MIRROR_CHOICES = ("auto", *MIRROR_FLIPS)
DEFAULT_MIRROR = "auto"


def resolve_mirror(name: str, device_type: str) -> str:
    """The flip set ``name`` stands for on a device of this type ("cpu", "cuda", "mps")."""
    if name not in MIRROR_CHOICES:
        raise ValueError(f"mirror must be one of {', '.join(MIRROR_CHOICES)}; got {name!r}")
    if name == "auto":
        return "none" if device_type == "cpu" else "all"
    return name


def mirrored_softmax(
    network: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mirror: str, channels_last: bool = False
) -> torch.Tensor:
    """Softmax over classes of ``network(x)``, averaged over the flips of ``mirror``, float32 on x's device."""
    import torch

    total = None
    flips = MIRROR_FLIPS[mirror]
    for dims in flips:
        flipped = torch.flip(x, dims) if dims else x
        if channels_last:
            flipped = flipped.contiguous(memory_format=torch.channels_last)
        probs = torch.softmax(network(flipped).float(), dim=1)
        if dims:
            probs = torch.flip(probs, dims)
        total = probs if total is None else total.add_(probs)
    return total if len(flips) == 1 else total.div_(len(flips))
