"""Write masks and whole cases as NIfTI on the exact grid of their source files.

Arrays come in the canonical layout; ``Geometry.from_canonical`` puts them
back on the source voxel grid (a permutation and flips, never a resampling)
and the source affine goes into the header unchanged, so a mask written here
overlays its source image voxel for voxel in any viewer.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import CaseError, WriteError
from .atomic import atomic_write_bytes, check_writable
from .case import Case, Geometry
from .labels import LabelConvention, LabelValueError, from_internal
from .naming import LAYOUT_SUFFIXES, SEG_ROLE, case_file_name
from .nifti import nifti_bytes, require_nifti_suffix

# Images are written as float32: the internal dtype, so a written case reads
# back bit-identical (int16 would round and need a scale factor).
IMAGE_DTYPE = np.float32
LAYOUT_CONVENTIONS: dict[str, LabelConvention] = {
    "brats2020": LabelConvention.BRATS2020,
    "brats2023": LabelConvention.BRATS2023,
}


def write_mask(
    labels: np.ndarray,
    geometry: Geometry,
    path: str | PathLike[str],
    *,
    convention: LabelConvention | str,
    overwrite: bool = False,
) -> Path:
    """Write internal canonical labels as a uint8 NIfTI mask on the source grid.

    Args:
        labels: canonical ``(z, y, x)`` internal labels (0 BG, 1 NCR, 2 ED, 3 ET).
        geometry: the grid of the case the mask belongs to.
        path: the target, ending in .nii or .nii.gz (gzip follows the suffix).
        convention: the numbering on disk (BraTS 2020 writes ET as 4).
        overwrite: replace an existing file; otherwise an existing file is an error.

    Returns:
        The path written.

    Raises:
        CaseError: wrong suffix, a mask that is not on the case's grid, labels
            outside 0..3, an existing file, or an unwritable folder.
    """
    path = Path(path)
    suffix = require_nifti_suffix(path)
    convention = LabelConvention(convention)
    labels = np.asarray(labels)
    if labels.shape != geometry.canonical_shape:
        raise CaseError(
            path, f"mask shape {labels.shape} is not the case grid {geometry.canonical_shape}"
        )
    if labels.dtype.kind not in "iub":
        raise CaseError(path, f"mask has data type {labels.dtype}, expected integer labels")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 255):
        raise CaseError(path, f"mask values range {int(labels.min())}..{int(labels.max())}, expected 0..3")
    try:
        on_disk = from_internal(labels.astype(np.uint8), convention)
    except LabelValueError as error:
        raise CaseError(path, str(error)) from None
    source = np.ascontiguousarray(geometry.from_canonical(on_disk))
    content = nifti_bytes(source, geometry.source_affine, suffix)
    return atomic_write_bytes(path, content, overwrite=overwrite)


def write_image(
    volume: np.ndarray,
    geometry: Geometry,
    path: str | PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write one canonical image volume as a float32 NIfTI on the source grid.

    Args:
        volume: canonical ``(z, y, x)`` voxels.
        geometry: the grid of the case.
        path: the target, ending in .nii or .nii.gz.
        overwrite: replace an existing file; otherwise an existing file is an error.
    """
    path = Path(path)
    suffix = require_nifti_suffix(path)
    volume = np.asarray(volume)
    if volume.shape != geometry.canonical_shape:
        raise CaseError(path, f"image shape {volume.shape} is not the case grid {geometry.canonical_shape}")
    source = np.ascontiguousarray(geometry.from_canonical(volume.astype(IMAGE_DTYPE, copy=False)))
    return atomic_write_bytes(path, nifti_bytes(source, geometry.source_affine, suffix), overwrite=overwrite)


def case_paths(case: Case, folder: str | PathLike[str], layout: str = "brats2020") -> dict[str, Path]:
    """The files ``write_case`` would write, role (modality or "seg") -> path.

    Args:
        case: the case.
        folder: the case folder.
        layout: "brats2020" or "brats2023".
    """
    if layout not in LAYOUT_SUFFIXES:
        raise ValueError(f"layout must be one of {sorted(LAYOUT_SUFFIXES)}, got {layout!r}")
    folder = Path(folder)
    roles = list(case.modalities) + ([SEG_ROLE] if case.label is not None else [])
    return {role: folder / case_file_name(case.name, role, layout) for role in roles}


def write_case(
    case: Case,
    folder: str | PathLike[str],
    *,
    layout: str = "brats2020",
    overwrite: bool = False,
) -> Path:
    """Write a case into ``folder`` in BraTS layout: ``<name>_flair.nii.gz``... or ``<name>-t2f.nii.gz``...

    Images are float32 on the source grid; the reference mask (if any) is
    uint8 in the layout's label convention (2020: ET = 4, 2023: ET = 3).
    Each file is written atomically; every target is checked before the
    first is written, so a refused overwrite leaves the folder untouched.

    Args:
        case: the case to write (its ``name`` prefixes every file).
        folder: the case folder, created if missing; the files go directly in it.
        layout: "brats2020" or "brats2023".
        overwrite: replace existing files.

    Returns:
        The folder.
    """
    if layout not in LAYOUT_CONVENTIONS:
        raise ValueError(f"layout must be one of {sorted(LAYOUT_CONVENTIONS)}, got {layout!r}")
    folder = Path(folder)
    if not case.name or any(separator in case.name for separator in ("/", "\\")):
        raise CaseError(folder, f"case name {case.name!r} cannot prefix file names")
    targets = case_paths(case, folder, layout)
    for path in targets.values():
        check_writable(path, overwrite=overwrite, make_folder=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(folder, f"cannot create the folder ({error.strerror or error})") from None
    for key in case.modalities:
        write_image(case.images[key], case.geometry, targets[key], overwrite=overwrite)
    if case.label is not None:
        write_mask(
            case.label,
            case.geometry,
            targets[SEG_ROLE],
            convention=LAYOUT_CONVENTIONS[layout],
            overwrite=overwrite,
        )
    return folder
