"""Writing: masks and cases on the source grid, label conventions both ways, atomic and no-clobber writes."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import napari_tumorseg.io.atomic as atomic
from napari_tumorseg.errors import CaseError, WriteError
from napari_tumorseg.io import Case, Geometry, LabelConvention, case_paths, read_case, write_case, write_mask
from napari_tumorseg.io.labels import ED, ET, NCR
from napari_tumorseg.io.testing import ORIENTATIONS, SMALL_SHAPE, label_volume

RNG_SEED = 3


def _case(orientation: str = "oblique", modalities: tuple[str, ...] = ("flair", "t1", "t1c", "t2")) -> Case:
    geometry = Geometry(ORIENTATIONS[orientation], SMALL_SHAPE)
    rng = np.random.default_rng(RNG_SEED)
    images = {key: rng.normal(size=geometry.canonical_shape).astype(np.float32) for key in modalities}
    label = geometry.to_canonical(label_volume(enhancing=ET))
    return Case("Sub-7", images, geometry, np.ascontiguousarray(label))


def _folder_listing(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


@pytest.mark.parametrize("orientation", ["LPS", "permuted", "sheared"])
@pytest.mark.parametrize(("layout", "enhancing"), [("brats2020", 4), ("brats2023", 3)])
def test_write_case_then_read_case_is_identity(
    tmp_path: Path, orientation: str, layout: str, enhancing: int
) -> None:
    case = _case(orientation, modalities=("flair", "t1c", "t2"))
    folder = write_case(case, tmp_path / "out", layout=layout)
    expected_names = (
        ["Sub-7_flair.nii.gz", "Sub-7_seg.nii.gz", "Sub-7_t1ce.nii.gz", "Sub-7_t2.nii.gz"]
        if layout == "brats2020"
        else ["Sub-7-seg.nii.gz", "Sub-7-t1c.nii.gz", "Sub-7-t2f.nii.gz", "Sub-7-t2w.nii.gz"]
    )
    assert _folder_listing(folder) == expected_names
    seg = nib.load(case_paths(case, folder, layout)["seg"])
    assert seg.get_data_dtype() == np.uint8
    assert set(np.unique(np.asanyarray(seg.dataobj)).tolist()) == {0, NCR, ED, enhancing}
    flair = nib.load(case_paths(case, folder, layout)["flair"])
    assert flair.get_data_dtype() == np.float32 and flair.shape == SMALL_SHAPE

    again = read_case(folder)
    assert again.name == "Sub-7"
    assert again.modalities == case.modalities
    assert again.label_convention is LabelConvention(layout)
    np.testing.assert_allclose(again.geometry.source_affine, case.geometry.source_affine, atol=1e-5)
    for key in case.modalities:
        np.testing.assert_array_equal(again.images[key], case.images[key])
    np.testing.assert_array_equal(again.label, case.label)


@pytest.mark.parametrize("orientation", ["LPS", "oblique", "flipped"])
def test_mask_header_has_sform_and_qform(tmp_path: Path, orientation: str) -> None:
    case = _case(orientation)
    out = write_mask(case.label, case.geometry, tmp_path / "m.nii", convention="brats2020")
    image = nib.load(out)
    sform, sform_code = image.get_sform(coded=True)
    qform, qform_code = image.get_qform(coded=True)
    assert int(sform_code) == int(qform_code) == 1
    np.testing.assert_allclose(sform, case.geometry.source_affine, atol=1e-5)
    np.testing.assert_allclose(qform, case.geometry.source_affine, atol=1e-4)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert (image.dataobj.slope, image.dataobj.inter) == (1.0, 0.0)


def test_sheared_grid_keeps_the_sform_only(tmp_path: Path) -> None:
    case = _case("sheared")
    out = write_mask(case.label, case.geometry, tmp_path / "m.nii.gz", convention="brats2023")
    image = nib.load(out)
    assert int(image.get_qform(coded=True)[1]) == 0
    np.testing.assert_allclose(image.affine, case.geometry.source_affine, atol=1e-6)


@pytest.mark.parametrize(
    ("convention", "on_disk_et"), [(LabelConvention.BRATS2020, 4), (LabelConvention.BRATS2023, 3)]
)
def test_label_conventions_both_ways(tmp_path: Path, convention: LabelConvention, on_disk_et: int) -> None:
    case = _case("RAS", modalities=("t1",))
    out = write_mask(case.label, case.geometry, tmp_path / "m.nii.gz", convention=convention.value)
    on_disk = np.asanyarray(nib.load(out).dataobj)
    source_internal = case.geometry.from_canonical(case.label)
    np.testing.assert_array_equal(on_disk == on_disk_et, source_internal == ET)
    np.testing.assert_array_equal(on_disk == NCR, source_internal == NCR)
    np.testing.assert_array_equal(on_disk == ED, source_internal == ED)
    back = read_case(modality_files={"t1": write_mask_image(case, tmp_path)}, seg=out)
    assert back.label_convention is convention
    np.testing.assert_array_equal(back.label, case.label)


def write_mask_image(case: Case, folder: Path) -> Path:
    """The case's T1 on disk, to pair a mask with."""
    return case_paths(case, write_case(case, folder / "case", overwrite=True), "brats2020")["t1"]


