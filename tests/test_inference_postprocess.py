"""Speck removal: small tumour components go, real lesions (however small) stay; small uncertain components go."""

from __future__ import annotations

import numpy as np

from napari_tumorseg.inference.postprocess import (
    clean_labels,
    component_confidence,
    remove_small_lesions,
    remove_uncertain_lesions,
    tumour_components,
)


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
    raw = Segmenter(model, device="cpu", min_lesion_mm3=0, uncertain_max_ml=0).segment(small_glioma).labels
    cleaned = Segmenter(model, device="cpu", uncertain_max_ml=0).segment(small_glioma).labels
    expected, _ = remove_small_lesions(raw, small_glioma.geometry.spacing)
    np.testing.assert_array_equal(cleaned, expected)


def _three_components() -> tuple[np.ndarray, np.ndarray]:
    """Labels with a confident small lesion, an uncertain small one and an uncertain large one (1 mm voxels)."""
    labels = np.zeros((20, 40, 40), np.uint8)
    probability = np.zeros(labels.shape, np.float32)
    labels[2:6, 2:6, 2:6], probability[2:6, 2:6, 2:6] = 3, 0.95  # 64 mm³, confident: stays
    labels[10:14, 2:6, 2:6], probability[10:14, 2:6, 2:6] = 2, 0.6  # 64 mm³, uncertain: goes
    labels[2:12, 10:30, 10:30], probability[2:12, 10:30, 10:30] = 2, 0.6  # 4 ml, uncertain but large: stays
    return labels, probability


def test_uncertain_small_components_removed():
    labels, probability = _three_components()
    cleaned, removed = remove_uncertain_lesions(labels, probability, (1.0, 1.0, 1.0), max_ml=1.0, min_mean=0.8)
    assert removed == 1
    assert cleaned[10:14, 2:6, 2:6].max() == 0
    assert cleaned[2:6, 2:6, 2:6].min() == 3 and cleaned[2:12, 10:30, 10:30].min() == 2
    assert labels[10:14, 2:6, 2:6].min() == 2  # the input is not modified
    # the volume limit uses the spacing: with 4 mm slices the uncertain small one is 0.256 ml, still under 1 ml,
    # and the large one 16 ml
    assert remove_uncertain_lesions(labels, probability, (4.0, 1.0, 1.0), 1.0, 0.8)[1] == 1
    assert remove_uncertain_lesions(labels, probability, (1.0, 1.0, 1.0), 5.0, 0.8)[1] == 2
    assert remove_uncertain_lesions(labels, probability, (1.0, 1.0, 1.0), 0.0, 0.8)[1] == 0  # 0: off


def test_both_rules_in_one_pass_count_a_speck_once():
    labels, probability = _three_components()
    cleaned, specks, uncertain = clean_labels(labels, (1.0, 1.0, 1.0), probability, 100.0, 1.0, 0.8)
    assert (specks, uncertain) == (2, 0)  # both 64 mm³ components are specks at 100 mm³, the unsure one included
    assert cleaned[2:6, 2:6, 2:6].max() == 0 and cleaned[2:12, 10:30, 10:30].min() == 2
    cleaned, specks, uncertain = clean_labels(labels, (1.0, 1.0, 1.0), probability, 20.0, 1.0, 0.8)
    assert (specks, uncertain) == (0, 1)
    two_steps = remove_uncertain_lesions(remove_small_lesions(labels, (1.0,) * 3, 20.0)[0], probability, (1.0,) * 3)[0]
    np.testing.assert_array_equal(cleaned, two_steps)


def test_confidence_is_the_mean_over_the_component_in_either_storage():
    labels, probability = _three_components()
    probability[10, 2, 2] = 0.0  # one voxel of the second component lowers its mean by 0.6 / 64
    components, count = tumour_components(labels)
    mean = component_confidence(components, count, probability)
    np.testing.assert_allclose(sorted(mean), sorted([0.95, 0.6 - 0.6 / 64, 0.6]), atol=1e-6)
    as_uint8 = np.rint(probability * 255).astype(np.uint8)
    np.testing.assert_allclose(component_confidence(components, count, as_uint8), mean, atol=0.5 / 255)


def test_segmenter_removes_uncertain_components(small_glioma, torch_single_thread):
    """The Segmenter applies the rule to its labels, with 1 − P(background) as it stores it, whatever it keeps."""
    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.models import build_model

    torch_single_thread.manual_seed(5)  # an untrained network that scatters many small, unsure components
    model = build_model("unet", base_width=4, depth=2)
    raw = Segmenter(model, device="cpu", uncertain_max_ml=0).segment(small_glioma)
    rule = {"uncertain_max_ml": 1.0, "uncertain_mean": 0.7}
    expected, removed = remove_uncertain_lesions(
        raw.labels, 255 - raw.probabilities[0], small_glioma.geometry.spacing, rule["uncertain_max_ml"],
        rule["uncertain_mean"],
    )
    assert removed > 0 and expected.any()
    for storage in ("uint8", "none"):
        cleaned = Segmenter(model, device="cpu", probabilities=storage, **rule).segment(small_glioma).labels
        np.testing.assert_array_equal(cleaned, expected)
