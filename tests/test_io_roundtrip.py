"""Read, write the mask, read again, for every NIfTI input form and every orientation.

"Same" means: the same labels at the same voxels of the file on disk, the same
world coordinates for every labelled voxel, and the same shape and affine as
the source file.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_tumorseg.io import LabelConvention, read_case, write_mask
from napari_tumorseg.io.case import CANONICAL_AXCODES, MODALITIES
from napari_tumorseg.io.labels import ET
from napari_tumorseg.io.testing import (
    ORIENTATIONS,
    SMALL_SHAPE,
    image_volume,
    label_volume,
    sample_at_world,
    save_nifti,
    world_coordinates,
)

SUFFIXES = (".nii", ".nii.gz")
BRATS2020_NAMES = {"flair": "flair", "t1": "t1", "t1c": "t1ce", "t2": "t2"}
BRATS2023_NAMES = {"flair": "t2f", "t1": "t1n", "t1c": "t1c", "t2": "t2w"}


def _brats_folder(root: Path, affine: np.ndarray, suffix: str, layout: str) -> tuple[Path, np.ndarray]:
    """A BraTS folder written with nibabel; returns it and the label data as stored."""
    names, separator, enhancing = (
        (BRATS2020_NAMES, "_", 4) if layout == "brats2020" else (BRATS2023_NAMES, "-", 3)
    )
    folder = root / f"Case-{layout}"
    folder.mkdir()
    for seed, key in enumerate(MODALITIES):
        save_nifti(folder / f"Case-{layout}{separator}{names[key]}{suffix}", image_volume(seed=seed), affine)
    labels = label_volume(enhancing=enhancing)
    # BraTS 2020 ships its masks as float64 on disk; 2023 as uint8.
    stored = labels.astype(np.float64) if layout == "brats2020" else labels
    save_nifti(folder / f"Case-{layout}{separator}seg{suffix}", stored, affine)
    return folder, labels


def _check_case_matches_source(case, source_path: Path, source_labels: np.ndarray, enhancing: int) -> None:
    """The case's canonical labels sit at the same world points as the file's labels."""
    on_disk = nib.load(source_path)
    assert case.geometry.source_shape == on_disk.shape
    np.testing.assert_array_equal(case.geometry.source_affine, on_disk.affine)
    assert "".join(nib.aff2axcodes(case.geometry.canonical_affine)) == "".join(CANONICAL_AXCODES)
    indices = np.argwhere(np.ones(case.shape, dtype=bool))
    world = world_coordinates(case.geometry.canonical_affine, indices)
    expected = sample_at_world(source_labels, on_disk.affine, world)
    internal = np.where(expected == enhancing, ET, expected)
    np.testing.assert_array_equal(case.label[tuple(indices.T)], internal)


def _check_written_mask(written: Path, source_path: Path, source_labels: np.ndarray, case) -> None:
    """The written mask has the source file's grid and values, voxel for voxel."""
    mask, source = nib.load(written), nib.load(source_path)
    assert mask.shape == source.shape
    np.testing.assert_array_equal(mask.affine, source.affine)
    assert mask.get_data_dtype() == np.uint8
    assert "".join(nib.aff2axcodes(mask.affine)) == "".join(nib.aff2axcodes(source.affine))
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj), source_labels)
    # Same world coordinates, computed independently of any voxel correspondence.
    for value in (1, 2, ET):
        from_case = world_coordinates(case.geometry.canonical_affine, np.argwhere(case.label == value))
        on_disk = np.asanyarray(mask.dataobj)
        stored_values = (ET, 4) if value == ET else (value,)
        from_file = world_coordinates(mask.affine, np.argwhere(np.isin(on_disk, stored_values)))
        np.testing.assert_allclose(np.sort(from_case, axis=0), np.sort(from_file, axis=0), atol=1e-4)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
