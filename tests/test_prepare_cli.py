"""`tumorseg prepare` and `tumorseg segment` on raw scans: files on the right grids, one-line refusals."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from prepare_fixtures import head_phantom, raw_head_scan, raw_stripped_scan  # noqa: F401 (fixtures)

from napari_tumorseg.cli import main


@pytest.fixture
def tiny_checkpoint(tmp_path, torch_single_thread):
    from napari_tumorseg.models import build_model
    from napari_tumorseg.models.checkpoint import save_checkpoint

    torch_single_thread.manual_seed(1)
    return save_checkpoint(tmp_path / "tiny.safetensors", build_model("unet", base_width=4, depth=2))


def _file(folder, suffix):
    return next(folder.glob(f"*_{suffix}.nii.gz"))


def test_prepare_writes_the_case_the_brain_mask_and_the_report(raw_stripped_scan, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "prepared"
    assert main(["prepare", str(raw_stripped_scan.folder), "-o", str(out), "--quiet", "--threads", "1"]) == 0
    reference = nib.load(_file(raw_stripped_scan.folder, "t1ce"))
    for suffix in ("flair", "t1", "t1ce", "t2"):
        image = nib.load(_file(out, suffix))
        assert image.shape == reference.shape
        np.testing.assert_allclose(image.affine, reference.affine, atol=1e-4)
    brain = nib.load(out / "brain_mask.nii.gz")
    assert brain.shape == reference.shape and set(np.unique(np.asarray(brain.dataobj))) == {0, 1}
    report = json.loads((out / "prepare.json").read_text(encoding="utf-8"))
    assert report["reference"] == "t1c" and report["needs_preparation"]
    flair = report["sequences"]["flair"]
    assert np.asarray(flair["transform"]["matrix_ras"]).shape == (4, 4) and flair["registration"]["nmi_after"] > 1
    assert flair["grid"]["spacing_mm"][0] == pytest.approx(10.0)
    assert report["command"].startswith("tumorseg prepare " + str(raw_stripped_scan.folder)) and report["machine"]["cpu_cores"]
    # A second run refuses to replace anything, in one line.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(["prepare", str(raw_stripped_scan.folder), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize("grid, suffix", [("reference", "t1ce"), ("flair", "flair")])
def test_segment_prepares_a_raw_scan_and_writes_on_the_chosen_grid(raw_stripped_scan, tiny_checkpoint, tmp_path,  # noqa: F811
                                                                   capsys, grid, suffix):
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(raw_stripped_scan.folder), "-o", str(out), "--model", str(tiny_checkpoint),
                 "--grid", grid, "--quiet", "--threads", "1"]) == 0
    target = nib.load(_file(raw_stripped_scan.folder, suffix))
    mask = nib.load(out)
    assert mask.shape == target.shape
    np.testing.assert_allclose(mask.affine, target.affine, atol=1e-4)
    assert "prepared: registered FLAIR onto T1c" in capsys.readouterr().err


def test_segment_without_preparing_refuses_a_raw_scan_in_one_line(raw_stripped_scan, raw_head_scan, tiny_checkpoint,  # noqa: F811
                                                                   tmp_path, capsys):
    for scan, says in ((raw_stripped_scan, "is on another grid"), (raw_head_scan, "the head still has its skull")):
        out = tmp_path / "mask.nii.gz"
        assert main(["segment", str(scan.folder), "-o", str(out), "--model", str(tiny_checkpoint),
                     "--no-prepare"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0] and "prepare" in err[0], err
        assert not out.exists()


def test_a_single_skull_on_t1c_is_prepared_segmented_and_the_missing_sequences_named(raw_head_scan, tiny_checkpoint,  # noqa: F811
                                                                                    tmp_path, capsys):
    import shutil

    folder = tmp_path / "t1c_only"
    folder.mkdir()
    shutil.copy(_file(raw_head_scan.folder, "t1ce"), folder)
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(folder), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet",
                 "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "extracted the brain" in err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "has no FLAIR, T1, T2" in warning[0] and "from T1c only" in warning[0], err
    t1c = nib.load(next(folder.iterdir()))
    assert nib.load(out).shape == t1c.shape


def test_a_brats_style_case_is_segmented_as_before(small_glioma_folder, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(small_glioma_folder), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet",
                 "--no-prepare"]) == 0
    err = capsys.readouterr().err
    assert "prepared:" not in err and "warning" not in err  # all four sequences: nothing to warn about
