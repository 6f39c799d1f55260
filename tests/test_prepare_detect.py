"""The checks that decide whether a scan must be prepared, and the one line that says what and why."""

from __future__ import annotations

import numpy as np
import pytest
from prepare_fixtures import head_phantom, raw_head_scan, raw_stripped_scan  # noqa: F401 (fixtures)

from napari_tumorseg.io import SourceSet, SourceVolume, read_sources
from napari_tumorseg.prepare.detect import detect, looks_skull_stripped
from napari_tumorseg.prepare import simulate as sim
from napari_tumorseg.prepare.grids import RigidTransform, world_points


def sources_of(case, modalities=None, **moved) -> SourceSet:
    """A case's volumes as read from files, some of them moved or regridded (``key=Acquisition``)."""
    volumes = {}
    for key in modalities or case.images:
        acquisition = moved.get(key)
        data = case.images[key] if acquisition is None else sim.acquire(case.images[key], case.geometry, acquisition)
        geometry = case.geometry if acquisition is None else acquisition.grid
        volumes[key] = SourceVolume(geometry.from_canonical(data), geometry, f"case_{key}.nii.gz")
    return SourceSet("case", volumes)


def test_a_skull_stripped_co_registered_case_needs_nothing(small_glioma):
    findings = detect(sources_of(small_glioma), check_alignment=True)
    assert findings.reference == "t1c" and not findings.needs_preparation and findings.items == ()
    assert findings.summary().startswith("ready")


def test_a_head_with_its_skull_is_flagged(head_phantom):  # noqa: F811
    findings = detect(sources_of(head_phantom.case))
    assert findings.skull and findings.needs_preparation
    line = findings.summary()
    assert "\n" not in line and line.startswith("case_t1c.nii.gz: the head still has its skull")
    assert "tumorseg prepare" in line


def test_sequences_on_other_grids_and_thick_slices_are_flagged(raw_stripped_scan):  # noqa: F811
    findings = detect(read_sources(raw_stripped_scan.folder))
    kinds = {f.kind for f in findings.items}
    assert kinds == {"grids"}, findings.items
    assert {f.detail["sequence"] for f in findings.of("grids")} == {"flair", "t1", "t2"}
    assert "10 x" in next(f.problem for f in findings.of("grids") if f.detail["sequence"] == "flair")


def test_sequences_on_one_grid_but_apart_are_flagged_by_the_alignment_check(small_glioma):
    geometry = small_glioma.geometry
    brain = small_glioma.images["t1"] > 0
    motion = RigidTransform.from_parameters((8.0, 0.0, 0.0), (6.0, 0.0, 4.0), tuple(world_points(geometry, brain).mean(0)))
    moved = sources_of(small_glioma, flair=sim.Acquisition(motion, geometry))
    assert not detect(moved, check_alignment=False).needs_preparation
    findings = detect(moved, check_alignment=True)
    assert [f.kind for f in findings.items] == ["misaligned"] and findings.of("misaligned")[0].detail["sequence"] == "flair"


def test_a_thick_reference_and_a_missing_t1c(small_glioma):
    thick = sim.grid_over(small_glioma.geometry, (8.0, 2.0, 2.0))
    moved = sources_of(small_glioma, ["flair", "t2"], flair=sim.Acquisition(RigidTransform.identity(), thick),
                       t2=sim.Acquisition(RigidTransform.identity(), thick))
    findings = detect(moved)
    assert findings.reference == "flair"  # no T1c: the one with the smallest voxels, the first of equals
    assert [f.kind for f in findings.items] == ["reference", "spacing"]
    assert detect(moved, reference="t2").reference == "t2"
    with pytest.raises(Exception, match="reference sequence 't1c' is not in the case"):
        detect(moved, reference="t1c")


def test_stripped_looks(small_glioma, head_phantom):  # noqa: F811
    stripped, figures = looks_skull_stripped(small_glioma.images["t1c"], small_glioma.geometry)
    assert stripped and figures["zero_fraction"] > 0.5
    head, _ = looks_skull_stripped(head_phantom.case.images["t1c"], head_phantom.case.geometry)
    assert not head
    zeroed = np.where(head_phantom.classes > 0, head_phantom.case.images["t1c"], 0)  # a head whose air is stored as 0
    assert not looks_skull_stripped(zeroed, head_phantom.case.geometry)[0]