@pytest.mark.parametrize("layout", ["brats2020", "brats2023"])
def test_brats_folder_round_trip(tmp_path: Path, layout: str, orientation: str, suffix: str) -> None:
    affine = ORIENTATIONS[orientation]
    folder, labels = _brats_folder(tmp_path, affine, suffix, layout)
    enhancing = 4 if layout == "brats2020" else 3
    separator = "_" if layout == "brats2020" else "-"
    seg_path = folder / f"Case-{layout}{separator}seg{suffix}"

    case = read_case(folder)
    assert case.name == f"Case-{layout}"
    assert case.modalities == MODALITIES
    assert case.label_convention is LabelConvention(layout)
    _check_case_matches_source(case, seg_path, labels, enhancing)
    # Images travel the same way: FLAIR at each world point is the file's value there.
    flair_name = (BRATS2020_NAMES if layout == "brats2020" else BRATS2023_NAMES)["flair"]
    flair_file = folder / f"Case-{layout}{separator}{flair_name}{suffix}"
    indices = np.argwhere(np.ones(case.shape, dtype=bool))
    world = world_coordinates(case.geometry.canonical_affine, indices)
    expected = sample_at_world(image_volume(seed=0), nib.load(flair_file).affine, world)
    np.testing.assert_array_equal(case.images["flair"][tuple(indices.T)], expected)

    out = write_mask(case.label, case.geometry, tmp_path / f"mask{suffix}", convention=case.label_convention)
    with open(out, "rb") as stream:
        assert (stream.read(2) == b"\x1f\x8b") == (suffix == ".nii.gz")
    _check_written_mask(out, seg_path, labels, case)

    again = read_case(modality_files={"flair": flair_file}, seg=out)
    np.testing.assert_array_equal(again.label, case.label)
    assert again.geometry.same_grid(case.geometry, atol=0)


@pytest.mark.parametrize("orientation", ["LPS", "oblique", "permuted"])
def test_explicit_files_round_trip(tmp_path: Path, orientation: str) -> None:
    affine = ORIENTATIONS[orientation]
    labels = label_volume(enhancing=3)
    t1 = save_nifti(tmp_path / "anatomy.nii", image_volume(seed=1), affine)
    t2 = save_nifti(tmp_path / "other.nii.gz", image_volume(seed=3), affine)
    seg = save_nifti(tmp_path / "reference.nii.gz", labels, affine)

    case = read_case(modality_files={"T1": t1, "t2w": t2}, seg=seg)
    assert case.modalities == ("t1", "t2")
    assert case.missing_modalities == ("flair", "t1c")
    assert case.label_convention is LabelConvention.BRATS2023
    assert case.sources == {"t1": t1, "t2": t2, "seg": seg}
    _check_case_matches_source(case, seg, labels, enhancing=3)

    out = write_mask(case.label, case.geometry, tmp_path / "out.nii.gz", convention=case.label_convention)
    _check_written_mask(out, seg, labels, case)
    again = read_case(modality_files={"t1": t1, "seg": out})
    np.testing.assert_array_equal(again.label, case.label)


def test_list_of_files_named_by_role(tmp_path: Path) -> None:
    affine = ORIENTATIONS["RAS"]
    files = [
        save_nifti(tmp_path / "p7_t1ce.nii.gz", image_volume(seed=2), affine),
        save_nifti(tmp_path / "p7_flair.nii.gz", image_volume(seed=0), affine),
        save_nifti(tmp_path / "p7_seg.nii.gz", label_volume(), affine),
    ]
    case = read_case(modality_files=files)
    assert case.name == "p7"
    assert case.modalities == ("flair", "t1c")
    assert case.label is not None and case.label.max() == ET


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("orientation", ["LPS", "oblique", "flipped"])
def test_4d_round_trip(tmp_path: Path, orientation: str, suffix: str) -> None:
    affine = ORIENTATIONS[orientation]
    order = ("t2", "flair", "t1c")
    volumes = [image_volume(seed=seed) for seed in range(len(order))]
    path = save_nifti(tmp_path / f"stack{suffix}", np.stack(volumes, axis=-1), affine)
    labels = label_volume()
    seg = save_nifti(tmp_path / f"stack_seg{suffix}", labels, affine)

    case = read_case(path, order=["T2w", "flair", "t1ce"], seg=seg)
    assert case.modalities == ("flair", "t1c", "t2")
    assert case.geometry.source_shape == SMALL_SHAPE
    for key, volume in zip(order, volumes):
        np.testing.assert_array_equal(case.geometry.from_canonical(case.images[key]), volume)
    _check_case_matches_source(case, seg, labels, enhancing=4)
    out = write_mask(case.label, case.geometry, tmp_path / f"mask{suffix}", convention="brats2020")
    _check_written_mask(out, seg, labels, case)


