"""The Prepare step's validation on real cases: a case whose own files are not co-registered is told apart
from a registration that fails, whatever the file axes (BraTS-MET-00110 is stored RAS, its T1/T2/FLAIR ~2° off)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prepare_fixtures import head_phantom  # noqa: F401 (fixture)

from napari_tumorseg.prepare import simulate as sim
from napari_tumorseg.prepare.grids import RigidTransform, world_points
from napari_tumorseg.prepare.validate import edge_agreement, validate_real

# The RAW_GRIDS of the benchmark on the small test grid (about 3.8 mm voxels): FLAIR on 10 mm slices.
COARSE = 3.8
SMALL_GRIDS = {
    "t1c": ((COARSE, COARSE, COARSE), 0.0, "LPS", None),
    "t1": ((COARSE, COARSE, COARSE), 3.0, "RAS", None),
    "t2": ((COARSE, COARSE, COARSE), 3.0, "LPS", None),
    "flair": ((10.0, COARSE, COARSE), 3.0, "RAS", 10.0),
}


@pytest.fixture(scope="module")
def misaligned_real_case(tmp_path_factory, head_phantom):  # noqa: F811
    """A skull-stripped 4-sequence case stored RAS, every sequence on one grid, but its T2 file 4° and
    3 mm off the others (acquired apart and aligned badly, like BraTS-MET-00110's sequences)."""
    from napari_tumorseg.io.naming import case_file_name
    from napari_tumorseg.io.testing import save_nifti

    case = head_phantom.phantom.case
    brain = np.any([v != 0 for v in case.images.values()], axis=0)
    grid = sim.grid_over(case.geometry, case.geometry.spacing, source_axes="RAS")
    assert grid.source_axcodes == "RAS"
    centre = tuple(world_points(case.geometry, brain).mean(axis=0))
    off = RigidTransform.from_parameters((4.0, 0.0, 0.0), (0.0, 3.0, 0.0), centre)
    folder = tmp_path_factory.mktemp("real") / "RAS-00001"
    folder.mkdir()
    for key, volume in case.images.items():
        acquisition = sim.Acquisition(off if key == "t2" else RigidTransform.identity(), grid)
        data = sim.acquire(volume, case.geometry, acquisition)
        data = np.where(sim.acquire(brain, case.geometry, acquisition, labels=True) > 0, data, 0)
        save_nifti(folder / case_file_name("RAS-00001", key, "brats2020"),
                   grid.from_canonical(data.astype(np.float32)), grid.source_affine)
    return folder, off, world_points(case.geometry, brain)


def test_the_known_motion_is_recovered_from_the_case_own_alignment(misaligned_real_case):
    folder, off, points = misaligned_real_case
    result = validate_real(folder, None, grids=SMALL_GRIDS)
    t1, t2 = result["registration"]["t1"], result["registration"]["t2"]
    misaligned_mm = float(off.displacement_mm(points).mean())  # about 4 mm
    # The files' own alignment is found: about nothing for T1, the 4° and 3 mm for T2 ...
    assert t1["own_alignment_mm"] < 0.35 * COARSE
    assert t2["own_alignment_mm"] == pytest.approx(misaligned_mm, abs=0.35 * COARSE)
    # ... the error against the files' alignment is that misalignment, the motion itself is undone ...
    assert t2["mean_mm"] > 0.6 * misaligned_mm
    for row in (t1, t2):
        assert row["recovered_mean_mm"] < 0.35 * COARSE, row
    assert result["registration"]["flair"]["recovered_mean_mm"] < 0.5 * COARSE  # 10 mm slices on a 3.8 mm grid
    # ... and the edges, blind to mutual information, favour the own alignment where the files are off.
    assert t2["edges_own"] > t2["edges_files"] + 0.01
    assert abs(t1["edges_own"] - t1["edges_files"]) < 0.01


def test_edge_agreement_prefers_aligned_edges_whatever_the_contrast(head_phantom):  # noqa: F811
    case = head_phantom.phantom.case
    brain = np.any([v != 0 for v in case.images.values()], axis=0)
    t1c, flair = case.images["t1c"], case.images["flair"]
    shifted = np.roll(flair, 2, axis=1)
    assert edge_agreement(t1c, t1c, brain) == pytest.approx(edge_agreement(t1c, 5.0 - 2.0 * t1c, brain))
    assert edge_agreement(t1c, flair, brain) > edge_agreement(t1c, shifted, brain) + 0.02


def test_bench_prepare_keeps_every_case_measured_before_an_interruption(monkeypatch, tmp_path):
    from napari_tumorseg.cli import EXIT_INTERRUPTED, main
    from napari_tumorseg.prepare import validate

    nets = []

    def fake_case(seed, domain, segmenter, options=None):
        nets.append((options.brain_net, options.image_interpolation))
        if seed == 3:
            raise KeyboardInterrupt  # the third case never finishes
        return {"case": f"{domain}_{seed}", "prepare_seconds": float(seed), "brain_dice": 0.95,
                "registration": {"flair": {"mean_mm": 0.5, "max_mm": 1.0, "nmi_after": 1.1}}, "findings": []}

    monkeypatch.setattr(validate, "validate_synthetic", fake_case)
    output = tmp_path / "prepare.json"
    assert main(["bench-prepare", "--synthetic", "glioma:1,glioma:2,glioma:3", "--no-real", "--no-segment",
                 "--quiet", "-o", str(output)]) == EXIT_INTERRUPTED
    kept = json.loads(output.read_text(encoding="utf-8"))
    assert [row["case"] for row in kept["synthetic"]] == ["glioma_1", "glioma_2"]
    assert kept["complete"] is False and kept["summary"]["synthetic"]["cases"] == 2
    assert "bench-prepare" in kept["command"]

    assert main(["bench-prepare", "--synthetic", "glioma:1,glioma:2", "--no-real", "--no-segment", "--quiet",
                 "-o", str(output), "--overwrite", "--brain-net", str(tmp_path / "other.safetensors"),
                 "--image-interpolation", "linear"]) == 0
    done = json.loads(output.read_text(encoding="utf-8"))
    assert done["complete"] is True and done["summary"]["synthetic"]["prepare_seconds_max"] == 2.0
    # The network and the interpolation asked for prepare the heads.
    assert nets == [(None, "bspline")] * 3 + [(str(tmp_path / "other.safetensors"), "linear")] * 2
