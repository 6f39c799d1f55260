"""A prepared case on disk, and masks back onto the grids of the files they came from.

The tumour mask is made on the working grid. It goes back onto the
reference's own grid (nearest neighbour: the same grid when no resampling
was needed, so voxel for voxel) and, on request, onto any sequence's own
grid through the inverse of that sequence's registration transform (nearest
neighbour again; labels are never interpolated). Every file goes through the
atomic writer; every target is checked before the first is written.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import CaseError
from ..io.case import DISPLAY_NAMES, Geometry
from ..io.labels import LabelConvention
from .grids import resample, same_canonical_grid
from .pipeline import Preparation, PreparedCase

BRAIN_MASK_NAME = "brain_mask.nii.gz"
REPORT_NAME = "prepare.json"


def mask_on_grid(labels: np.ndarray, preparation: Preparation, grid: str = "reference") -> tuple[np.ndarray, Geometry]:
    """Working-grid labels on another grid of the case: canonical labels there, and that grid.

    Args:
        labels: canonical labels on the working grid.
        preparation: how the case was prepared.
        grid: "reference" (the reference sequence's own grid), "working", or a sequence key ("flair", ...).
    """
    working = preparation.working
    if grid == "working":
        return np.asarray(labels), working
    key = preparation.reference if grid == "reference" else grid
    record = preparation.sequences.get(key)
    if record is None:
        raise CaseError(None, f"no sequence {grid!r} in the case (it has {', '.join(preparation.sequences)})")
    target = record.geometry
    if same_canonical_grid(working, target) and np.allclose(record.transform.matrix, np.eye(4)):
        return np.asarray(labels).copy(), target
    # The sequence's point p shows the anatomy of the reference's point T^-1 p.
    moved = resample(np.asarray(labels, np.uint8), working, target, record.transform.inverse(), labels=True)
    return moved.astype(np.uint8), target


def write_mask_on_grid(labels: np.ndarray, preparation: Preparation, path: str | PathLike[str], *,
                       grid: str = "reference", convention: LabelConvention | str = LabelConvention.BRATS2020,
                       overwrite: bool = False) -> Path:
    """Write working-grid labels onto one of the case's grids (see :func:`mask_on_grid`) in ``convention``."""
    from ..io.writer import write_mask

    moved, geometry = mask_on_grid(labels, preparation, grid)
    return write_mask(moved, geometry, path, convention=convention, overwrite=overwrite)


def write_dicom_seg_on_series(labels: np.ndarray, preparation: Preparation, case, path: str | PathLike[str], *,
                               overwrite: bool = False) -> Path:
    """Working-grid labels as a DICOM SEG on the grid of the DICOM series it references (T1c first).

    The mask goes back onto that series' own grid (see :func:`mask_on_grid`), so every frame lies on one of
    its images, however the series was moved or resampled while preparing.
    """
    from ..io.dicom_seg import reference_series, write_dicom_seg_for_series

    key, files = reference_series(case)
    moved, geometry = mask_on_grid(labels, preparation, key)
    return write_dicom_seg_for_series(moved, geometry, files, path, overwrite=overwrite)


def write_binary(mask: np.ndarray, geometry: Geometry, path: str | PathLike[str], *, overwrite: bool = False) -> Path:
    """A 0/1 uint8 NIfTI (a brain mask) on ``geometry``'s source grid, atomically."""
    from ..io.atomic import atomic_write_bytes
    from ..io.nifti import nifti_bytes, require_nifti_suffix

    suffix = require_nifti_suffix(path)
    source = np.ascontiguousarray(geometry.from_canonical(np.asarray(mask, dtype=bool).astype(np.uint8)))
    return atomic_write_bytes(path, nifti_bytes(source, geometry.source_affine, suffix), overwrite=overwrite)


def prepared_targets(prepared: PreparedCase, folder: str | PathLike[str]) -> list[Path]:
    """Every file :func:`write_prepared` writes."""
    from ..io.writer import case_paths

    folder = Path(folder)
    return [*case_paths(prepared.case, folder).values(), folder / BRAIN_MASK_NAME, folder / REPORT_NAME]


def write_prepared(prepared: PreparedCase, folder: str | PathLike[str], *, report: dict, keep_skull: bool = False,
                   overwrite: bool = False) -> Path:
    """The prepared case in BraTS 2020 layout (skull-stripped unless ``keep_skull``), its brain mask and report.

    Args:
        prepared: the prepared case.
        folder: the output folder (made if missing).
        report: the JSON report (see :func:`report`).
        keep_skull: write the images with the head; by default they are 0 outside the brain, as BraTS cases are.
        overwrite: replace existing files.
    """
    from ..io.atomic import atomic_write_json, check_writable
    from ..io.writer import write_case

    folder = Path(folder)
    for target in prepared_targets(prepared, folder):
        check_writable(target, overwrite=overwrite, make_folder=True)
    case = prepared.case if keep_skull else prepared.stripped()
    write_case(case, folder, overwrite=overwrite)
    write_binary(prepared.brain, prepared.case.geometry, folder / BRAIN_MASK_NAME, overwrite=overwrite)
    atomic_write_json(folder / REPORT_NAME, report, overwrite=overwrite)
    return folder


def report(prepared: PreparedCase, *, command: str = "") -> dict:
    """The JSON report: findings, the transform and quality figure of every sequence, grids, timings, machine."""
    from ..machine import describe_machine

    preparation = prepared.preparation
    spacing = np.prod(preparation.working.spacing)
    return {
        "case": prepared.case.name,
        "command": command,
        **preparation.to_dict(),
        "brain_volume_ml": round(float(prepared.brain.sum() * spacing / 1000.0), 1),
        "quality": preparation.quality_line(),
        "transforms_note": "matrix_ras maps a point of the reference's world (RAS mm) to the same anatomy in the "
                           "sequence's world; the sequence was resampled onto the working grid through it.",
        "machine": describe_machine(),
    }


def describe_preparation(preparation: Preparation) -> str:
    """A few lines for people: what was found, what was done, the quality figures."""
    lines = [f"reference: {DISPLAY_NAMES[preparation.reference]}"]
    lines += [f"found: {f.problem}" for f in preparation.findings.items]
    lines += [f"done: {step}" for step in preparation.steps]
    lines.append(f"brain: {preparation.brain_source}")
    lines.append(f"registration: {preparation.quality_line()}")
    return "\n".join(lines)
