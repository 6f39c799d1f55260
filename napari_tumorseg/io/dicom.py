"""DICOM series via SimpleITK: one series per modality, in one folder or one subfolder each.

SimpleITK gives an image in ITK's LPS world with index (i, j, k) and an array
indexed [k, j, i]. Here the array is transposed to [i, j, k] (the order of the
NIfTI voxel axes) and the geometry becomes a nibabel-style RAS+ affine:

    affine = diag(-1, -1, 1, 1) @ [[direction * spacing, origin], [0, 0, 0, 1]]

which is exact (a sign change of two rows), so world coordinates are kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import CaseError
from .case import MODALITIES, Case, Geometry
from .folders import is_dicom_file
from .naming import guess_modality
from .volumes import check_volume_size, clean_image

# (0008,103E) Series Description, the free-text name a scanner gives a series.
_SERIES_DESCRIPTION = "0008|103e"
# (0020,0032) Image Position (Patient): the LPS position of a slice's first voxel.
_IMAGE_POSITION = "0020|0032"
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series found on disk.

    Args:
        uid: the SeriesInstanceUID.
        folder: the folder holding its files.
        files: its files, in the slice order GDCM sorted them.
        description: the SeriesDescription ('' when absent).
    """

    uid: str
    folder: Path
    files: tuple[str, ...]
    description: str


def ras_affine_from_sitk(image: object) -> np.ndarray:
    """The RAS+ voxel-to-world affine of a SimpleITK image, for its array transposed to [i, j, k].

    Args:
        image: a 3D ``SimpleITK.Image``.
    """
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)  # type: ignore[attr-defined]
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)  # type: ignore[attr-defined]
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)  # type: ignore[attr-defined]
    lps = np.eye(4)
    # Column c of the direction matrix is the unit vector of index axis c.
    lps[:3, :3] = direction * spacing[np.newaxis, :]
    lps[:3, 3] = origin
    return _LPS_TO_RAS @ lps


def find_dicom_series(folder: str | PathLike[str]) -> list[DicomSeries]:
    """Every DICOM series in ``folder`` and its subfolders (hidden ones skipped).

    Args:
        folder: the case folder.
    """
    import SimpleITK as sitk

    series: list[DicomSeries] = []
    for directory, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        # Asking GDCM about a folder without DICOM prints an ITK warning on
        # stderr; a cheap preamble probe keeps those folders out.
        if not any(is_dicom_file(Path(directory, file)) for file in files if not file.startswith(".")):
            continue
        try:
            uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(directory)
        except RuntimeError:
            continue
        for uid in uids:
            files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(directory, uid))
            if files:
                series.append(DicomSeries(uid, Path(directory), files, _series_description(files[0])))
    return series


def identify_modalities(root: Path, series: Sequence[DicomSeries]) -> dict[str, DicomSeries]:
    """Modality key -> series, from each SeriesDescription, else from its subfolder's name.

    Series that name no modality (localisers, diffusion...) are left out.

    Args:
        root: the case folder (its own name is not a hint: it names the patient).
        series: the series found in it.

    Raises:
        CaseError: two series claim one modality, or none names any.
    """
    chosen: dict[str, DicomSeries] = {}
    for item in series:
        key = guess_modality(item.description) if item.description else None
        if key is None and item.folder != root:
            key = guess_modality(item.folder.name)
        if key is None:
            continue
        if key in chosen:
            raise CaseError(
                item.folder,
                f"two DICOM series look like {key}: '{chosen[key].description}' in {chosen[key].folder} "
                f"and '{item.description}' in {item.folder}",
            )
        chosen[key] = item
    if not chosen:
        names = ", ".join(f"'{item.description or item.folder.name}'" for item in series)
        raise CaseError(
            root, f"no recognisable modality among the DICOM series ({names}); expected FLAIR, T1, T1c or T2"
        )
    return chosen


