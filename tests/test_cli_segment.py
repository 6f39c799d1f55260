"""`tumorseg segment`: the mask lands on the input's grid, in its convention; bad input is one line."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_tumorseg.cli import main


@pytest.fixture
def tiny_checkpoint(tmp_path, torch_single_thread):
    from napari_tumorseg.models import build_model
    from napari_tumorseg.models.checkpoint import save_checkpoint

    torch_single_thread.manual_seed(1)
    return save_checkpoint(tmp_path / "tiny.safetensors", build_model("unet", base_width=4, depth=2))


def test_segment_writes_mask_on_source_grid(small_glioma_folder, tiny_checkpoint, tmp_path):
    from napari_tumorseg.inference.segmenter import segment_case
    from napari_tumorseg.io import read_case

    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(small_glioma_folder), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet"]) == 0
    source = nib.load(next(small_glioma_folder.glob("*_flair.nii.gz")))
    mask = nib.load(out)
    assert mask.shape == source.shape
    np.testing.assert_allclose(mask.affine, source.affine)
    case = read_case(small_glioma_folder)
    expected = segment_case(case, tiny_checkpoint, device="cpu").labels
    on_disk = case.geometry.to_canonical(np.asarray(mask.dataobj))
    np.testing.assert_array_equal(on_disk, np.where(expected == 3, 4, expected))  # 2020 convention, as the input


def test_segment_averages_over_the_flips_asked_for(small_glioma_folder, tiny_checkpoint, tmp_path, capsys):
    from napari_tumorseg.inference.segmenter import segment_case
    from napari_tumorseg.io import read_case

    out = tmp_path / "mask.nii.gz"
    command = ["segment", str(small_glioma_folder), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet"]
    assert main([*command, "--mirror", "all"]) == 0
    case = read_case(small_glioma_folder)
    expected = segment_case(case, tiny_checkpoint, device="cpu", mirror="all").labels
    plain = segment_case(case, tiny_checkpoint, device="cpu", mirror="none").labels
    assert (expected != plain).any()  # else this test could not tell the two apart
    on_disk = case.geometry.to_canonical(np.asarray(nib.load(out).dataobj))
    np.testing.assert_array_equal(on_disk, np.where(expected == 3, 4, expected))
    with pytest.raises(SystemExit) as refused:
        main([*command, "--mirror", "sideways", "--overwrite"])
    assert refused.value.code == 2 and "invalid choice: 'sideways'" in capsys.readouterr().err


def test_segment_keeps_uncertain_components_when_asked_and_says_what_it_left_out(
    small_glioma_folder, tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    from napari_tumorseg.inference import postprocess
    from napari_tumorseg.io import read_case

    monkeypatch.setattr(postprocess, "DEFAULT_UNCERTAIN_MEAN", 1.01)  # an untrained network: every spot is unsure
    monkeypatch.setattr(postprocess, "DEFAULT_UNCERTAIN_MAX_ML", 1e6)
    case = read_case(small_glioma_folder)
    masks = {}
    for flags in ([], ["--keep-uncertain"]):
        out = tmp_path / f"mask{len(flags)}.nii.gz"
        assert main(["segment", str(small_glioma_folder), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet",
                     *flags]) == 0
        masks[len(flags)] = case.geometry.to_canonical(np.asarray(nib.load(out).dataobj))
        said = capsys.readouterr().err
        assert ("small uncertain tumour component(s)" in said) == (not flags)
    assert not masks[0].any() and masks[1].any()


def test_segment_refuses_to_overwrite_and_reports_bad_input(small_glioma_folder, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "exists.nii.gz"
    out.write_bytes(b"keep me")
    assert main(["segment", str(small_glioma_folder), "-o", str(out), "--model", str(tiny_checkpoint)]) == 2
    assert out.read_bytes() == b"keep me"
    assert "already exists" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["segment", str(empty), "-o", str(tmp_path / "x.nii.gz"), "--model", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty" in err[0]
