"""Grids, rigid transforms and resampling: labels come back exactly where the geometry allows, images land where the world says."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.io.case import Geometry
from napari_tumorseg.io.testing import ORIENTATIONS, label_volume
from napari_tumorseg.prepare import simulate as sim
from napari_tumorseg.prepare.grids import (
    RigidTransform, canonical_grid, model_grid, resample, same_canonical_grid, spacing_is_far, to_sitk_image,
)

SHAPE = (20, 24, 16)


def grid(name: str = "LPS", shape=SHAPE) -> Geometry:
    return Geometry(ORIENTATIONS[name], shape)


def test_transform_round_trips_through_simpleitk_and_inverts():
    transform = RigidTransform.from_parameters((5.0, -3.0, 7.0), (2.0, -1.5, 4.0), (10.0, 20.0, -5.0))
    back = RigidTransform.from_sitk(transform.to_sitk())
    np.testing.assert_allclose(back.matrix, transform.matrix, atol=1e-9)
    points = np.random.default_rng(0).uniform(-50, 50, (10, 3))
    np.testing.assert_allclose(transform.inverse().apply(transform.apply(points)), points, atol=1e-9)
    assert transform.rotation_deg == pytest.approx(np.degrees(np.arccos((np.trace(transform.matrix[:3, :3]) - 1) / 2)))


def test_sitk_image_puts_every_voxel_where_the_affine_says():
    geometry = grid("oblique")
    image = to_sitk_image(np.zeros(geometry.canonical_shape, np.float32), geometry)
    index = (3, 5, 7)  # ITK (i, j, k) = canonical (x, y, z)
    world = geometry.canonical_affine @ np.array([index[2], index[1], index[0], 1.0])
    lps = np.array(image.TransformIndexToPhysicalPoint(index))
    np.testing.assert_allclose(lps, world[:3] * np.array([-1, -1, 1]), atol=1e-6)


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "flipped", "permuted", "oblique", "anisotropic"])
def test_labels_on_their_own_grid_come_back_voxel_for_voxel(orientation):
    geometry = grid(orientation)
    labels = geometry.to_canonical(label_volume())
    np.testing.assert_array_equal(resample(labels, geometry, geometry, labels=True), labels)


def test_labels_between_two_storages_of_one_grid_are_exact():
    """An LPS file and an RAS file of the same voxels in the world: a permutation and flips, no interpolation."""
    lps = grid("LPS")
    shape = lps.source_shape
    # The same voxel centres, stored with x and y reversed.
    ras_affine = lps.source_affine @ np.array([[-1, 0, 0, shape[0] - 1], [0, -1, 0, shape[1] - 1], [0, 0, 1, 0],
                                               [0, 0, 0, 1.0]])
    ras = Geometry(ras_affine, shape)
    assert same_canonical_grid(lps, ras)
    labels = lps.to_canonical(label_volume())
    np.testing.assert_array_equal(resample(labels, lps, ras, labels=True), labels)


@pytest.mark.parametrize("tilt", [(0.0, 0.0, 0.0), (4.0, -3.0, 6.0)])
def test_labels_on_a_thick_grid_survive_the_trip_through_a_fine_one(tilt):
    """Thick (5 mm) -> fine (1 mm, the working grid) -> thick: nearest neighbour both ways is exact when the
    thick voxels are at least twice the fine ones, even on a tilted grid."""
    fine = Geometry(np.diag([-1.0, -1.0, 1.0, 1.0]), (40, 40, 40))
    thick = sim.grid_over(fine, (5.0, 2.0, 2.0), tilt, (0.3, -0.2, 0.1))
    interior = np.zeros(thick.canonical_shape, np.uint8)
    rng = np.random.default_rng(0)
    interior[1:-1, 2:-2, 2:-2] = rng.integers(0, 4, (thick.canonical_shape[0] - 2, thick.canonical_shape[1] - 4,
                                                     thick.canonical_shape[2] - 4))
    on_fine = resample(interior, thick, fine, labels=True)
    back = resample(on_fine, fine, thick, labels=True)
    np.testing.assert_array_equal(back[1:-1, 2:-2, 2:-2], interior[1:-1, 2:-2, 2:-2])


def test_images_follow_the_world_through_a_transform():
    """A bright voxel moved by a known motion appears where that motion sends it."""
    geometry = canonical_grid(Geometry(np.eye(4), (31, 31, 31)))
    volume = np.zeros(geometry.canonical_shape, np.float32)
    volume[15, 15, 20] = 1.0
    motion = RigidTransform.from_parameters((0.0, 0.0, 90.0), (0.0, 0.0, 0.0), (15.0, 15.0, 15.0))
    moved = sim.acquire(volume, geometry, sim.Acquisition(motion, geometry))
    source_world = geometry.canonical_affine @ np.array([15, 15, 20, 1.0])
    target_world = motion.apply(source_world[None, :3])[0]
    index = np.linalg.inv(geometry.canonical_affine) @ np.append(target_world, 1.0)
    assert moved[tuple(np.rint(index[:3]).astype(int))] == pytest.approx(1.0, abs=1e-3)


def test_cubic_bspline_smooths_less_than_linear_and_stays_within_the_source_values():
    """Half a voxel over and back: linear interpolation blurs fine texture twice; the B-spline keeps more."""
    geometry = canonical_grid(Geometry(np.eye(4), (24, 24, 24)))
    rng = np.random.default_rng(0)
    volume = np.zeros(geometry.canonical_shape, np.float32)
    volume[4:20, 4:20, 4:20] = 1.0 + rng.random((16, 16, 16)).astype(np.float32)  # textured block, hard edges
    shift = RigidTransform.from_parameters((0.0, 0.0, 0.0), (0.5, 0.5, 0.5))
    inner = (slice(6, 18),) * 3

    def round_trip(kind: str) -> np.ndarray:
        there = resample(volume, geometry, geometry, shift, interpolation=kind)
        return resample(there, geometry, geometry, shift.inverse(), interpolation=kind)

    linear, cubic = round_trip("linear"), round_trip("bspline")
    error = {name: float(np.abs(v - volume)[inner].mean()) for name, v in (("linear", linear), ("bspline", cubic))}
    assert error["bspline"] < 0.8 * error["linear"], error  # 0.16 against 0.22
    assert cubic.min() >= 0.0 and cubic.max() <= volume.max()  # the overshoot at the block's edges is clipped
    with pytest.raises(ValueError, match="interpolation"):
        resample(volume, geometry, geometry, shift, interpolation="cubic")


def test_model_grid_keeps_the_field_of_view_at_1_mm():
    thick = Geometry(np.diag([0.8, 0.8, 6.5, 1.0]), (64, 64, 12))
    assert spacing_is_far(thick)
    model = model_grid(thick)
    np.testing.assert_allclose(model.spacing, 1.0, atol=0.05)
    extent = lambda g: np.asarray(g.canonical_shape) * np.asarray(g.spacing)  # noqa: E731
    np.testing.assert_allclose(extent(model), extent(thick), atol=1e-6)
    corner = lambda g: g.canonical_affine[:3, :3] @ np.full(3, -0.5) + g.canonical_affine[:3, 3]  # noqa: E731
    np.testing.assert_allclose(corner(model), corner(thick), atol=1e-6)


def test_spacing_rule_flags_thick_and_very_fine_voxels_only():
    assert spacing_is_far(Geometry(np.diag([1.0, 1.0, 5.0, 1.0]), (8, 8, 8)))
    assert spacing_is_far(Geometry(np.diag([0.45, 0.45, 0.9, 1.0]), (8, 8, 8)))
    assert not spacing_is_far(Geometry(np.diag([1.0, 0.9, 1.2, 1.0]), (8, 8, 8)))
    assert not spacing_is_far(Geometry(np.diag([3.75, 3.75, 3.9, 1.0]), (8, 8, 8)))  # coarse but isotropic
