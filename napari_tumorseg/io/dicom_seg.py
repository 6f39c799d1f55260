"""The mask as a DICOM Segmentation (SEG) object referencing the series it was drawn on (highdicom).

For a case read from DICOM series, the clinic's viewers and PACS take a
SEG: one segment per tumour class (1 NCR, 2 ED, 3 ET: the internal numbers
are the segment numbers), a binary frame per source slice that holds the
class, each frame pointing at its source image (SOP Instance UID), the
patient and study copied from the source. NIfTI stays the default export.

The reference series is T1c where the case has it (the sequence the
enhancing tumour is read on), else the first present of FLAIR, T2, T1. Its
files are the ones the case was read from, in the order of the source
grid's third axis, so frame ``k`` is the source grid's slice ``k``: the mask
goes back through the exact inverse of the canonical layout, as in NIfTI.
The file is written atomically; every problem is one line naming a file.
"""

from __future__ import annotations

import io
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CaseError
from .atomic import atomic_write_bytes
from .case import Case, Geometry
from .labels import CLASS_NAMES, ED, ET, NCR

REFERENCE_ORDER = ("t1c", "flair", "t2", "t1")
SUFFIXES = (".dcm",)
# (category, type) per class: SNOMED CT codes, as DICOM's segmentation templates use them.
_SEGMENT_CODES = {
    NCR: ("6574001", "Necrosis"),
    ED: ("79654002", "Edema"),
    ET: ("108369006", "Neoplasm"),
}


def _highdicom(where: str | PathLike[str]) -> Any:
    """highdicom, an optional dependency (the ``dicom-seg`` extra): its absence is one line, not a traceback."""
    try:
        import highdicom
    except ImportError:
        raise CaseError(where, "DICOM SEG needs highdicom: pip install 'napari-tumorseg[dicom-seg]'") from None
    return highdicom


def is_dicom_seg_path(path: str | PathLike[str]) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def reference_series(case: Case) -> tuple[str, tuple[Path, ...]]:
    """The modality and files the SEG references.

    Raises:
        CaseError: the case was not read from DICOM.
    """
    for key in REFERENCE_ORDER:
        if key in case.dicom_series:
            return key, case.dicom_series[key]
    where = next(iter(case.sources.values()), case.name)
    raise CaseError(where, "a DICOM SEG needs a case read from DICOM series; export NIfTI for this case")


def _read_sources(files: tuple[Path, ...]) -> list[Any]:
    import pydicom

    datasets = []
    for file in files:
        try:
            datasets.append(pydicom.dcmread(str(file)))
        except Exception as error:  # pydicom raises InvalidDicomError, OSError, ...
            raise CaseError(file, f"cannot read the source DICOM file ({type(error).__name__})") from None
    return datasets


def segment_descriptions(present: list[int]) -> list[Any]:
    hd = _highdicom("DICOM SEG")
    from pydicom.sr.codedict import codes

    from .. import __version__

    algorithm = hd.AlgorithmIdentificationSequence(
        name="napari-tumorseg", version=__version__, family=codes.cid7162.ArtificialIntelligence,
    )
    descriptions = []
    for number in present:
        code, meaning = _SEGMENT_CODES[number]
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=CLASS_NAMES[number],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=hd.sr.CodedConcept(code, "SCT", meaning),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algorithm,
        ))
    return descriptions


def write_dicom_seg(labels: np.ndarray, case: Case, path: str | PathLike[str], *, overwrite: bool = False,
                    series_description: str = "Tumour segmentation (napari-tumorseg)") -> Path:
    """Write ``labels`` (canonical, internal 0-3) as a DICOM SEG referencing the case's source series.

    Raises:
        CaseError: the case was not read from DICOM, its files cannot be read, or the mask is empty.
        WriteError: the file exists (without ``overwrite``) or cannot be written.
    """
    if labels.shape != case.shape:
        raise ValueError(f"labels of shape {labels.shape} on a case of grid {case.shape}")
    _, files = reference_series(case)
    return write_dicom_seg_for_series(labels, case.geometry, files, path, overwrite=overwrite,
                                      series_description=series_description)


def write_dicom_seg_for_series(labels: np.ndarray, geometry: Geometry, files: tuple[Path, ...],
                               path: str | PathLike[str], *, overwrite: bool = False,
                               series_description: str = "Tumour segmentation (napari-tumorseg)") -> Path:
    """Write canonical ``labels`` on ``geometry`` (the grid of the series ``files``) as a SEG referencing them."""
    path = Path(path)
    hd = _highdicom(path)
    datasets = _read_sources(files)
    frames = np.ascontiguousarray(geometry.from_canonical(labels).transpose(2, 1, 0), dtype=np.uint8)
    first = datasets[0]
    if frames.shape != (len(datasets), int(first.Rows), int(first.Columns)):
        raise CaseError(files[0], f"the series holds {len(datasets)} slices of {first.Rows} x {first.Columns}; the "
                                  f"mask has {frames.shape[0]} of {frames.shape[1]} x {frames.shape[2]}")
    if not np.isin(frames, list(_SEGMENT_CODES)).any():
        raise CaseError(path, "the mask holds no tumour: a DICOM SEG needs at least one segment")
    # Every class is a segment (numbered 1, 2, 3 as DICOM wants), present or not: the numbers stay the labels.
    present = sorted(_SEGMENT_CODES)
    try:
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segment_descriptions(present),
            series_instance_uid=hd.UID(),
            series_number=max(int(getattr(first, "SeriesNumber", 0) or 0), 0) + 1000,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="napari-tumorseg",
            manufacturer_model_name="napari-tumorseg",
            software_versions=_version(),
            device_serial_number="0",
            series_description=series_description[:64],
        )
    except (ValueError, AttributeError, TypeError) as error:
        raise CaseError(files[0], f"the source series cannot be referenced by a DICOM SEG ({_first_line(error)})") \
            from None
    buffer = io.BytesIO()
    seg.save_as(buffer)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def read_dicom_seg(path: str | PathLike[str], case: Case) -> np.ndarray:
    """A SEG written for ``case`` back as canonical internal labels (segment numbers are the labels)."""
    hd = _highdicom(path)
    seg = hd.seg.segread(str(path))
    _, files = reference_series(case)
    uids = [str(d.SOPInstanceUID) for d in _read_sources(files)]
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    frames = np.zeros((len(uids), *case.geometry.source_shape[1::-1]), np.uint8)
    present = [n for n, uid in enumerate(uids) if uid in referenced]
    if present:
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[uids[n] for n in present], combine_segments=True, skip_overlap_checks=True,
        )
        frames[present] = pixels.astype(np.uint8)
    return np.ascontiguousarray(case.geometry.to_canonical(frames.transpose(2, 1, 0)))


def _version() -> str:
    from .. import __version__

    return __version__


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]
