"""An imported model's raw output as the internal classes (0 BG, 1 NCR, 2 ED, 3 ET): probabilities and labels.

Two kinds of output (see ``models.sidecar``):

- *classes*: one channel per label value (softmax, or probabilities as
  they are); each channel's value is mapped to the internal class through
  its convention (BraTS 2020's 4 is enhancing tumour);
- *regions*: one sigmoid channel per BraTS region (TC, WT, ET), nested
  here (ET within TC within WT) to give class probabilities, and labels by
  the BraTS bundles' rule: ET where ET > 0.5, else NCR where TC > 0.5, else
  ED where WT > 0.5.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..io.labels import BACKGROUND, ED, ET, NCR, NUM_CLASSES

if TYPE_CHECKING:
    from ..models.sidecar import ModelSpec

# A label value of each convention -> the internal class.
TO_INTERNAL = {"brats2020": {0: BACKGROUND, 1: NCR, 2: ED, 4: ET}, "brats2023": {0: BACKGROUND, 1: NCR, 2: ED, 3: ET}}


def _activated(raw: np.ndarray, activation: str, axis: int = 1) -> np.ndarray:
    raw = raw.astype(np.float32, copy=False)
    if activation == "softmax":
        shifted = np.exp(raw - raw.max(axis=axis, keepdims=True))
        return shifted / shifted.sum(axis=axis, keepdims=True)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.clip(raw, -60, 60)))
    return np.clip(raw, 0.0, 1.0)


def _regions(raw: np.ndarray, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nested (WT, TC, ET) probabilities, ``(B, ...)`` each; a region the model lacks is 0 (or its inner one)."""
    p = _activated(raw, spec.activation)
    zeros = np.zeros_like(p[:, 0])
    by_name = {name: p[:, c] for c, name in enumerate(spec.regions)}
    enhancing = by_name.get("ET", zeros)
    core = np.maximum(by_name.get("TC", zeros), enhancing)
    whole = np.maximum(by_name.get("WT", zeros), core)
    return whole, core, enhancing


def class_probabilities(raw: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """``(B, K, ...)`` raw output -> ``(B, 4, ...)`` float32 internal class probabilities (summing to 1)."""
    out = np.zeros((raw.shape[0], NUM_CLASSES, *raw.shape[2:]), np.float32)
    if spec.output == "regions":
        whole, core, enhancing = _regions(raw, spec)
        out[:, BACKGROUND], out[:, ED], out[:, NCR], out[:, ET] = 1 - whole, whole - core, core - enhancing, enhancing
        return out
    p = _activated(raw, spec.activation)
    mapping = TO_INTERNAL[spec.convention]
    for channel, value in enumerate(spec.labels):
        out[:, mapping[value]] += p[:, channel]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 0.25), where=total > 0)


def labels_from(raw: np.ndarray, probabilities: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The ``(B, ...)`` uint8 internal labels: argmax of the classes, or the BraTS rule on the regions."""
    if spec.output == "classes":
        return np.argmax(probabilities, axis=1).astype(np.uint8)
    whole, core, enhancing = _regions(raw, spec)
    labels = np.zeros(whole.shape, np.uint8)
    labels[whole > 0.5] = ED
    labels[core > 0.5] = NCR
    labels[enhancing > 0.5] = ET
    return labels
