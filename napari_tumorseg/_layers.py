"""Case <-> napari layer-data tuples: the one place that knows how a case looks in napari.

Used by the reader, the sample data and the widgets, so a case opened any of
those ways looks the same. The source geometry travels in each layer's
``metadata["tumorseg"]``; the writer reads it back to restore the exact grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .io.case import DISPLAY_NAMES, Case, Geometry
from .io.labels import CLASS_ABBREVIATIONS, CLASS_COLORS, CLASS_NAMES, LabelConvention

METADATA_KEY = "tumorseg"
REFERENCE_LAYER_SUFFIX = "reference mask"

LayerData = tuple[Any, dict[str, Any], str]


def case_metadata(case: Case) -> dict[str, Any]:
    """What a layer must carry so the writer can put a mask back on the source grid."""
    return {
        METADATA_KEY: {
            "case_name": case.name,
            "geometry": case.geometry.to_dict(),
            "label_convention": case.label_convention.value,
            "sources": {key: str(path) for key, path in case.sources.items()},
        }
    }


def geometry_from_metadata(metadata: dict[str, Any] | None) -> tuple[Geometry, LabelConvention] | None:
    """The geometry and label convention stored by :func:`case_metadata`, if any."""
    info = (metadata or {}).get(METADATA_KEY)
    if not info or "geometry" not in info:
        return None
    return Geometry.from_dict(info["geometry"]), LabelConvention(info.get("label_convention", "brats2020"))


def contrast_limits(volume: np.ndarray) -> tuple[float, float]:
    """Robust display range: percentiles of the brain (non-zero) voxels, not of the black background."""
    brain = volume[volume != 0]
    if brain.size == 0:
        return 0.0, 1.0
    # A strided sample is enough for percentiles and keeps opening a case fast.
    sample = brain[:: max(1, brain.size // 200_000)]
    low, high = np.percentile(sample, [0.5, 99.5])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def label_colormap() -> dict[int | None, tuple[float, float, float, float]]:
    """BraTS class colours; background and unknown values transparent."""
    colors: dict[int | None, tuple[float, float, float, float]] = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0)}
    colors.update(CLASS_COLORS)
    return colors


def label_features() -> dict[str, list]:
    """One row per label value, so napari's status bar names the class under the cursor."""
    values = sorted(CLASS_NAMES)
    return {
        "index": values,
        "class": [CLASS_NAMES[v] for v in values],
        "abbreviation": [CLASS_ABBREVIATIONS[v] for v in values],
    }


def labels_layer_kwargs(case: Case, name: str) -> dict[str, Any]:
    from napari.utils.colormaps import DirectLabelColormap

    return {
        "name": name,
        "scale": case.geometry.spacing,
        "metadata": case_metadata(case),
        "colormap": DirectLabelColormap(color_dict=label_colormap()),
        "features": label_features(),
        "opacity": 0.6,
    }


def case_to_layer_data(case: Case) -> list[LayerData]:
    """Image layers named FLAIR, T1, T1c, T2 (those present) and the reference mask, if any."""
    layers: list[LayerData] = []
    metadata = case_metadata(case)
    for key in case.modalities:
        volume = case.images[key]
        layers.append(
            (
                volume,
                {
                    "name": DISPLAY_NAMES[key],
                    "scale": case.geometry.spacing,
                    "contrast_limits": contrast_limits(volume),
                    "colormap": "gray",
                    # One modality at a time, as a radiologist reads them; the others one click away.
                    "visible": not layers,
                    "metadata": metadata,
                },
                "image",
            )
        )
    if case.label is not None:
        layers.append((case.label, labels_layer_kwargs(case, f"{case.name} {REFERENCE_LAYER_SUFFIX}"), "labels"))
    return layers
