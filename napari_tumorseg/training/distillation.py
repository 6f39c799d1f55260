"""Distillation: a student trained toward a frozen teacher's flip-averaged softmax as well as the truth.

Why: averaging the shipped U-Net's softmax over its in-plane flips
(``inference/mirroring.py``) raised every set it was measured on, the real
glioma's tumour core above all, but it costs one forward pass per flip, four
times what the CPU's 5 s budget allows (``docs/results/mirror-averaging``).
A network trained to give that average in one pass would carry part of the
gain at one pass's cost: knowledge distillation (Hinton et al. 2015, "Distilling
the knowledge in a neural network"), here of a test-time augmentation into the
network it augments. The truth's loss stays beside the teacher's, so the
student does not copy what the teacher gets wrong on the phantoms. Measured
(docs/results/flip-distillation): the teacher added nothing over the same
fine-tuning without it; one pass of the student stays below the teacher's four.

The teacher sees the student's training crops, augmentation included, in
float32 and eval mode; it is never updated.
"""

from __future__ import annotations

import torch
from torch import nn

from ..inference.mirroring import MIRROR_FLIPS, mirrored_softmax
from ..models.losses import distillation_loss

__all__ = ["FlipTeacher", "distillation_loss"]


class FlipTeacher:
    """A frozen network whose softmax, averaged over the flips of ``flips``, is the student's soft target.

    Args:
        model: the teacher network (same inputs as the student).
        flips: a flip set of ``inference.mirroring.MIRROR_FLIPS`` ("none", "lr", "ap", "all").
    """

    def __init__(self, model: nn.Module, flips: str = "all") -> None:
        if flips not in MIRROR_FLIPS:
            raise ValueError(f"flips must be one of {', '.join(MIRROR_FLIPS)}; got {flips!r}")
        self.model = model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.flips = flips

    def to(self, device: torch.device | str) -> FlipTeacher:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, classes, H, W)`` float32 probabilities for a batch of inputs."""
        return mirrored_softmax(self.model, inputs, self.flips)
