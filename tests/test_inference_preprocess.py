"""Preprocessing: brain box, z-score, crop/uncrop inverse, network input layout."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.inference.preprocess import (
    CropBox,
    normalized_slices,
    plan_preprocessing,
    prepare_case,
    prepare_channels,
    slices_to_input,
    stacked_channels,
)
from napari_tumorseg.io.case import MODALITIES, Case, Geometry

# Voxel axes already (S, P, L): the canonical layout is the array itself.
SPL_AFFINE = np.array([[0, 0, -1, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
SHAPE = (12, 40, 36)


def _brain(shape=SHAPE) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((z - 6) / 4.5) ** 2 + ((y - 18) / 12) ** 2 + ((x - 20) / 10) ** 2 <= 1


def _case(modalities=MODALITIES, seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    brain = _brain()
    images = {
        key: np.where(brain, rng.normal(200 + 50 * i, 30 + 5 * i, SHAPE), 0).astype(np.float32)
        for i, key in enumerate(MODALITIES)
        if key in modalities
    }
    return Case("phantom", images, Geometry(SPL_AFFINE, SHAPE))


def test_box_covers_the_union_of_modalities_with_margin_and_pads_to_multiple() -> None:
    case = _case()
    case.images["t2"][2, 3, 33] = 5.0  # brain-free elsewhere: only T2 sees this voxel
    plan = prepare_case(case, multiple=8, margin=2).plan
    brain = _brain()
    brain[2, 3, 33] = True
    nz = np.argwhere(brain)
    assert plan.crop.start == tuple(max(int(v) - 2, 0) for v in nz.min(axis=0))
    assert plan.crop.stop == tuple(min(int(v) + 3, s) for v, s in zip(nz.max(axis=0), SHAPE))
    h, w = plan.crop.padded_hw
    assert h % 8 == 0 and w % 8 == 0
    assert h >= plan.crop.shape[1] and w >= plan.crop.shape[2] and h - plan.crop.shape[1] < 8


def test_zscore_inside_each_modality_mask_and_zero_outside() -> None:
    case = _case()
    prepared = prepare_case(case, multiple=4, margin=0)
    for index, key in enumerate(MODALITIES):
        inside = prepared.crop.crop(case.images[key]) != 0
        values = prepared.images[index][inside]
        assert abs(values.mean()) < 1e-4 and abs(values.std() - 1) < 1e-4
        assert np.all(prepared.images[index][~inside] == 0)


def test_normalisation_ignores_intensity_scale_and_offset() -> None:
    case = _case()
    rescaled = _case()
    for key in MODALITIES:
        volume = rescaled.images[key]
        volume[volume != 0] = volume[volume != 0] * 3.7 + 1000.0
    a = prepare_case(case, multiple=4).images
    b = prepare_case(rescaled, multiple=4).images
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_missing_modality_is_a_zero_channel_flagged_unavailable() -> None:
    case = _case(modalities=("flair", "t2"))
    prepared = prepare_case(case, multiple=4)
    np.testing.assert_array_equal(prepared.availability, [1, 0, 0, 1])
    assert not prepared.images[1].any() and not prepared.images[2].any()
    assert prepared.images[0].any() and prepared.images[3].any()


@pytest.mark.parametrize("margin", [0, 3])
def test_uncrop_is_the_exact_inverse_of_crop_inside_the_box(margin: int) -> None:
    plan = prepare_case(_case(), multiple=16, margin=margin).plan
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, SHAPE).astype(np.uint8) * _brain()
    np.testing.assert_array_equal(plan.crop.uncrop(plan.crop.crop(labels)), labels)
    # Leading channel axes and per-channel fill values.
    probs = rng.random((4, *plan.crop.padded_shape)).astype(np.float32)
    background = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    full = plan.crop.uncrop(probs, fill=background)
    assert full.shape == (4, *SHAPE)
    np.testing.assert_array_equal(plan.crop.crop(full)[(..., *_inner(plan.crop))], probs[(..., *_inner(plan.crop))])
    outside = np.ones(SHAPE, dtype=bool)
    outside[tuple(slice(a, b) for a, b in zip(plan.crop.start, plan.crop.stop))] = False
    assert np.all(full[0][outside] == 1.0) and np.all(full[1:][:, outside] == 0.0)
    # Slices of the box map back like the whole box does.
    z = plan.crop.start[0]
    np.testing.assert_array_equal(plan.crop.uncrop_slices(probs[:, 2:4], fill=background), full[:, z + 2 : z + 4])


def _inner(crop: CropBox) -> tuple[slice, slice, slice]:
    (oy, ox), (_, h, w) = crop.offset_yx, crop.shape
    return slice(None), slice(oy, oy + h), slice(ox, ox + w)


def test_crop_rejects_a_foreign_grid() -> None:
    crop = CropBox(start=(0, 0, 0), stop=(2, 2, 2), padded_hw=(4, 4), full_shape=(3, 3, 3))
    with pytest.raises(ValueError, match="grid"):
        crop.crop(np.zeros((3, 3, 4)))


def test_slices_without_brain_are_marked_and_empty_volume_is_empty() -> None:
    case = _case()
    plan = prepare_case(case, multiple=4, margin=2).plan
    expected = _brain().any(axis=(1, 2))[plan.crop.start[0] : plan.crop.stop[0]]
    np.testing.assert_array_equal(plan.brain_slices, expected)
    assert not plan.brain_slices.all()  # the margin slices hold no brain
    blank = [np.zeros(SHAPE, np.float32), None, None, None]
    empty = plan_preprocessing(blank, multiple=4)
    assert empty.empty and empty.crop.shape[0] == 0


def test_subset_of_slices_equals_the_whole_volume() -> None:
    case = _case()
    channels = stacked_channels(*case.stacked())
    whole = prepare_channels(channels, multiple=8)
    part = normalized_slices(channels, whole.plan, [1, 4, 5])
    np.testing.assert_array_equal(part, whole.images[:, [1, 4, 5]])


def test_input_layout_with_context_and_availability_planes() -> None:
    rng = np.random.default_rng(2)
    arrays = rng.normal(size=(4, 5, 8, 8)).astype(np.float32)
    availability = np.array([1, 0, 1, 1], dtype=np.float32)
    batch = slices_to_input(arrays, availability, [0, 2, 4], context=1)
    assert batch.shape == (3, 3 * 4 + 4, 8, 8) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1, 0:4], arrays[:, 1])  # slice 2 - 1
    np.testing.assert_array_equal(batch[1, 4:8], arrays[:, 2])  # slice 2
    np.testing.assert_array_equal(batch[1, 8:12], arrays[:, 3])  # slice 2 + 1
    assert not batch[0, 0:4].any() and not batch[2, 8:12].any()  # beyond the volume: zeros
    np.testing.assert_array_equal(batch[:, 12:, 0, 0], np.tile(availability, (3, 1)))
    assert np.all(batch[:, 12:] == availability[None, :, None, None])
    no_context = slices_to_input(arrays, availability, [3], context=0)
    np.testing.assert_array_equal(no_context[0, :4], arrays[:, 3])
    with pytest.raises(IndexError):
        slices_to_input(arrays, availability, [5])
