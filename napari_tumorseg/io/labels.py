"""Label conventions of BraTS and the tumour regions built from them.

Inside the project a mask always uses the *internal* labels, which are
contiguous so a network can predict them as classes:

    0 background, 1 necrosis / non-enhancing core (NCR), 2 oedema (ED),
    3 enhancing tumour (ET)

That is the BraTS 2023 convention. BraTS 2020 writes enhancing tumour as 4;
files are converted on read and written back in the convention they came in.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

BACKGROUND, NCR, ED, ET = 0, 1, 2, 3
NUM_CLASSES = 4

CLASS_NAMES: dict[int, str] = {
    BACKGROUND: "background",
    NCR: "necrosis / non-enhancing core",
    ED: "oedema",
    ET: "enhancing tumour",
}
CLASS_ABBREVIATIONS: dict[int, str] = {BACKGROUND: "BG", NCR: "NCR", ED: "ED", ET: "ET"}

# RGBA in 0..1; the colours ITK-SNAP and most BraTS figures use.
CLASS_COLORS: dict[int, tuple[float, float, float, float]] = {
    NCR: (1.0, 0.15, 0.15, 1.0),
    ED: (0.2, 0.85, 0.25, 1.0),
    ET: (1.0, 0.9, 0.1, 1.0),
}

# Evaluation regions, as in every BraTS challenge.
REGIONS: dict[str, tuple[int, ...]] = {
    "WT": (NCR, ED, ET),  # whole tumour
    "TC": (NCR, ET),  # tumour core
    "ET": (ET,),  # enhancing tumour
}
REGION_TITLES = {"WT": "whole tumour", "TC": "tumour core", "ET": "enhancing tumour"}  # for sentences


class LabelConvention(str, Enum):
    """How a label file on disk numbers the tumour classes."""

    BRATS2020 = "brats2020"  # 0, 1 NCR/NET, 2 ED, 4 ET
    BRATS2023 = "brats2023"  # 0, 1 NCR, 2 ED, 3 ET

    @property
    def allowed_values(self) -> frozenset[int]:
        return _ALLOWED[self]


_ALLOWED = {
    LabelConvention.BRATS2020: frozenset({0, 1, 2, 4}),
    LabelConvention.BRATS2023: frozenset({0, 1, 2, 3}),
}


class LabelValueError(ValueError):
    """Label values that fit no known convention (the reader adds the file name)."""


def detect_convention(
    values: np.ndarray | set[int], default: LabelConvention = LabelConvention.BRATS2020
) -> LabelConvention:
    """Which convention a label volume uses, judged from the values present.

    A 4 means BraTS 2020, a 3 means BraTS 2023; a mask with only 0/1/2 fits
    both, and gets ``default``. Raises LabelValueError for values outside both.
    """
    present = set(np.unique(values).tolist()) if isinstance(values, np.ndarray) else set(values)
    unknown = present - {0, 1, 2, 3, 4}
    if unknown:
        raise LabelValueError(f"label values {sorted(unknown)} are not BraTS labels (0, 1, 2, 3 or 4)")
    if 3 in present and 4 in present:
        raise LabelValueError("label values 3 and 4 together mix the BraTS 2023 and 2020 conventions")
    if 4 in present:
        return LabelConvention.BRATS2020
    if 3 in present:
        return LabelConvention.BRATS2023
    return default


def to_internal(labels: np.ndarray, convention: LabelConvention) -> np.ndarray:
    """Labels on disk -> internal labels (uint8). Raises LabelValueError on foreign values."""
    labels = np.asarray(labels)
    present = set(np.unique(labels).tolist())
    foreign = present - convention.allowed_values
    if foreign:
        raise LabelValueError(
            f"label values {sorted(foreign)} are outside the {convention.value} convention "
            f"{sorted(convention.allowed_values)}"
        )
    out = labels.astype(np.uint8, copy=True)
    if convention is LabelConvention.BRATS2020:
        out[labels == 4] = ET
    return out


def from_internal(labels: np.ndarray, convention: LabelConvention) -> np.ndarray:
    """Internal labels -> the numbering of ``convention`` (uint8)."""
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) > ET:
        raise LabelValueError(f"internal labels must be 0..{ET}, got {int(labels.max())}")
    out = labels.astype(np.uint8, copy=True)
    if convention is LabelConvention.BRATS2020:
        out[labels == ET] = 4
    return out


def region_mask(labels: np.ndarray, region: str) -> np.ndarray:
    """Boolean mask of a region ("WT", "TC" or "ET") from internal labels."""
    return np.isin(labels, REGIONS[region])