def test_ambiguous_labels_take_the_layout_default(tmp_path: Path) -> None:
    case = _case("LPS", modalities=("t2",))
    case.label[case.label == ET] = ED  # only 0, 1, 2: fits both conventions
    for layout in ("brats2023", "brats2020"):
        folder = write_case(case, tmp_path / layout, layout=layout)
        assert read_case(folder).label_convention.value == layout


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    case = _case()
    target = tmp_path / "mask.nii.gz"
    target.write_bytes(b"precious")
    with pytest.raises(WriteError, match="mask.nii.gz: already exists"):
        write_mask(case.label, case.geometry, target, convention="brats2020")
    assert target.read_bytes() == b"precious"
    assert _folder_listing(tmp_path) == ["mask.nii.gz"]
    write_mask(case.label, case.geometry, target, convention="brats2020", overwrite=True)
    assert nib.load(target).shape == SMALL_SHAPE


def test_write_case_refuses_before_writing_anything(tmp_path: Path) -> None:
    case = _case()
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "Sub-7_seg.nii.gz").write_bytes(b"old")
    with pytest.raises(WriteError, match="Sub-7_seg.nii.gz: already exists"):
        write_case(case, folder)
    assert _folder_listing(folder) == ["Sub-7_seg.nii.gz"]
    write_case(case, folder, overwrite=True)
    assert len(_folder_listing(folder)) == 5


def test_failure_mid_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case()

    def half_then_fail(stream, data: bytes) -> None:
        stream.write(data[: len(data) // 2])
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(atomic, "_write_all", half_then_fail)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_mask(case.label, case.geometry, tmp_path / "mask.nii.gz", convention="brats2020")
    assert _folder_listing(tmp_path) == []


def test_disk_full_mid_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case()
    target = tmp_path / "mask.nii"
    target.write_bytes(b"old mask")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(WriteError, match="mask.nii: cannot write: No space left on device"):
        write_mask(case.label, case.geometry, target, convention="brats2020", overwrite=True)
    assert target.read_bytes() == b"old mask"
    assert _folder_listing(tmp_path) == ["mask.nii"]


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    case = _case()
    first = write_mask(case.label, case.geometry, tmp_path / "a.nii.gz", convention="brats2020")
    second = write_mask(case.label, case.geometry, tmp_path / "b.nii.gz", convention="brats2020")
    assert first.read_bytes() == second.read_bytes()


def test_bad_mask_writes(tmp_path: Path) -> None:
    case = _case()
    with pytest.raises(CaseError, match=r"mask.png: the file name must end in .nii or .nii.gz"):
        write_mask(case.label, case.geometry, tmp_path / "mask.png", convention="brats2020")
    with pytest.raises(CaseError, match=r"m.nii: mask shape \(16, 24, 20\) is not the case grid"):
        other_grid = Geometry(ORIENTATIONS["RAS"], (16, 24, 21))
        write_mask(np.zeros((16, 24, 20), np.uint8), other_grid, tmp_path / "m.nii", convention="brats2020")
    wrong = case.label.copy()
    wrong[0, 0, 0] = 4
    with pytest.raises(CaseError, match=r"m.nii: internal labels must be 0..3, got 4"):
        write_mask(wrong, case.geometry, tmp_path / "m.nii", convention="brats2020")
    with pytest.raises(WriteError, match=r"missing/m.nii: cannot write: the folder does not exist"):
        write_mask(case.label, case.geometry, tmp_path / "missing" / "m.nii", convention="brats2020")
    assert _folder_listing(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    """The temporary file is private (0600); the published one follows the umask, or keeps its old mode."""
    case = _case()
    umask = os.umask(0o022)
    try:
        fresh = write_mask(case.label, case.geometry, tmp_path / "new.nii", convention="brats2020")
        assert fresh.stat().st_mode & 0o777 == 0o644
        fresh.chmod(0o640)
        write_mask(case.label, case.geometry, fresh, convention="brats2020", overwrite=True)
        assert fresh.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)


def test_stream_writer_failing_midway_leaves_the_previous_file(tmp_path):
    target = tmp_path / "cache.npz"
    target.write_bytes(b"previous")

    def write_half_then_fail(stream):
        np.savez(stream, a=np.arange(10))
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError, match="No space left on device"):
        atomic.atomic_write_stream(target, write_half_then_fail, overwrite=True)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["cache.npz"]  # no temporary file left behind

    atomic.atomic_write_stream(target, lambda stream: np.savez(stream, a=np.arange(10)), overwrite=True)
    np.testing.assert_array_equal(np.load(target)["a"], np.arange(10))
