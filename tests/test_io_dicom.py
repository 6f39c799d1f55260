"""DICOM series written by SimpleITK: modality identification, LPS -> RAS geometry, masks on its grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_tumorseg.errors import CaseError
from napari_tumorseg.io import looks_like_case, read_case, write_mask
from napari_tumorseg.io.labels import ET
from napari_tumorseg.io.testing import (
    ORIENTATIONS,
    label_volume,
    sample_at_world,
    save_nifti,
    world_coordinates,
    write_dicom_series,
)

SHAPE = (12, 14, 10)
AFFINE = ORIENTATIONS["LPS"]
# A slice normal opposite to row x column: DICOM readers sort slices along the
# normal, so the grid comes back with its third axis reversed, same world.
LEFT_HANDED = np.diag([1.0, 1.0, -1.5, 1.0])
LEFT_HANDED[:3, 3] = (3.0, -4.0, 12.0)
DICOM_GRIDS = {"LPS": ORIENTATIONS["LPS"], "oblique": ORIENTATIONS["oblique"], "left-handed": LEFT_HANDED}


def _volume(offset: int) -> np.ndarray:
    """int16-exact values, unique per voxel, so a value names its voxel."""
    return (np.arange(np.prod(SHAPE)).reshape(SHAPE) + offset).astype(np.int16)


def _check_world(case, key: str, volume: np.ndarray, affine: np.ndarray) -> None:
    indices = np.argwhere(np.ones(case.shape, dtype=bool))
    world = world_coordinates(case.geometry.canonical_affine, indices)
    np.testing.assert_array_equal(case.images[key][tuple(indices.T)], sample_at_world(volume, affine, world))


@pytest.mark.parametrize("grid", sorted(DICOM_GRIDS))
def test_series_in_subfolders_by_description(tmp_path: Path, grid: str) -> None:
    affine = DICOM_GRIDS[grid]
    root = tmp_path / "patient"
    write_dicom_series(root / "s1", _volume(0), affine, description="AX T2 FLAIR", series_number=1)
    write_dicom_series(root / "s2", _volume(5000), affine, description="T1 MPRAGE POST GD", series_number=2)
    write_dicom_series(root / "s3", _volume(9000), affine, description="t2_tse_tra", series_number=3)
    write_dicom_series(root / "s4", _volume(1), affine, description="localizer", series_number=4)
    assert looks_like_case(root)

    case = read_case(root)
    assert case.name == "patient"
    assert case.modalities == ("flair", "t1c", "t2")
    assert case.sources["flair"] == root / "s1"
    assert case.images["t2"].dtype == np.float32
    for key, offset in (("flair", 0), ("t1c", 5000), ("t2", 9000)):
        _check_world(case, key, _volume(offset), affine)
    if grid != "left-handed":
        # Same grid as written, up to the decimal places of the DICOM tags.
        np.testing.assert_allclose(case.geometry.source_affine, affine, atol=1e-5)
        assert case.geometry.source_shape == SHAPE
    assert case.geometry.source_axcodes == "".join(nib.aff2axcodes(case.geometry.source_affine))


def test_plain_axial_series_reads_as_lps(tmp_path: Path) -> None:
    """Identity direction in DICOM's LPS world is 'LPS' in nibabel's terms, origin sign-flipped in x, y."""
    lps_identity = np.diag([-0.8, -0.8, 3.0, 1.0])
    lps_identity[:3, 3] = (-100.0, -120.0, -40.0)
    write_dicom_series(tmp_path / "c" / "FLAIR", _volume(0), lps_identity, description="")
    case = read_case(tmp_path / "c")
    assert case.geometry.source_axcodes == "LPS"
    np.testing.assert_allclose(case.geometry.source_affine, lps_identity, atol=1e-6)
    assert case.geometry.spacing == pytest.approx((3.0, 0.8, 0.8))


def test_modality_from_subfolder_name_when_no_description(tmp_path: Path) -> None:
    affine = ORIENTATIONS["LPS"]
    write_dicom_series(tmp_path / "c" / "T1", _volume(0), affine, description="", series_number=1)
    write_dicom_series(tmp_path / "c" / "t1ce", _volume(7), affine, description="", series_number=2)
    case = read_case(tmp_path / "c")
    assert case.modalities == ("t1", "t1c")
    _check_world(case, "t1c", _volume(7), affine)


def test_series_side_by_side_in_one_folder(tmp_path: Path) -> None:
    affine = ORIENTATIONS["anisotropic"]
    folder = tmp_path / "flat"
    write_dicom_series(folder / "tmp1", _volume(0), affine, description="FLAIR", series_number=1)
    write_dicom_series(folder / "tmp2", _volume(3), affine, description="T2W", series_number=2)
    for sub, tag in (("tmp1", "a"), ("tmp2", "b")):
        for file in (folder / sub).iterdir():
            file.rename(folder / f"{tag}_{file.name}")
        (folder / sub).rmdir()
    case = read_case(folder)
    assert case.modalities == ("flair", "t2")
    _check_world(case, "t2", _volume(3), affine)


@pytest.mark.parametrize("grid", ["oblique", "left-handed"])
def test_mask_on_dicom_grid_round_trip(tmp_path: Path, grid: str) -> None:
    affine = DICOM_GRIDS[grid]
    root = tmp_path / "case"
    write_dicom_series(root / "flair", _volume(0), affine, description="FLAIR")
    case = read_case(root)
    labels = label_volume(case.geometry.source_shape, enhancing=3)
    internal = case.geometry.to_canonical(labels)
    out = write_mask(internal, case.geometry, tmp_path / "mask.nii.gz", convention="brats2023")
    mask = nib.load(out)
    assert mask.shape == case.geometry.source_shape
    np.testing.assert_allclose(mask.affine, case.geometry.source_affine, atol=1e-4)
    # A labelled voxel of the mask file lies where the same label lies in the case.
    for value in (1, 2, ET):
        from_file = world_coordinates(mask.affine, np.argwhere(np.asanyarray(mask.dataobj) == value))
        from_case = world_coordinates(case.geometry.canonical_affine, np.argwhere(internal == value))
        np.testing.assert_allclose(np.sort(from_file, axis=0), np.sort(from_case, axis=0), atol=1e-3)
    # The mask can come back as the case's reference (grid within tolerance).
    (root / "case_seg.nii.gz").write_bytes(out.read_bytes())
    with_seg = read_case(root)
    np.testing.assert_array_equal(with_seg.label, internal)


def test_no_recognisable_series_is_an_error(tmp_path: Path) -> None:
    write_dicom_series(tmp_path / "c" / "s1", _volume(0), ORIENTATIONS["LPS"], description="DWI b1000")
    with pytest.raises(CaseError, match="no recognisable modality.*DWI b1000"):
        read_case(tmp_path / "c")


def test_two_series_for_one_modality_is_an_error(tmp_path: Path) -> None:
    affine = ORIENTATIONS["LPS"]
    write_dicom_series(tmp_path / "c" / "a", _volume(0), affine, description="T2 TSE", series_number=1)
    write_dicom_series(tmp_path / "c" / "b", _volume(0), affine, description="T2 BLADE", series_number=2)
    with pytest.raises(CaseError, match="two DICOM series look like t2"):
        read_case(tmp_path / "c")


def test_series_on_different_grids_is_an_error(tmp_path: Path) -> None:
    moved = ORIENTATIONS["LPS"].copy()
    moved[:3, 3] += (0.0, 0.0, 2.0)
    write_dicom_series(tmp_path / "c" / "flair", _volume(0), ORIENTATIONS["LPS"], description="FLAIR")
    write_dicom_series(tmp_path / "c" / "t1", _volume(0), moved, description="T1", series_number=2)
    with pytest.raises(CaseError, match=r"t1: affine differs"):
        read_case(tmp_path / "c")


def test_corrupt_dicom_files_are_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 3)
    assert looks_like_case(folder)
    with pytest.raises(CaseError, match="c: holds DICOM files but no readable DICOM series"):
        read_case(folder)


def test_truncated_dicom_slice_is_an_error(tmp_path: Path) -> None:
    series = write_dicom_series(tmp_path / "c" / "flair", _volume(0), AFFINE, description="FLAIR")
    victim = sorted(series.iterdir())[4]
    victim.write_bytes(victim.read_bytes()[: -SHAPE[0] * SHAPE[1]])
    # GDCM drops the slice silently; the reader must not read the series with a gap.
    with pytest.raises(CaseError, match=f"{victim.name}: unreadable, truncated or corrupt DICOM"):
        read_case(tmp_path / "c")


def test_missing_slice_is_an_error(tmp_path: Path) -> None:
    series = write_dicom_series(tmp_path / "c" / "flair", _volume(0), AFFINE, description="FLAIR")
    sorted(series.iterdir())[4].unlink()
    with pytest.raises(CaseError, match="flair: DICOM series 'FLAIR' has missing or unevenly spaced slices"):
        read_case(tmp_path / "c")


def test_nifti_next_to_dicom_is_read_as_reference(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write_dicom_series(root / "flair", _volume(0), ORIENTATIONS["LPS"], description="FLAIR")
    save_nifti(root / "c_seg.nii.gz", label_volume(SHAPE, enhancing=4), ORIENTATIONS["LPS"])
    case = read_case(root)
    assert case.label is not None and case.label_convention.value == "brats2020"
    expected = np.where(label_volume(SHAPE) == 4, ET, label_volume(SHAPE))
    np.testing.assert_array_equal(case.geometry.from_canonical(case.label), expected)
