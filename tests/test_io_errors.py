"""Every bad input gives a one-line CaseError that names the file; NaN voxels are repaired with a warning."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from napari_tumorseg.errors import CaseError, CaseWarning, TumorsegError
from napari_tumorseg.io import GRID_TOLERANCE_MM, read_case
from napari_tumorseg.io.testing import ORIENTATIONS, SMALL_SHAPE, image_volume, label_volume, save_nifti

AFFINE = ORIENTATIONS["LPS"]


def _raises(path: Path, pattern: str, **kwargs: object) -> CaseError:
    """read_case(path) fails with a CaseError on one line naming ``path`` and matching ``pattern``."""
    with pytest.raises(CaseError, match=pattern) as caught:
        read_case(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert isinstance(caught.value, TumorsegError)
    return caught.value


def _good_folder(root: Path, name: str = "case") -> Path:
    folder = root / name
    folder.mkdir()
    save_nifti(folder / f"{name}_flair.nii.gz", image_volume(), AFFINE)
    save_nifti(folder / f"{name}_t1.nii.gz", image_volume(seed=1), AFFINE)
    return folder


def test_missing_path(tmp_path: Path) -> None:
    _raises(tmp_path / "nowhere", "nowhere: no such file or folder")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _raises(tmp_path / "empty", "empty: the folder is empty")


def test_folder_without_recognisable_modality(tmp_path: Path) -> None:
    folder = tmp_path / "misc"
    folder.mkdir()
    (folder / "notes_t1.txt").write_text("not an image")
    save_nifti(folder / "brain.nii.gz", image_volume(), AFFINE)
    _raises(folder, "misc: no recognisable modality")


def test_folder_with_only_a_mask(tmp_path: Path) -> None:
    folder = tmp_path / "masks"
    folder.mkdir()
    save_nifti(folder / "x_seg.nii.gz", label_volume(), AFFINE)
    _raises(folder, r"masks: only a reference mask \(x_seg.nii.gz\)")


def test_two_files_for_one_modality(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    save_nifti(folder / "case_t1.nii", image_volume(), AFFINE)
    _raises(folder, "two files for t1: case_t1.nii and case_t1.nii.gz")


def test_random_bytes_named_nii(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    (folder / "case_t2.nii").write_bytes(np.random.default_rng(0).bytes(5000))
    _raises(folder, "case_t2.nii: unreadable, truncated or corrupt NIfTI")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    folder = _good_folder(tmp_path)
    whole = save_nifti(folder / f"case_t1ce{suffix}", image_volume(), AFFINE)
    content = whole.read_bytes()
    whole.write_bytes(content[: len(content) // 2])
    _raises(folder, f"case_t1ce{suffix}: unreadable, truncated or corrupt NIfTI")


def test_gzip_with_garbage_inside(tmp_path: Path) -> None:
    path = tmp_path / "x_flair.nii.gz"
    path.write_bytes(gzip.compress(b"this is no NIfTI header" * 40))
    _raises(path, "x_flair.nii.gz: unreadable, truncated or corrupt NIfTI")


def test_not_a_nifti_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(b"\x89PNG")
    _raises(path, "scan.png: not a NIfTI file")


def test_2d_image(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "x_t2.nii.gz", image_volume()[:, :, 0], AFFINE)
    _raises(path, "x_t2.nii.gz: the image is 2D")


def test_4d_image_in_a_brats_folder(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    save_nifti(folder / "case_t2.nii.gz", np.stack([image_volume()] * 2, axis=-1), AFFINE)
    _raises(folder, "case_t2.nii.gz: the image is 4D with shape 20x24x16x2, expected a 3D volume")


def test_trailing_singleton_axis_is_3d(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "x_t2.nii.gz", image_volume()[..., np.newaxis], AFFINE)
    assert read_case(path).shape == (16, 24, 20)


def test_4d_without_order_or_with_wrong_order(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "stack.nii.gz", np.stack([image_volume()] * 3, axis=-1), AFFINE)
    _raises(path, "stack.nii.gz: is 4D with 3 volumes; give their modality order")
    _raises(path, "stack.nii.gz: has 3 volumes but the order names 2", order=("flair", "t1"))
    _raises(path, "stack.nii.gz: unknown modality 'pd'", order=("flair", "t1", "pd"))
    _raises(path, "stack.nii.gz: the order names a modality twice", order=("flair", "t1", "FLAIR"))


def test_single_file_without_modality(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "scan.nii.gz", image_volume(), AFFINE)
    _raises(path, "scan.nii.gz: no recognisable modality in the file name")


def test_single_mask_file(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "x_seg.nii.gz", label_volume(), AFFINE)
    _raises(path, "x_seg.nii.gz: is a reference mask")


def test_unknown_modality_in_explicit_files(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "a.nii", image_volume(), AFFINE)
    with pytest.raises(CaseError, match="a.nii: unknown modality 'dwi'"):
        read_case(modality_files={"dwi": path})


def test_modalities_of_different_shapes(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    save_nifti(folder / "case_t2.nii.gz", image_volume((20, 24, 15)), AFFINE)
    _raises(folder, r"case_t2.nii.gz: shape 20x24x15 differs from 20x24x16 of .*case_flair.nii.gz")


def test_modalities_on_shifted_grids(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    shifted = AFFINE.copy()
    shifted[0, 3] += 10 * GRID_TOLERANCE_MM
    save_nifti(folder / "case_t2.nii.gz", image_volume(), shifted)
    _raises(folder, r"case_t2.nii.gz: affine differs from that of .*case_flair.nii.gz by up to 0.01 mm")


def test_affine_differences_within_tolerance_are_one_grid(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    nudged = AFFINE.copy()
    nudged[:3, 3] += GRID_TOLERANCE_MM / 4
    save_nifti(folder / "case_t2.nii.gz", image_volume(), nudged)
    case = read_case(folder)
    assert case.modalities == ("flair", "t1", "t2")
    np.testing.assert_array_equal(case.geometry.source_affine, AFFINE)  # the first file's grid


def test_label_on_a_different_grid(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    save_nifti(folder / "case_seg.nii.gz", label_volume(), ORIENTATIONS["RAS"])
    _raises(folder, "case_seg.nii.gz: affine differs from that of")


def test_label_of_a_different_shape(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    save_nifti(folder / "case_seg.nii.gz", label_volume((20, 24, 17)), AFFINE)
    _raises(folder, "case_seg.nii.gz: shape 20x24x17 differs")


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        ((0, 1, 5), r"label values \[5\] are not BraTS labels"),
        ((0, 3, 4), "3 and 4 together mix the BraTS 2023 and 2020 conventions"),
        ((0, 1, 2.5), "non-integer values"),
        ((0, -1), r"label values range -1..0"),
        ((0, 260), r"label values range 0..260"),
    ],
)
def test_label_values_outside_the_conventions(
    tmp_path: Path, values: tuple[float, ...], pattern: str
) -> None:
    folder = _good_folder(tmp_path)
    labels = np.zeros(SMALL_SHAPE, dtype=np.float32)
    labels.flat[: len(values)] = values
    save_nifti(folder / "case_seg.nii.gz", labels, AFFINE)
    _raises(folder, f"case_seg.nii.gz: .*{pattern}")


def test_nan_and_inf_voxels_become_zero_with_a_warning(tmp_path: Path) -> None:
    image = image_volume() + 1.0
    image[1, 2, 3] = np.nan
    image[4, 5, 6] = np.inf
    image[7, 8, 9] = -np.inf
    path = save_nifti(tmp_path / "x_flair.nii.gz", image, AFFINE)
    with pytest.warns(CaseWarning, match=r"x_flair.nii.gz: 3 NaN or infinite voxel\(s\) replaced by 0"):
        case = read_case(path)
    source = case.geometry.from_canonical(case.images["flair"])
    assert np.isfinite(source).all()
    assert source[1, 2, 3] == source[4, 5, 6] == source[7, 8, 9] == 0.0
    assert np.count_nonzero(source == 0.0) == 3


def test_clean_file_gives_no_warning(tmp_path: Path) -> None:
    import warnings

    path = save_nifti(tmp_path / "x_flair.nii.gz", image_volume(), AFFINE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaseWarning)
        read_case(path)
