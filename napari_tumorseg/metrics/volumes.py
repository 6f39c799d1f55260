"""Tumour volumes in millilitres and counts of connected components, from internal labels.

Volumes use the voxel spacing (mm per axis, any anisotropy): one voxel is
``prod(spacing) / 1000`` ml. Components are 26-connected in 3D (8 in 2D), as
the lesion-wise scores and the segmenter's speck removal count them.

    volumes_ml(labels, case.geometry.spacing)   # {"NCR": .., "ED": .., "ET": .., "WT": .., "TC": ..}
    component_counts(labels)                     # {"WT": 3, "TC": 1, "ET": 0}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..io.labels import CLASS_ABBREVIATIONS, ED, ET, NCR, REGIONS, region_mask

CLASSES = (NCR, ED, ET)
# The classes, then the regions that are not a single class (ET is both).
VOLUME_KEYS = ("NCR", "ED", "ET", "WT", "TC")


def voxel_ml(spacing: float | Sequence[float] | None, ndim: int = 3) -> float:
    """Volume of one voxel in ml (cm³) for a spacing in mm (None: 1 mm)."""
    if spacing is None:
        return 1e-3
    if np.isscalar(spacing):
        return float(spacing) ** ndim / 1000.0
    return float(np.prod([float(s) for s in spacing])) / 1000.0


def volumes_ml(labels: np.ndarray, spacing: float | Sequence[float] | None) -> dict[str, float]:
    """Volume in ml of each tumour class (NCR, ED, ET) and of the regions WT and TC.

    Args:
        labels: internal labels (0 BG, 1 NCR, 2 ED, 3 ET).
        spacing: voxel size in mm per axis.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel(), minlength=ET + 1)
    unit = voxel_ml(spacing, labels.ndim)
    out = {CLASS_ABBREVIATIONS[c]: float(counts[c]) * unit for c in CLASSES}
    for region in ("WT", "TC"):
        out[region] = float(sum(counts[c] for c in REGIONS[region])) * unit
    return out


def component_counts(labels: np.ndarray, regions: Sequence[str] = tuple(REGIONS)) -> dict[str, int]:
    """Number of connected components (26-connected in 3D) of each region of internal labels."""
    from scipy import ndimage

    labels = np.asarray(labels)
    structure = ndimage.generate_binary_structure(labels.ndim, labels.ndim)
    out = {}
    for region in regions:
        mask = region_mask(labels, region)
        out[region] = int(ndimage.label(mask, structure=structure)[1]) if mask.any() else 0
    return out
