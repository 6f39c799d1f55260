"""Speck removal: small tumour components go, real lesions (however small) stay."""

from __future__ import annotations

import numpy as np

from napari_tumorseg.inference.postprocess import remove_small_lesions


def test_specks_removed_lesions_kept():
    labels = np.zeros((20, 30, 30), np.uint8)
    labels[5:9, 5:9, 5:9] = 3  # 64 mm³: a small metastasis stays
    labels[15, 20, 20] = 2  # a lone voxel: gone
    labels[2, 25:27, 25:27] = 1  # 4 voxels: gone
    cleaned, removed = remove_small_lesions(labels, (1.0, 1.0, 1.0), 20.0)
    assert removed == 2
    assert cleaned[5:9, 5:9, 5:9].min() == 3 and cleaned.sum() == 64 * 3
    assert labels[15, 20, 20] == 2  # the input is not modified


def test_volume_threshold_uses_spacing():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2:4, 2:4, 2:4] = 1  # 8 voxels
    assert remove_small_lesions(labels, (1.0, 1.0, 1.0), 20.0)[1] == 1
    assert remove_small_lesions(labels, (3.0, 1.0, 1.0), 20.0)[1] == 0  # 24 mm³ with thick slices


def test_segmenter_removes_specks(small_glioma, torch_single_thread):
    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.models import build_model

    torch_single_thread.manual_seed(3)
    model = build_model("unet", base_width=4, depth=2)
    raw = Segmenter(model, device="cpu", min_lesion_mm3=0).segment(small_glioma).labels
    cleaned = Segmenter(model, device="cpu").segment(small_glioma).labels
    expected, _ = remove_small_lesions(raw, small_glioma.geometry.spacing)
    np.testing.assert_array_equal(cleaned, expected)
