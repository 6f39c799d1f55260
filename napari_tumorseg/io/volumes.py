"""Checks and repairs shared by every reader: 3D-ness, finite voxels, labels, grids.

Each function takes the file the array came from so that its error names it.
"""

from __future__ import annotations

import warnings
from os import PathLike

import numpy as np

from ..errors import CaseError, CaseWarning
from .case import Geometry
from .labels import LabelConvention, LabelValueError, detect_convention, to_internal

# Two files share a grid when their shapes are equal and every affine entry
# differs by at most this much. For the translation column that is mm; for the
# 3x3 part it is mm per voxel, so across 256 voxels the corners stay within
# ~0.26 mm, well under a voxel. NIfTI stores affines as float32 (~1e-5 mm at
# 200 mm), and DICOM positions are decimal strings, so exact equality would
# reject files that were written from one grid.
GRID_TOLERANCE_MM = 1e-3
# The networks see axial slices; a volume needs two axes this long to have slices worth segmenting.
MIN_SLICE_SIDE = 8


def squeeze_to_3d(data: np.ndarray, path: str | PathLike[str], what: str = "image") -> np.ndarray:
    """Drop trailing singleton axes (a 'time' axis of length 1), then demand 3D.

    Args:
        data: the array as read from the file.
        path: the file, for the error message.
        what: "image" or "label", for the error message.
    """
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        shape = "x".join(str(s) for s in data.shape)
        hint = " (a 4D NIfTI is read as one file with the modality order given)" if data.ndim == 4 else ""
        raise CaseError(path, f"the {what} is {data.ndim}D with shape {shape}, expected a 3D volume{hint}")
    check_volume_size(data.shape, path, what)
    return data


def check_volume_size(shape: tuple[int, ...], path: str | PathLike[str], what: str = "image") -> None:
    """Refuse a volume too small to hold MRI slices (1x1x1, 3x3x200...): two axes of MIN_SLICE_SIDE voxels.

    Args:
        shape: the volume's shape (3 axes).
        path: the file, for the error message.
        what: "image" or "label", for the error message.
    """
    if sorted(shape)[-2] < MIN_SLICE_SIDE:
        raise CaseError(path, f"the {what} is {_shape_text(tuple(shape))} voxels, too small for an MRI volume "
                              f"(two axes of at least {MIN_SLICE_SIDE} voxels are needed)")


def clean_image(data: np.ndarray, path: str | PathLike[str]) -> np.ndarray:
    """A float32 copy of an image volume with NaN and infinite voxels set to 0 (and a warning).

    Args:
        data: the voxel values, any numeric dtype.
        path: the file, for the warning.
    """
    image = np.array(data, dtype=np.float32, copy=True)
    finite = np.isfinite(image)
    if not finite.all():
        count = int(image.size - np.count_nonzero(finite))
        # Repaired, not refused: scanners and converters sometimes write NaN
        # outside the field of view, and the rest of the case is still good.
        image[~finite] = 0.0
        warnings.warn(
            f"{path}: {count} NaN or infinite voxel(s) replaced by 0", CaseWarning, stacklevel=3
        )
    return image


def read_label_values(
    data: np.ndarray,
    path: str | PathLike[str],
    default: LabelConvention = LabelConvention.BRATS2020,
) -> tuple[np.ndarray, LabelConvention]:
    """Label voxels as stored -> internal uint8 labels, and the convention they used.

    Args:
        data: the voxel values (label files are often stored as float).
        path: the file, for the error message.
        default: the convention when the values fit both (only 0, 1, 2).
    """
    values = np.asarray(data)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise CaseError(path, "the label volume contains NaN or infinite values")
        rounded = np.rint(values)
        if not np.array_equal(rounded, values):
            raise CaseError(path, "the label volume has non-integer values, expected BraTS labels")
        values = rounded
    elif values.dtype.kind not in "iub":
        raise CaseError(path, f"the label volume has data type {values.dtype}, expected integers")
    # Range check before the integer cast so that 256 or -1 cannot wrap to a valid label.
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise CaseError(path, f"label values range {low:g}..{high:g}, expected BraTS labels 0..4")
    values = values.astype(np.uint8)
    try:
        convention = detect_convention(values, default=default)
        return to_internal(values, convention), convention
    except LabelValueError as error:
        raise CaseError(path, str(error)) from None


def check_same_grid(
    reference: Geometry,
    reference_path: str | PathLike[str],
    geometry: Geometry,
    path: str | PathLike[str],
) -> None:
    """Raise CaseError unless ``geometry`` is the grid of ``reference`` (see GRID_TOLERANCE_MM).

    Args:
        reference: the grid of the first file of the case.
        reference_path: that file, named in the message.
        geometry: the grid of the file being added.
        path: that file, the subject of the error.
    """
    if geometry.source_shape != reference.source_shape:
        raise CaseError(
            path,
            f"shape {_shape_text(geometry.source_shape)} differs from "
            f"{_shape_text(reference.source_shape)} of {reference_path}",
        )
    if not geometry.same_grid(reference, atol=GRID_TOLERANCE_MM):
        difference = float(np.abs(geometry.source_affine - reference.source_affine).max())
        raise CaseError(
            path,
            f"affine differs from that of {reference_path} by up to {difference:.4g} mm "
            f"(tolerance {GRID_TOLERANCE_MM:g} mm): the files are not on one grid",
        )


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)
