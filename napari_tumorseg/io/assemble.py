"""Assembling a case: volumes read on their source grids, checked to share one, brought to the canonical layout.

Every reader (NIfTI files, 4D files, DICOM series) ends here, so the grid
checks and the canonical layout are the same whatever the input form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from .case import MODALITIES, Case, Geometry
from .labels import LabelConvention
from .naming import SEG_ROLE
from .nifti import read_nifti_label
from .volumes import check_same_grid

PathArg = str | PathLike[str]


@dataclass
class SourceVolume:
    """One volume on its source grid, before the case is assembled.

    Args:
        data: float32 voxels in the file's own axis order.
        geometry: the grid of the file.
        path: the file (or DICOM folder) it came from.
    """

    data: np.ndarray
    geometry: Geometry
    path: Path


@dataclass
class SourceSet:
    """The volumes of one case as read, each on its own grid, before they are checked to share one.

    Args:
        name: the case id.
        volumes: modality key -> volume on its source grid.
        seg: the reference mask file, if any.
        convention: the label convention the names suggest.
        dicom_series: for volumes read from DICOM, modality key -> the files of its series
            (a DICOM SEG export references them).
    """

    name: str
    volumes: dict[str, SourceVolume]
    seg: Path | None = None
    convention: LabelConvention = LabelConvention.BRATS2020
    dicom_series: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    def assemble(self) -> Case:
        """One Case on one grid (every volume must share it; see :func:`assemble_case`)."""
        case = assemble_case(self.name, self.volumes, seg=self.seg, default_convention=self.convention)
        case.dicom_series = dict(self.dicom_series)
        return case


def assemble_case(
    name: str,
    volumes: Mapping[str, SourceVolume],
    *,
    seg: PathArg | None = None,
    label: tuple[np.ndarray, LabelConvention, Geometry, Path] | None = None,
    default_convention: LabelConvention = LabelConvention.BRATS2020,
) -> Case:
    """Check that every volume shares one grid, then bring them to the canonical layout.

    Args:
        name: the case id.
        volumes: modality key -> volume on its source grid.
        seg: a label file to read and check against the same grid.
        label: an already read label (internal labels, convention, grid, file), instead of ``seg``.
        default_convention: the convention when the labels fit both, or there are none.
    """
    ordered = [(key, volumes[key]) for key in MODALITIES if key in volumes]
    reference = ordered[0][1]
    for _, volume in ordered[1:]:
        check_same_grid(reference.geometry, reference.path, volume.geometry, volume.path)
    geometry = reference.geometry
    convention = default_convention
    canonical_label = None
    if seg is not None:
        seg_path = Path(seg)
        labels, convention, seg_geometry = read_nifti_label(seg_path, default=default_convention)
        label = (labels, convention, seg_geometry, seg_path)
    if label is not None:
        labels, convention, seg_geometry, seg_path = label
        check_same_grid(geometry, reference.path, seg_geometry, seg_path)
        canonical_label = np.ascontiguousarray(geometry.to_canonical(labels))
    sources = {key: volume.path for key, volume in ordered}
    if label is not None:
        sources[SEG_ROLE] = label[3]
    # Contiguous copies: downstream code slices along axis 0 and feeds torch.
    images = {key: np.ascontiguousarray(geometry.to_canonical(volume.data)) for key, volume in ordered}
    return Case(
        name=name,
        images=images,
        geometry=geometry,
        label=canonical_label,
        label_convention=convention,
        sources=sources,
    )