def read_dicom_series(item: DicomSeries) -> tuple[np.ndarray, Geometry]:
    """One series -> (float32 volume indexed [i, j, k], its RAS+ Geometry).

    Args:
        item: the series to read.
    """
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(item.files))
    # Per-slice tags, to check the slice positions below.
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1][:200] if str(error).strip() else "unknown error"
        raise CaseError(item.folder, f"unreadable DICOM series '{item.description}' ({reason})") from None
    _check_slice_positions(reader, image, item)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise CaseError(item.folder, f"DICOM series '{item.description}' is not a greyscale image")
    if image.GetDimension() != 3:
        dimension = image.GetDimension()
        raise CaseError(item.folder, f"DICOM series '{item.description}' is {dimension}D, expected 3D")
    array = sitk.GetArrayViewFromImage(image).transpose(2, 1, 0)
    check_volume_size(array.shape, item.folder)
    volume = clean_image(array, item.folder)
    return volume, Geometry(ras_affine_from_sitk(image), volume.shape)


def read_dicom_case(
    folder: str | PathLike[str], *, name: str | None = None, seg: str | PathLike[str] | None = None
) -> Case:
    """A folder of DICOM series, one per modality -> Case.

    Args:
        folder: the case folder.
        name: the case id (default: the folder's name).
        seg: an optional NIfTI reference mask on the same grid.
    """
    with _quiet_itk():
        return _read_dicom_case(Path(folder), name, seg)


@contextmanager
def _quiet_itk() -> Iterator[None]:
    """ITK prints its own warnings on stderr ("Non uniform sampling or missing slices detected"): the checks
    here say what matters, on one line, naming the file."""
    import SimpleITK as sitk

    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _read_dicom_case(root: Path, name: str | None, seg: str | PathLike[str] | None) -> Case:
    from .assemble import SourceVolume, assemble_case

    series = find_dicom_series(root)
    if not series:
        raise CaseError(root, "holds DICOM files but no readable DICOM series")
    chosen = identify_modalities(root, series)
    _check_no_stray_files(list(chosen.values()), series)
    volumes: dict[str, SourceVolume] = {}
    for key in MODALITIES:
        if key in chosen:
            data, geometry = read_dicom_series(chosen[key])
            volumes[key] = SourceVolume(data, geometry, chosen[key].folder)
    case = assemble_case(name or root.resolve().name, volumes, seg=seg)
    case.dicom_series = {key: tuple(Path(f) for f in chosen[key].files) for key in volumes}
    return case


def _check_slice_positions(reader: object, image: object, item: DicomSeries) -> None:
    """Refuse a series with missing or unevenly spaced slices.

    SimpleITK only warns (on stderr) and spreads the slices evenly, which
    would put every voxel past a gap at the wrong place.
    """
    count = len(item.files)
    if count < 3:
        return
    direction = image.GetDirection()  # type: ignore[attr-defined]
    normal = np.asarray(direction, dtype=np.float64).reshape(3, 3)[:, 2]
    heights = []
    for index in range(count):
        if not reader.HasMetaDataKey(index, _IMAGE_POSITION):  # type: ignore[attr-defined]
            return  # no positions to check (a multi-frame or unusual file): trust the reader
        text = reader.GetMetaData(index, _IMAGE_POSITION)  # type: ignore[attr-defined]
        try:
            position = np.array([float(value) for value in text.split("\\")], dtype=np.float64)
        except ValueError:
            return
        heights.append(float(position @ normal))
    steps = np.abs(np.diff(heights))
    typical = float(np.median(steps))
    # A tenth of a slice: far above the rounding of decimal tags, far below a missing slice.
    if typical <= 0 or np.abs(steps - typical).max() > 0.1 * typical:
        raise CaseError(
            item.folder,
            f"DICOM series '{item.description}' has missing or unevenly spaced slices "
            f"(steps from {steps.min():.3g} to {steps.max():.3g} mm)",
        )


def _check_no_stray_files(used: Sequence[DicomSeries], every: Sequence[DicomSeries]) -> None:
    """Refuse a folder of a series in use that holds DICOM files no series could read.

    GDCM leaves a truncated or corrupt slice out of its series without a word;
    the series would then be read with a slice missing.
    """
    for directory in sorted({item.folder for item in used}):
        claimed = {Path(file).name for item in every if item.folder == directory for file in item.files}
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(".") or entry.name.upper() == "DICOMDIR" or entry.name in claimed:
                continue
            if entry.is_file() and is_dicom_file(entry):
                raise CaseError(
                    entry, "unreadable, truncated or corrupt DICOM file (it belongs to no readable series)"
                )


def _series_description(file: str) -> str:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return ""
    if reader.HasMetaDataKey(_SERIES_DESCRIPTION):
        return reader.GetMetaData(_SERIES_DESCRIPTION).strip()
    return ""
