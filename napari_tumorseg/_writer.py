"""napari writer: a labels layer -> NIfTI mask on the exact grid of the case it belongs to."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .io.case import Geometry


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write ``data`` (internal labels, canonical layout) where napari asks.

    The geometry comes from the layer's metadata (set by the reader, the sample
    data or the widgets). A labels layer the user made from scratch has none;
    it is written on a canonical (S, P, L) grid with the layer's scale as spacing.
    """
    from ._layers import geometry_from_metadata
    from .errors import CaseError
    from .io import write_mask
    from .io.labels import LabelConvention

    labels = np.asarray(data)
    if labels.ndim != 3:
        raise CaseError(path, f"a NIfTI mask needs a 3D labels layer, this one is {labels.ndim}D")
    found = geometry_from_metadata(meta.get("metadata"))
    if found is None:
        geometry = canonical_grid(labels.shape, meta.get("scale") or (1.0, 1.0, 1.0))
        convention = LabelConvention.BRATS2020
    else:
        geometry, convention = found
    if labels.shape != geometry.canonical_shape:
        raise CaseError(
            path,
            f"the labels layer has shape {labels.shape} but its case grid is {geometry.canonical_shape}",
        )
    # napari's save dialog has already asked before replacing a file.
    written = write_mask(labels, geometry, Path(path), convention=convention, overwrite=True)
    return [str(written)]


def canonical_grid(shape: tuple[int, ...], scale: tuple[float, ...]) -> Geometry:
    """A geometry whose source grid *is* the canonical (S, P, L) layout, spacing from ``scale``."""
    from .io.case import Geometry

    sz, sy, sx = (float(abs(s)) for s in scale[-3:])
    # World is RAS+: axis 0 points to S (+z), axis 1 to P (-y), axis 2 to L (-x).
    affine = np.array(
        [[0.0, 0.0, -sx, 0.0], [0.0, -sy, 0.0, 0.0], [sz, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )
    return Geometry(affine, tuple(int(s) for s in shape[-3:]))