@pytest.mark.parametrize("orientation", ["anisotropic", "sheared"])
def test_single_3d_file_modality_from_name_or_argument(tmp_path: Path, orientation: str) -> None:
    affine = ORIENTATIONS[orientation]
    named = save_nifti(tmp_path / "sub-01_T2w.nii.gz", image_volume(), affine)
    case = read_case(named)
    assert case.modalities == ("t2",)
    assert case.name == "sub-01"  # the modality suffix is not part of the case id
    np.testing.assert_array_equal(case.geometry.from_canonical(case.images["t2"]), image_volume())

    unnamed = save_nifti(tmp_path / "scan.nii", image_volume(), affine)
    assert read_case(unnamed, modality="t1ce").modalities == ("t1c",)
    assert read_case(unnamed, order=["flair"]).modalities == ("flair",)


def test_images_are_float32_contiguous_and_canonical(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "x_t1.nii.gz", image_volume().astype(np.int16), ORIENTATIONS["permuted"])
    case = read_case(path)
    image = case.images["t1"]
    assert image.dtype == np.float32 and image.flags.c_contiguous
    # PIL source axes (A->P, S->I, R->L) become (S, P, L): only axis 1 (S->I) flips.
    assert case.shape == (SMALL_SHAPE[1], SMALL_SHAPE[0], SMALL_SHAPE[2])
    np.testing.assert_array_equal(image, np.transpose(image_volume().astype(np.int16), (1, 0, 2))[::-1])


def test_4d_stored_as_nifti_vector_5d(tmp_path: Path) -> None:
    """Some tools keep the volumes in NIfTI's 5th (vector) dimension with time left at 1."""
    volumes = [image_volume(seed=seed) for seed in range(2)]
    vector_5d = np.stack(volumes, axis=-1)[:, :, :, np.newaxis, :]
    path = save_nifti(tmp_path / "vec.nii.gz", vector_5d, ORIENTATIONS["LPS"])
    case = read_case(path, order=("t1", "t2"))
    np.testing.assert_array_equal(case.geometry.from_canonical(case.images["t2"]), volumes[1])


def test_explicit_2023_names_make_ambiguous_labels_2023(tmp_path: Path) -> None:
    labels = label_volume(enhancing=2)  # only 0, 1, 2: fits both conventions
    image = save_nifti(tmp_path / "BraTS-MET-00001-000-t1n.nii.gz", image_volume(), ORIENTATIONS["RAS"])
    seg = save_nifti(tmp_path / "BraTS-MET-00001-000-seg.nii.gz", labels, ORIENTATIONS["RAS"])
    assert read_case(modality_files=[image, seg]).label_convention is LabelConvention.BRATS2023
    # "-seg" alone is no hint (both namings use "seg"); with no hint, BraTS 2020.
    other = save_nifti(tmp_path / "anatomy.nii.gz", image_volume(), ORIENTATIONS["RAS"])
    assert read_case(modality_files={"t1": other}, seg=seg).label_convention is LabelConvention.BRATS2020


def test_relative_files_from_a_base_folder_and_seg_override(tmp_path: Path) -> None:
    affine = ORIENTATIONS["LPS"]
    save_nifti(tmp_path / "a.nii.gz", image_volume(), affine)
    save_nifti(tmp_path / "mask.nii.gz", label_volume(enhancing=3), affine)
    case = read_case(tmp_path, modality_files={"flair": "a.nii.gz", "seg": "mask.nii.gz"})
    assert case.sources == {"flair": tmp_path / "a.nii.gz", "seg": tmp_path / "mask.nii.gz"}
    assert case.label_convention is LabelConvention.BRATS2023

    folder = tmp_path / "P"
    folder.mkdir()
    save_nifti(folder / "P_t2.nii.gz", image_volume(), affine)
    save_nifti(folder / "P_seg.nii.gz", label_volume(enhancing=4), affine)
    assert read_case(folder).label_convention is LabelConvention.BRATS2020
    overridden = read_case(folder, seg=tmp_path / "mask.nii.gz")
    assert overridden.sources["seg"] == tmp_path / "mask.nii.gz"
    assert overridden.label_convention is LabelConvention.BRATS2023
