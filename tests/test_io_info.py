"""``tumorseg info``: what it prints for good cases, and exit status 2 with one line for bad ones."""

from __future__ import annotations

import json
from collections.abc import Callable
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_tumorseg.cli import main
from napari_tumorseg.io.testing import ORIENTATIONS, image_volume, label_volume, save_nifti


@pytest.fixture()
def brats_case(tmp_path: Path) -> Path:
    folder = tmp_path / "BraTS20_Training_009"
    folder.mkdir()
    affine = ORIENTATIONS["anisotropic"]  # LPS, 0.5 x 0.75 x 4 mm
    save_nifti(folder / "BraTS20_Training_009_flair.nii.gz", image_volume(), affine)
    save_nifti(folder / "BraTS20_Training_009_t1ce.nii.gz", image_volume(seed=2), affine)
    save_nifti(folder / "BraTS20_Training_009_seg.nii.gz", label_volume(enhancing=4), affine)
    return folder


def test_info_text(brats_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(brats_case)]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) if " " in line.strip() else (line, "") for line in out.splitlines())
    assert "BraTS20_Training_009" in lines["case"]
    assert lines["modalities"].strip() == "FLAIR, T1c"
    assert lines["missing"].strip() == "T1, T2"
    assert lines["shape"].startswith("20 x 24 x 16")
    assert lines["spacing"].strip() == "0.5 x 0.75 x 4 mm"
    assert lines["orientation"].strip() == "LPS"
    assert lines["labels"].strip() == "brats2020 convention"
    assert "present" in out and "BraTS20_Training_009_seg.nii.gz" in out


def test_info_json(brats_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(brats_case), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["modalities"] == ["flair", "t1c"]
    assert summary["missing_modalities"] == ["t1", "t2"]
    assert summary["shape"] == [20, 24, 16]
    assert summary["spacing_mm"] == [0.5, 0.75, 4.0]
    assert summary["orientation"] == "LPS"
    assert summary["reference_mask"] is True
    assert summary["label_convention"] == "brats2020"
    expected = label_volume(enhancing=4)
    assert summary["label_voxels"]["ET"] == int(np.count_nonzero(expected == 4))
    assert summary["label_voxels"]["NCR"] == int(np.count_nonzero(expected == 1))
    np.testing.assert_allclose(summary["affine"], ORIENTATIONS["anisotropic"])


def test_info_4d_with_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = np.stack([image_volume()] * 2, axis=-1)
    path = save_nifti(tmp_path / "stack.nii", stack, ORIENTATIONS["oblique"])
    assert main(["info", str(path), "--order", "t2w, t1ce", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["modalities"] == ["t1c", "t2"]
    assert summary["reference_mask"] is False
    assert summary["label_voxels"] is None


def test_info_reports_repairs_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = image_volume()
    image[0, 0, 0] = np.nan
    path = save_nifti(tmp_path / "x_t1.nii.gz", image, ORIENTATIONS["RAS"])
    assert main(["info", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.strip() == f"tumorseg: warning: {path}: 1 NaN or infinite voxel(s) replaced by 0"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "nowhere", "nowhere: no such file or folder"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "empty: the folder is empty"),
        (
            lambda root: (root / "bad_t1.nii").write_bytes(b"garbage" * 100) and root / "bad_t1.nii",
            "bad_t1.nii: unreadable, truncated or corrupt NIfTI file",
        ),
    ],
)
def test_info_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], message: str
) -> None:
    target = make(tmp_path)
    assert main(["info", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("tumorseg: error: ") and message in err_lines[0]


def test_info_command_line_has_no_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "x_flair.nii.gz"
    content = save_nifti(broken, image_volume(), ORIENTATIONS["LPS"]).read_bytes()
    broken.write_bytes(content[: len(content) // 2])
    result = subprocess.run(
        [sys.executable, "-m", "napari_tumorseg", "info", str(broken)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"tumorseg: error: {broken}: unreadable, truncated or corrupt NIfTI file")
    assert len(result.stderr.strip().splitlines()) == 1
