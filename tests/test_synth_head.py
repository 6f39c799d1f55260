"""Whole-head phantoms: version 2 left as it is inside, skull, scalp, eyes and neck around it, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.synth import generate_phantom
from napari_tumorseg.synth.head import make_head
from napari_tumorseg.synth.head_layout import BONE, BRAIN, CORD, CSF, EYE, FAT, MARROW, MUSCLE, SKIN

SHAPE = (40, 64, 64)


@pytest.fixture(scope="module")
def head():
    return make_head("glioma", 3, shape=SHAPE)


def test_the_phantom_inside_is_version_2_unchanged(head):
    alone = generate_phantom("glioma", 3, shape=SHAPE, version="2")
    inner = tuple(slice(o, o + n) for o, n in zip(head.offset, SHAPE))
    for key, image in alone.case.images.items():
        np.testing.assert_array_equal(head.phantom.case.images[key], image)
        # Inside the brain the head shows the phantom's own voxels.
        np.testing.assert_array_equal(head.case.images[key][inner][head.brain[inner]], image[image > 0])
    np.testing.assert_array_equal(head.case.label[inner], alone.case.label)
    assert head.brain.sum() == np.count_nonzero(alone.case.images["t1"])


def test_a_head_surrounds_the_brain(head):
    present = set(np.unique(head.classes).tolist())
    assert {BRAIN, CSF, BONE, MARROW, MUSCLE, FAT, SKIN, EYE, CORD} <= present
    outside = ~head.brain
    for image in head.case.images.values():
        assert np.isfinite(image).all() and (image > 0).all()  # noise everywhere, as a magnitude image has
        tissue = outside & (head.classes != 0)
        assert image[tissue].mean() > 3 * image[head.classes == 0].mean()  # the head stands out of the air
    # Skull around the brain: every brain voxel's column upwards meets bone before the air.
    z_top = np.nonzero(head.brain.any(axis=(1, 2)))[0].max()
    column = head.classes[z_top:, SHAPE[1] // 2 + head.offset[1], SHAPE[2] // 2 + head.offset[2]]
    assert BONE in column.tolist()


def test_the_geometry_extends_the_phantom_grid(head):
    phantom_affine = head.phantom.case.geometry.canonical_affine
    index = np.array([5, 6, 7, 1.0])
    shifted = index + np.array([*head.offset, 0])
    np.testing.assert_allclose(head.case.geometry.canonical_affine @ shifted, phantom_affine @ index)


def test_same_seed_same_head_and_stripped_is_brats_like(head):
    again = make_head("glioma", 3, shape=SHAPE)
    for key in head.case.images:
        np.testing.assert_array_equal(again.case.images[key], head.case.images[key])
    np.testing.assert_array_equal(again.classes, head.classes)
    stripped = head.stripped()
    assert all(((v != 0) == head.brain).all() for v in stripped.images.values())


def test_the_coil_fall_off_of_the_phantom_carries_on_down_the_neck(head):
    import dataclasses

    from napari_tumorseg.synth.head import _bias_fields

    phantom = head.phantom
    inner = tuple(slice(o, o + n) for o, n in zip(head.offset, SHAPE))
    spacing = np.asarray(phantom.case.geometry.spacing)

    def field(falloff: float) -> np.ndarray:
        scanners = {k: dataclasses.replace(s, falloff=falloff) for k, s in phantom.scanners.items()}
        return _bias_fields(dataclasses.replace(phantom, scanners=scanners), head.classes.shape, inner, spacing)["t1"]

    darker = field(1.0) - field(0.0)  # the fall-off's own part of the log gain
    brain_rows = np.nonzero(head.brain.any(axis=(1, 2)))[0]
    assert abs(darker[brain_rows.max()][head.brain[brain_rows.max()]].mean()) < 0.05  # the vertex: no fall-off
    foot = brain_rows.min()
    lowest = darker[foot][head.brain[foot]].mean()
    below = darker[foot - 2:foot][:, head.brain[foot]]  # just under the brain's foot (about 8 mm)
    assert lowest < -0.5 and below.mean() < lowest + 0.1  # the fall-off carries on below the brain, no step
