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


def test_a_thick_sequence_is_sampled_where_it_was_measured(head_phantom, monkeypatch):  # noqa: F811
    """The metric runs on the thick sequence's own slices (it is the search's fixed image) and the transform
    found is turned round; a sequence as fine as the reference is moved onto it as usual."""
    from napari_tumorseg.prepare import register

    case, geometry = head_phantom.case, head_phantom.case.geometry
    motion = RigidTransform.from_parameters((0.0, 2.0, 0.0), (3.0, 0.0, 0.0), tuple(np.zeros(3)))
    found = RigidTransform.from_parameters((1.0, -2.0, 3.0), (4.0, 5.0, -6.0), (10.0, 20.0, 30.0))
    searched = []

    def search(fixed, fixed_geometry, moving, moving_geometry, **_):
        searched.append((max(fixed_geometry.spacing), max(moving_geometry.spacing)))
        return found, register._method(np.ones((2, 2, 2), bool), (1,), 1, 10, 1.0, 0.1, 0.5, 1)

    monkeypatch.setattr(register, "_search", search)
    monkeypatch.setattr(register, "RegistrationQuality", lambda **kwargs: kwargs)  # the untouched method has no metric
    thick = sim.Acquisition(motion, sim.grid_over(geometry, (3.0 * geometry.spacing[0], *geometry.spacing[1:]),
                                                  (0.0, 0.0, 0.0)), 3.0 * geometry.spacing[0])
    moving = sim.acquire(case.images["flair"], geometry, thick)
    transform, _ = register_rigid(case.images["t1c"], geometry, moving, thick.grid, threads=1)
    assert searched[-1][0] > 2.5 * searched[-1][1], "the thick sequence was not the fixed image"
    np.testing.assert_allclose(transform.matrix, found.inverse().matrix, atol=1e-9)

    transform, _ = register_rigid(case.images["t1c"], geometry, case.images["t2"], geometry, threads=1)
    assert searched[-1][0] == pytest.approx(searched[-1][1])
    np.testing.assert_allclose(transform.matrix, found.matrix, atol=1e-9)
