"""The napari contributions through a real viewer: reader, writer, sample data."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_tumorseg._reader import get_reader
from napari_tumorseg._writer import write_labels
from napari_tumorseg.io import read_case
from napari_tumorseg.io.labels import ET

pytestmark = pytest.mark.gui


def test_get_reader_declines_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path)) is None  # a folder with no case files


def test_reader_opens_case_folder_in_viewer(make_napari_viewer, small_glioma_folder, small_glioma):
    viewer = make_napari_viewer()
    layers = viewer.open(str(small_glioma_folder), plugin="napari-tumorseg")
    names = [layer.name for layer in layers]
    assert names[:4] == ["FLAIR", "T1", "T1c", "T2"]
    flair = viewer.layers["FLAIR"]
    np.testing.assert_allclose(flair.scale, small_glioma.geometry.spacing)
    low, high = flair.contrast_limits
    assert 0 < high and low < high
    mask = next(layer for layer in layers if layer.__class__.__name__ == "Labels")
    np.testing.assert_array_equal(mask.data, small_glioma.label)
    # The status bar names classes, and enhancing tumour has its BraTS colour.
    assert "enhancing tumour" in list(mask.features["class"])
    assert mask.colormap.map(np.array([ET]))[0][:3] == pytest.approx((1.0, 0.9, 0.1), abs=0.02)


def test_writer_restores_source_grid(make_napari_viewer, small_glioma_folder, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(small_glioma_folder), plugin="napari-tumorseg")
    mask = next(layer for layer in viewer.layers if layer.__class__.__name__ == "Labels")
    edited = mask.data.copy()
    edited[edited.shape[0] // 2, 10:14, 10:14] = ET  # a correction painted by hand
    mask.data = edited
    out = tmp_path / "exported_seg.nii.gz"
    viewer.layers.selection = {mask}
    written = viewer.layers.save(str(out), selected=True, plugin="napari-tumorseg")
    assert written == [str(out)]
    source = nib.load(next(small_glioma_folder.glob("*_seg.nii.gz")))
    exported = nib.load(out)
    assert exported.shape == source.shape
    np.testing.assert_allclose(exported.affine, source.affine)
    assert exported.get_data_dtype() == np.uint8
    # Read back through the core: the painted voxels are where they were painted.
    on_disk = np.asarray(exported.dataobj)
    assert set(np.unique(on_disk)) <= {0, 1, 2, 4}  # written back in the case's 2020 convention
    case = read_case(small_glioma_folder)
    back = case.geometry.to_canonical(on_disk)
    np.testing.assert_array_equal(back == 4, edited == ET)


def test_writer_without_case_metadata_uses_layer_scale(tmp_path):
    labels = np.zeros((6, 7, 8), dtype=np.uint8)
    labels[2, 3, 4] = 2
    out = tmp_path / "drawn.nii"
    write_labels(str(out), labels, {"scale": (2.0, 1.0, 0.5), "metadata": {}})
    image = nib.load(out)
    assert sorted(image.header.get_zooms()) == [0.5, 1.0, 2.0]
    assert int(np.asarray(image.dataobj).sum()) == 2


@pytest.mark.parametrize("key", ["glioma", "metastasis"])
def test_sample_data_opens(make_napari_viewer, key, monkeypatch):
    import napari_tumorseg._sample_data as sample_data
    from napari_tumorseg.synth import make_case

    # The real samples are BraTS-size; a small one proves the wiring just as well.
    monkeypatch.setattr(sample_data, "sample_case", lambda domain, seed=0: make_case(domain, seed, shape=(32, 48, 48)))
    viewer = make_napari_viewer()
    viewer.open_sample("napari-tumorseg", key)
    names = [layer.name for layer in viewer.layers]
    assert names[:4] == ["FLAIR", "T1", "T1c", "T2"]
    assert any(layer.__class__.__name__ == "Labels" and layer.data.any() for layer in viewer.layers)
