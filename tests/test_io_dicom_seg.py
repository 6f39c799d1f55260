"""DICOM SEG export: read back with pydicom alone, the same labels lie on the same voxels of the source series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_tumorseg.errors import CaseError
from napari_tumorseg.io import read_case
from napari_tumorseg.io.dicom_seg import read_dicom_seg, write_dicom_seg
from napari_tumorseg.io.labels import ED, ET, NCR
from napari_tumorseg.io.testing import ORIENTATIONS, label_volume, save_nifti, write_dicom_series

SHAPE = (12, 14, 10)
LEFT_HANDED = np.diag([1.0, 1.0, -1.5, 1.0])
LEFT_HANDED[:3, 3] = (3.0, -4.0, 12.0)
GRIDS = {"LPS": ORIENTATIONS["LPS"], "oblique": ORIENTATIONS["oblique"], "left-handed": LEFT_HANDED}


def dicom_case(root: Path, affine: np.ndarray):
    volume = (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 400).astype(np.int16)
    write_dicom_series(root / "flair", volume, affine, description="AX FLAIR", series_number=3)
    write_dicom_series(root / "t1c", volume + 5, affine, description="T1 POST GD", series_number=7)
    return read_case(root)


def case_labels(case) -> np.ndarray:
    return np.ascontiguousarray(case.geometry.to_canonical(label_volume(case.geometry.source_shape, enhancing=ET)))


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_the_seg_frames_reference_the_source_slices_and_hold_the_labels_there(tmp_path, grid):
    case = dicom_case(tmp_path / "case", GRIDS[grid])
    labels = case_labels(case)
    path = write_dicom_seg(labels, case, tmp_path / "mask.dcm")
    seg = pydicom.dcmread(path)
    sources = [pydicom.dcmread(f) for f in case.dicom_series["t1c"]]
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert (seg.PatientID, seg.StudyInstanceUID) == (sources[0].PatientID, sources[0].StudyInstanceUID)
    assert [int(s.SegmentNumber) for s in seg.SegmentSequence] == [NCR, ED, ET]
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["necrosis / non-enhancing core", "oedema",
                                                             "enhancing tumour"]
    # The source grid's slice k is the k-th file the case was read from; a frame names its file by UID.
    slice_of = {str(d.SOPInstanceUID): k for k, d in enumerate(sources)}
    source_mask = case.geometry.from_canonical(labels)  # [i, j, k]; frame pixels are [row j, column i]
    found = np.zeros_like(source_mask)
    pixels = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    for frame, group in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = slice_of[str(uid)]
        np.testing.assert_allclose([float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient],
                                   [float(v) for v in sources[k].ImagePositionPatient], atol=1e-4)
        found[:, :, k][frame.T.astype(bool)] = number
    np.testing.assert_array_equal(found, source_mask)
    np.testing.assert_array_equal(read_dicom_seg(path, case), labels)


def test_an_absent_class_is_an_empty_segment_and_the_numbers_stay_the_labels(tmp_path):
    case = dicom_case(tmp_path / "case", GRIDS["LPS"])
    labels = case_labels(case)
    labels[labels == NCR] = 0
    path = write_dicom_seg(labels, case, tmp_path / "mask.dcm")
    np.testing.assert_array_equal(read_dicom_seg(path, case), labels)


def test_only_dicom_cases_with_tumour_get_a_seg_and_nothing_is_written_otherwise(tmp_path):
    (tmp_path / "nifti").mkdir()
    save_nifti(tmp_path / "nifti" / "x_flair.nii.gz", np.ones(SHAPE, np.float32), ORIENTATIONS["LPS"])
    nifti = read_case(tmp_path / "nifti")
    with pytest.raises(CaseError, match="a DICOM SEG needs a case read from DICOM series"):
        write_dicom_seg(np.zeros(nifti.shape, np.uint8), nifti, tmp_path / "a.dcm")
    case = dicom_case(tmp_path / "case", GRIDS["LPS"])
    with pytest.raises(CaseError, match="holds no tumour"):
        write_dicom_seg(np.zeros(case.shape, np.uint8), case, tmp_path / "b.dcm")
    assert not list(tmp_path.glob("*.dcm"))
