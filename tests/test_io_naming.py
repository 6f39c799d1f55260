"""File-name rules: BraTS suffixes (``_t1`` is not ``_t1ce``), modality guessing, cheap case detection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from napari_tumorseg.io import find_case_files, looks_like_case
from napari_tumorseg.io.naming import (
    brats_role,
    case_file_name,
    guess_modality,
    nifti_stem,
    normalize_modality,
)


@pytest.mark.parametrize(
    ("name", "role", "prefix", "scheme"),
    [
        ("BraTS20_Training_001_t1.nii.gz", "t1", "BraTS20_Training_001", "brats2020"),
        ("BraTS20_Training_001_t1ce.nii.gz", "t1c", "BraTS20_Training_001", "brats2020"),
        ("BraTS20_Training_001_flair.nii", "flair", "BraTS20_Training_001", "brats2020"),
        ("BraTS20_Training_001_T2.NII.GZ", "t2", "BraTS20_Training_001", "brats2020"),
        ("BraTS20_Training_001_seg.nii.gz", "seg", "BraTS20_Training_001", "both"),
        ("BraTS-GLI-00000-000-t2f.nii.gz", "flair", "BraTS-GLI-00000-000", "brats2023"),
        ("BraTS-GLI-00000-000-t1n.nii.gz", "t1", "BraTS-GLI-00000-000", "brats2023"),
        ("BraTS-GLI-00000-000-t1c.nii.gz", "t1c", "BraTS-GLI-00000-000", "brats2023"),
        ("BraTS-GLI-00000-000-t2w.nii", "t2", "BraTS-GLI-00000-000", "brats2023"),
        ("BraTS-MET-00001-000-seg.nii.gz", "seg", "BraTS-MET-00001-000", "both"),
        ("flair.nii.gz", "flair", "", "brats2020"),
    ],
)
def test_brats_role(name: str, role: str, prefix: str, scheme: str) -> None:
    assert brats_role(name) == (role, prefix, scheme)


@pytest.mark.parametrize(
    "name", ["case_t1.txt", "case_t1ce_mask.nii.gz", "case_t1x.nii.gz", "caset1.nii.gz", ".nii.gz", "t1.json"]
)
def test_brats_role_rejects(name: str) -> None:
    assert brats_role(name) is None


def test_nifti_stem() -> None:
    assert nifti_stem("a/b/x_t1.nii.gz") == "x_t1"
    assert nifti_stem("x.NII") == "x"


@pytest.mark.parametrize(
    ("text", "modality"),
    [
        ("AX T2 FLAIR", "flair"),
        ("t2_flair_tra", "flair"),
        ("sub-01_t2f", "flair"),
        ("T1 MPRAGE", "t1"),
        ("t1_se_tra", "t1"),
        ("sub-01_T1w", "t1"),
        ("T1 POST GD", "t1c"),
        ("T1+C", "t1c"),
        ("t1_mprage_gad", "t1c"),
        ("T1CE", "t1c"),
        ("x_t1ce", "t1c"),
        ("T2W_TSE", "t2"),
        ("t2", "t2"),
        ("DWI b1000", None),
        ("T1 and T2 map", None),
        ("localizer", None),
    ],
)
def test_guess_modality(text: str, modality: str | None) -> None:
    assert guess_modality(text) == modality


@pytest.mark.parametrize(
    ("spelled", "key"),
    [("FLAIR", "flair"), ("t2f", "flair"), ("T1ce", "t1c"), ("t1-gd", "t1c"), ("T2w", "t2"), ("pd", None)],
)
def test_normalize_modality(spelled: str, key: str | None) -> None:
    assert normalize_modality(spelled) == key


def test_case_file_names() -> None:
    assert case_file_name("P1", "t1c", "brats2020") == "P1_t1ce.nii.gz"
    assert case_file_name("P1", "flair", "brats2023", ".nii") == "P1-t2f.nii"
    assert case_file_name("P1", "seg", "brats2023") == "P1-seg.nii.gz"


def test_find_case_files_keeps_t1_and_t1ce_apart(tmp_path: Path) -> None:
    names = ("P_t1.nii.gz", "P_t1ce.nii.gz", "P_seg.nii.gz", "P_t1.json", ".P_t2.nii.gz.tmp", "readme.txt")
    for name in names:
        (tmp_path / name).write_bytes(b"")
    found = find_case_files(tmp_path)
    assert found.files == {
        "t1": tmp_path / "P_t1.nii.gz",
        "t1c": tmp_path / "P_t1ce.nii.gz",
        "seg": tmp_path / "P_seg.nii.gz",
    }
    assert found.modalities == ("t1", "t1c")
    assert found.name == "P"
    assert found.scheme == "brats2020"


def test_looks_like_case(tmp_path: Path) -> None:
    brats = tmp_path / "brats"
    brats.mkdir()
    (brats / "X-t2w.nii.gz").write_bytes(b"")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    (tmp_path / "scan.nii").write_bytes(b"")
    (tmp_path / "x_seg.nii.gz").write_bytes(b"")
    assert looks_like_case(brats)
    assert looks_like_case(tmp_path / "scan.nii")
    assert not looks_like_case(other)
    assert not looks_like_case(tmp_path / "x_seg.nii.gz")  # a mask alone is not a case
    assert not looks_like_case(tmp_path / "other" / "notes.txt")
    assert not looks_like_case(tmp_path / "missing")


def test_importing_io_does_not_import_nibabel_or_simpleitk() -> None:
    code = (
        "import sys, napari_tumorseg.io, napari_tumorseg.cli.info; "
        "print(sorted(m for m in ('nibabel', 'SimpleITK', 'napari', 'qtpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
