"""What a segmentation reports and returns, and how its class probabilities are kept.

A run reports the slices each batch finished (:class:`SegmentedSlices`, the
``data`` of its progress) and returns a :class:`SegmentationResult` on the
case's canonical grid; one slice on its own is a :class:`SliceSegmentation`.
The built-in Segmenter and an imported model (``external``) give the same.

Memory: the probabilities are kept as uint8 (p * 255, rounded) by default: a
quarter of float32, 36 MB for a 240x240x155 case; ``"float16"`` keeps half
precision, ``"none"`` keeps none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..io.labels import NUM_CLASSES

if TYPE_CHECKING:
    import torch

    from .preprocess import CropBox

PHASE_SEGMENTING = "segmenting"
PROBABILITY_STORAGE = ("uint8", "float16", "none")
BACKGROUND_PROBABILITIES = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)


@dataclass(frozen=True)
class SegmentedSlices:
    """The slices one batch finished (the ``data`` of a segmentation's progress report).

    Args:
        z: canonical z of the slices.
        labels: ``(len(z), Y, X)`` uint8 internal labels of those slices.
    """

    z: np.ndarray
    labels: np.ndarray


@dataclass
class SegmentationResult:
    """Labels and class probabilities on the full canonical grid.

    Args:
        labels: ``(Z, Y, X)`` uint8 internal labels (0 BG, 1 NCR, 2 ED, 3 ET).
        probabilities: ``(4, Z, Y, X)`` uint8 (probability * 255, rounded: sums
            are 1 within 2/255) or float16, or None if not kept. Outside the
            brain's box background has probability 1.
        seconds: wall time of the run (preprocessing included).
        device: where the network ran (the last device, after any fallback).
        batch_size: the batch size in use at the end.
        slices_run: slices that went through the network.
        uncertain_removed: small uncertain tumour components the clean-up left out
            of ``labels`` (see postprocess.py; the probabilities keep them).
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    seconds: float
    device: str
    batch_size: int
    slices_run: int
    uncertain_removed: int = 0

    def class_probabilities(self) -> np.ndarray:
        """``(4, Z, Y, X)`` float32 probabilities (dequantised)."""
        if self.probabilities is None:
            raise ValueError("this result kept no probabilities (probabilities='none')")
        if self.probabilities.dtype == np.uint8:
            return self.probabilities.astype(np.float32) / 255.0
        return self.probabilities.astype(np.float32)

    def entropy(self) -> np.ndarray:
        """``(Z, Y, X)`` float32 predictive entropy, normalised to [0, 1] by log(4): 1 = most unsure."""
        p = np.clip(self.class_probabilities(), 1e-7, 1.0)
        p /= p.sum(axis=0, keepdims=True)
        return (-(p * np.log(p)).sum(axis=0) / np.log(NUM_CLASSES)).astype(np.float32)


@dataclass(frozen=True)
class SliceSegmentation:
    """One axial slice: ``labels`` (Y, X) uint8 and ``probabilities`` (4, Y, X) float32."""

    z: int
    labels: np.ndarray
    probabilities: np.ndarray


def stored_probabilities(probs: np.ndarray, storage: str) -> np.ndarray:
    """Float probabilities as ``storage`` keeps them: "uint8" (p * 255, rounded), else float16."""
    if storage == "uint8":
        return np.rint(probs * 255.0).astype(np.uint8)
    return probs.astype(np.float16)


def argmax_classes(probs: torch.Tensor) -> np.ndarray:
    """``(B, C, H, W)`` -> ``(B, H, W)`` uint8 argmax over C (first wins ties, like torch.argmax).

    A running comparison over the few classes: torch's argmax over a strided
    channel axis is ~20x slower on the CPU.
    """
    import torch

    best = probs[:, 0].clone()
    labels = torch.zeros(best.shape, dtype=torch.uint8)
    for c in range(1, probs.shape[1]):
        better = probs[:, c] > best
        labels[better] = c
        best = torch.maximum(best, probs[:, c])
    return labels.numpy()


class VolumeOutputs:
    """A volume's labels and kept probabilities, filled in batch by batch from the brain's box.

    Args:
        crop: the brain's box the network runs on.
        storage: how the probabilities are kept (one of ``PROBABILITY_STORAGE``).
        keep_tumour_probability: also keep 1 − P(background) as uint8, for the clean-up's
            uncertainty rule (the stored probabilities may be "none").
    """

    def __init__(self, crop: CropBox, storage: str, keep_tumour_probability: bool) -> None:
        self.crop = crop
        self.storage = storage
        self.background = stored_probabilities(BACKGROUND_PROBABILITIES, storage)
        self.labels = np.zeros(crop.full_shape, dtype=np.uint8)
        self._probabilities = None
        if storage != "none":
            self._probabilities = np.empty((NUM_CLASSES, *crop.padded_shape), dtype=self.background.dtype)
            self._probabilities[...] = self.background[:, None, None, None]
        self._tumour = np.zeros(crop.padded_shape, np.uint8) if keep_tumour_probability else None

    def add(self, slices: np.ndarray, probs: torch.Tensor) -> SegmentedSlices:
        """Take a batch's ``(B, 4, H, W)`` probabilities of the box's slices ``slices``; returns what it finished."""
        labels = self.crop.uncrop_slices(argmax_classes(probs))
        z = slices + self.crop.start[0]
        self.labels[z] = labels
        if self._probabilities is not None:
            self._probabilities[:, slices] = stored_probabilities(probs.numpy(), self.storage).transpose(1, 0, 2, 3)
        if self._tumour is not None:
            self._tumour[slices] = 255 - np.rint(probs[:, 0].numpy() * 255.0).astype(np.uint8)
        return SegmentedSlices(z, labels)

    def probabilities(self) -> np.ndarray | None:
        """The kept probabilities on the case's grid (background 1 outside the box), or None."""
        return None if self._probabilities is None else self.crop.uncrop(self._probabilities, fill=self.background)

    def tumour_probability(self) -> np.ndarray | None:
        """1 − P(background) as uint8 on the case's grid, or None when not kept."""
        return None if self._tumour is None else self.crop.uncrop(self._tumour)
