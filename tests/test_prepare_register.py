"""Rigid co-registration recovers a known motion, across contrasts and grids; the quality figure says so."""

from __future__ import annotations

import numpy as np
import pytest
from prepare_fixtures import head_phantom  # noqa: F401 (fixture)

from napari_tumorseg.prepare import simulate as sim
from napari_tumorseg.prepare.grids import RigidTransform, world_points
from napari_tumorseg.prepare.register import normalised_mutual_information, register_rigid


@pytest.mark.parametrize("key, thick", [("t1c", False), ("flair", True)])
def test_registration_recovers_a_known_rigid_motion(head_phantom, key, thick):  # noqa: F811
    case, brain = head_phantom.case, head_phantom.brain
    geometry = case.geometry
    centre = world_points(geometry, brain).mean(axis=0)
    motion = RigidTransform.from_parameters((6.0, -4.0, 5.0), (5.0, -6.0, 4.0), tuple(centre))
    spacing = (10.0, *geometry.spacing[1:]) if thick else geometry.spacing
    acquisition = sim.Acquisition(motion, sim.grid_over(geometry, spacing, (2.0, 0.0, -3.0), source_axes="RAS"),
                                  10.0 if thick else None)
    moving = sim.acquire(case.images[key], geometry, acquisition)
    reference = sim.Acquisition(RigidTransform.identity(), geometry)
    found, quality = register_rigid(case.images["t1c"], geometry, moving, acquisition.grid, threads=1)
    truth = sim.true_transform(reference, acquisition)
    mean, worst = sim.registration_error_mm(found, truth, world_points(geometry, brain))
    voxel = max(geometry.spacing)  # about 3.9 mm on this small grid
    assert mean < 0.35 * voxel and worst < 0.6 * voxel, (mean, worst)
    assert quality.nmi_after > quality.nmi_before and not quality.suspicious
    assert truth.rotation_deg == pytest.approx(found.rotation_deg, abs=2.0)


def test_registration_is_deterministic(head_phantom):  # noqa: F811
    case = head_phantom.case
    geometry = case.geometry
    motion = RigidTransform.from_parameters((3.0, 0.0, 0.0), (2.0, 0.0, 0.0), tuple(world_points(geometry, head_phantom.brain).mean(axis=0)))
    moving = sim.acquire(case.images["t2"], geometry, sim.Acquisition(motion, geometry))
    first, _ = register_rigid(case.images["t1c"], geometry, moving, geometry, threads=1)
    second, _ = register_rigid(case.images["t1c"], geometry, moving, geometry, threads=1)
    np.testing.assert_allclose(first.matrix, second.matrix, atol=1e-6)  # the same samples, the same steps


def test_normalised_mutual_information_ranges_from_independent_to_identical():
    rng = np.random.default_rng(0)
    a = rng.random((20, 20, 20))
    mask = np.ones(a.shape, bool)
    assert normalised_mutual_information(a, a, mask) == pytest.approx(2.0)
    assert normalised_mutual_information(a, rng.random(a.shape), mask) < 1.1
    assert normalised_mutual_information(a, 3.0 - 2.0 * a, mask) == pytest.approx(2.0)  # any one-to-one mapping
