"""Corrections from a case: prepared like the segmenter's input, labels aligned, hash stable; anchors cached."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.adapt.corrections import CaseCorrections, Corrections, case_corrections, slices_with_tumour
from napari_tumorseg.errors import AdaptationError
from napari_tumorseg.inference.preprocess import prepare_case, slices_to_input
from napari_tumorseg.io.case import Case, Geometry
from napari_tumorseg.models.config import ModelConfig

SHAPE = (20, 40, 44)


def toy_case() -> Case:
    """A brain box with a bright FLAIR lesion on slices 6..13; missing T1."""
    rng = np.random.default_rng(0)
    label = np.zeros(SHAPE, np.uint8)
    label[6:14, 14:24, 16:26] = 2
    label[8:12, 17:21, 19:23] = 3
    images = {}
    for key in ("flair", "t1c", "t2"):
        volume = np.zeros(SHAPE, np.float32)
        volume[2:18, 6:34, 8:38] = rng.normal(100, 10, size=(16, 28, 30))
        images[key] = volume
    images["flair"][label > 0] += 80
    return Case("toy", images, Geometry(np.eye(4), SHAPE[::-1]), label=label)  # RAS source -> canonical SHAPE


@pytest.mark.parametrize("context", [0, 1])
def test_case_corrections_match_the_segmenter_input_and_align_labels(context):
    case = toy_case()
    config = ModelConfig(depth=2, context=context)
    prepared = case_corrections(case, case.label, [7, 10, 12], model_config=config, reference_slices=3)
    assert prepared.slice_indices == (7, 10, 12)
    # The same arrays the segmenter feeds the network for those slices.
    volume = prepare_case(case, multiple=config.size_multiple)
    z0 = volume.crop.start[0]
    expected = slices_to_input(volume.images, volume.availability, [7 - z0, 10 - z0, 12 - z0], context)
    np.testing.assert_allclose(prepared.inputs, expected, rtol=1e-6, atol=1e-6)
    assert prepared.inputs.shape[1] == config.in_channels
    # Labels on the same grid: the bright FLAIR voxels are exactly the labelled ones.
    flair = prepared.inputs[:, context * 4]
    assert np.array_equal(flair > 2.0, prepared.labels > 0)
    # Held out: tumour slices other than the corrected ones.
    assert len(prepared.reference_indices) == 3
    assert not set(prepared.reference_indices) & {7, 10, 12}
    assert all(6 <= z < 14 for z in prepared.reference_indices)


def test_case_corrections_refuse_bad_input():
    case = toy_case()
    config = ModelConfig(depth=2)
    with pytest.raises(AdaptationError, match="outside"):
        case_corrections(case, case.label, [25], model_config=config)
    with pytest.raises(AdaptationError, match="no brain"):
        case_corrections(case, case.label, [0], model_config=config)
    with pytest.raises(AdaptationError, match="not on the case grid"):
        case_corrections(case, case.label[:-1], [7], model_config=config)


def test_corrections_hash_is_stable_and_sensitive():
    inputs = np.zeros((2, 8, 16, 16), np.float32)
    labels = np.zeros((2, 16, 16), np.uint8)
    a = Corrections.of(CaseCorrections("c", inputs, labels, (3, 4)))
    assert a.digest() == Corrections.of(CaseCorrections("c", inputs.copy(), labels.copy(), (3, 4))).digest()
    changed = labels.copy()
    changed[0, 5, 5] = 2
    assert a.digest() != Corrections.of(CaseCorrections("c", inputs, changed, (3, 4))).digest()
    assert a.digest() != Corrections.of(CaseCorrections("c", inputs, labels, (3, 5))).digest()
    assert a.digest() != Corrections.of(CaseCorrections("d", inputs, labels, (3, 4))).digest()
    # Pinned: the hash is provenance, so it must not change between releases.
    assert a.digest() == "a8698d08fcfc4c4228be5a976b37f728214223841a49d3726d7a7308b7cc830d"


def test_corrections_validate_their_arrays():
    inputs = np.zeros((2, 8, 16, 16), np.float32)
    with pytest.raises(AdaptationError, match="do not match"):
        CaseCorrections("c", inputs, np.zeros((2, 16, 15), np.uint8), (1, 2))
    with pytest.raises(AdaptationError, match="repeat"):
        CaseCorrections("c", inputs, np.zeros((2, 16, 16), np.uint8), (1, 1))
    with pytest.raises(AdaptationError, match="internal"):
        CaseCorrections("c", inputs, np.full((2, 16, 16), 4, np.uint8), (1, 2))
    with pytest.raises(AdaptationError, match="no corrections"):
        Corrections(())


def test_slices_with_tumour_spreads_inside_the_extent():
    labels = np.zeros((30, 4, 4), np.uint8)
    labels[5:25, 1, 1] = 1
    picks = slices_with_tumour(labels, exclude=[10], limit=4)
    assert len(picks) == 4 and 10 not in picks
    assert 5 < picks[0] and picks[-1] < 24
    assert slices_with_tumour(labels, limit=None) == list(range(5, 25))
