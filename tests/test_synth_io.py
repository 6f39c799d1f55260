"""The anatomy resource, its derivation, the resource locator, the synth CLI and the helpers around it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_tumorseg import resources
from napari_tumorseg.cli import main
from napari_tumorseg.io import read_case
from napari_tumorseg.synth import make_case, sample_axial_slices
from napari_tumorseg.synth.anatomy import RESOURCE, TISSUES, _load_resource
from napari_tumorseg.synth.deformation import mass_effect
from napari_tumorseg.synth.grid import GridSampler

SHAPE = (32, 48, 48)


def test_anatomy_resource_loads_without_nilearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "nilearn", None)  # any `import nilearn` now fails
    tissue = _load_resource.__wrapped__()
    assert tissue.shape == (3, 155, 240, 240) and tissue.dtype == np.uint8
    fractions = tissue.astype(np.float32) / 255.0
    brain = fractions.sum(axis=0) >= 0.5
    # An adult brain of about 1.2-1.6 litres, with each tissue where it belongs.
    assert 1.2e6 < brain.sum() < 1.6e6
    gm, wm, csf = (fractions[i][brain].sum() for i in range(3))
    assert gm > wm > csf > 0.02 * brain.sum()
    # Ventricles: CSF deep inside the brain, enclosed by white matter.
    deep = ndi.binary_erosion(brain, iterations=25)
    assert (fractions[2][deep] > 0.8).sum() > 5000


def test_anatomy_resource_is_compact_and_licensed():
    path = resources.resource_path(*RESOURCE)
    assert path.is_file() and path.stat().st_size < 5_000_000
    notice = (path.parent / "LICENSE.txt").read_text(encoding="utf-8")
    assert "McConnell Brain Imaging Centre" in notice and "Permission to use, copy, modify" in notice
    with np.load(path) as data:
        assert set(TISSUES) <= set(data.files)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nilearn") is None, reason="nilearn provides the template maps")
def test_build_anatomy_reproduces_the_shipped_resource(tmp_path):
    from napari_tumorseg.synth.build_anatomy import build

    rebuilt = build(tmp_path / "anatomy.npz")
    with np.load(rebuilt) as new, np.load(resources.resource_path(*RESOURCE)) as shipped:
        for name in TISSUES:
            np.testing.assert_array_equal(new[name], shipped[name])


def test_resource_path_finds_the_source_tree_and_the_wheel_layout(tmp_path, monkeypatch):
    repo_resources = Path(__file__).resolve().parents[1] / "resources"
    assert resources.resource_path("anatomy") == repo_resources / "anatomy"
    # In a wheel the folder sits inside the package (pyproject force-includes it there).
    package = tmp_path / "site-packages" / "napari_tumorseg"
    (package / "resources" / "anatomy").mkdir(parents=True)
    monkeypatch.setattr(resources, "_PACKAGE_DIR", package)
    resources.resources_root.cache_clear()
    try:
        assert resources.resource_path("anatomy", "x.npz") == package / "resources" / "anatomy" / "x.npz"
        monkeypatch.setattr(resources, "_PACKAGE_DIR", tmp_path / "nowhere" / "napari_tumorseg")
        resources.resources_root.cache_clear()
        with pytest.raises(FileNotFoundError):
            resources.resource_path("anatomy")
    finally:
        monkeypatch.undo()
        resources.resources_root.cache_clear()


def test_grid_sampler_matches_linear_interpolation():
    rng = np.random.default_rng(0)
    field = rng.random((9, 12, 11)).astype(np.float32)
    shape, spacing = (30, 40, 37), np.array([1.3, 1.1, 0.9])
    flat = np.sort(rng.choice(np.prod(shape), 400, replace=False))
    index = np.array(np.unravel_index(flat, shape))
    origin, step = np.array([2.0, -1.0, 3.0]), 3.0
    sampled = GridSampler(index, spacing, origin, step, field.shape).sample(field)
    position = (index + 0.5) * spacing[:, None]
    expected = ndi.map_coordinates(field, (position - origin[:, None]) / step, order=1, mode="nearest")
    np.testing.assert_allclose(sampled, expected, atol=1e-5)


def test_mass_effect_pushes_outward_and_conserves_volume():
    radius = 20.0
    positions = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 30.0], [0.0, 0.0, 80.0]], dtype=np.float32).T
    displacement = mass_effect(positions, np.zeros(3), radius)
    # Backward map: a point at r shows the tissue from (r^3 - R^3)^(1/3), nearer the centre.
    source = 30.0 + displacement[1, 2]
    assert source == pytest.approx((30.0**3 - radius**3) ** (1 / 3), rel=1e-4)
    assert -1.0 < displacement[2, 2] < 0.0  # far away the push fades (~R^3 / 3r^2)
    np.testing.assert_allclose(mass_effect(positions, np.zeros(3), 0.0), 0.0)


def test_axial_slices_favour_tumour_and_keep_channels():
    case = make_case("glioma", 3, shape=SHAPE)
    batch = sample_axial_slices(case, 8, np.random.default_rng(0), tumour_fraction=0.75)
    assert batch.images.shape == (8, 4, 48, 48) and batch.labels.shape == (8, 48, 48)
    assert batch.images.dtype == np.float32 and batch.available.tolist() == [1.0] * 4
    with_tumour = (batch.labels.reshape(8, -1) > 0).any(axis=1).sum()
    assert with_tumour >= 6
    np.testing.assert_array_equal(batch.labels, case.label[batch.indices])


def test_synth_cli_writes_readable_brats_2020_folders(tmp_path, capsys):
    out = tmp_path / "cases"
    size = ",".join(str(n) for n in SHAPE)
    status = main(["synth", "--domain", "metastasis", "--n", "2", "--seed", "5", "--out", str(out), "--size", size])
    assert status == 0
    assert capsys.readouterr().out.split() == [str(out / "metastasis_00005"), str(out / "metastasis_00006")]
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["metastasis_00005", "metastasis_00006"]
    names = sorted(p.name for p in (out / "metastasis_00005").iterdir())
    suffixes = ("flair", "seg", "t1", "t1ce", "t2")
    assert names == [f"metastasis_00005_{suffix}.nii.gz" for suffix in suffixes]
    expected = make_case("metastasis", 5, shape=SHAPE)
    case = read_case(out / "metastasis_00005")
    np.testing.assert_array_equal(case.label, expected.label)
    for key in expected.modalities:
        np.testing.assert_array_equal(case.images[key], expected.images[key])
    assert case.geometry.source_axcodes == "LPS"
    import nibabel as nib

    on_disk = np.asarray(nib.load(out / "metastasis_00005" / "metastasis_00005_seg.nii.gz").dataobj)
    assert 4 in np.unique(on_disk) and 3 not in np.unique(on_disk)  # BraTS 2020: ET = 4

    # Existing cases are not overwritten unless asked.
    again = ["synth", "--domain", "metastasis", "--n", "1", "--seed", "5", "--out", str(out), "--size", size]
    assert main(again) == 2
    assert main([*again, "--overwrite"]) == 0


def test_writing_cases_is_a_long_job_that_stops_between_cases_and_keeps_what_it_wrote(tmp_path):
    from napari_tumorseg.jobs import Cancelled, drive
    from napari_tumorseg.synth.export import write_synthetic_cases

    reports = []
    job = write_synthetic_cases("glioma", [1, 2, 3], tmp_path, shape=SHAPE, cancel=lambda: len(reports) >= 1)
    with pytest.raises(Cancelled):
        drive(job, on_progress=reports.append)
    assert [(r.done, r.total, r.detail) for r in reports] == [(1, 3, "glioma_00001")]
    assert reports[0].data == tmp_path / "glioma_00001" and sorted(p.name for p in tmp_path.iterdir()) == ["glioma_00001"]
    assert drive(write_synthetic_cases("glioma", [2], tmp_path, shape=SHAPE)) == [tmp_path / "glioma_00002"]


def test_synth_cli_writes_only_present_modalities(tmp_path):
    size = ",".join(str(n) for n in SHAPE)
    args = ["synth", "--domain", "glioma", "--n", "3", "--out", str(tmp_path), "--size", size, "--missing-prob", "0.6"]
    assert main(args) == 0
    for folder in tmp_path.iterdir():
        case = read_case(folder)
        expected = make_case("glioma", int(folder.name.split("_")[1]), shape=SHAPE, missing_prob=0.6)
        assert case.modalities == expected.modalities


def test_synth_cli_rejects_incomplete_arguments(capsys):
    with pytest.raises(SystemExit) as error:
        main(["synth", "--domain", "glioma"])
    assert error.value.code == 2
    with pytest.raises(SystemExit):
        main(["synth", "--domain", "glioma", "--out", "x", "--missing-prob", "2"])


def test_benchmark_reports_seconds_per_domain():
    from napari_tumorseg.synth.bench import benchmark
    from napari_tumorseg.synth.generate import GENERATOR_VERSIONS

    result = benchmark(seeds=1, shape=SHAPE)
    for domain in ("glioma", "metastasis"):
        assert result[domain]["wall_mean_s"] > 0 and result[domain]["cpu_max_s"] > 0
        # every version timed in the same run, the default version's figures also at the top
        assert set(result["versions"]) == set(GENERATOR_VERSIONS) and result["versions"]["2"][domain] == result[domain]
        assert result["versions"]["1"][domain]["cpu_over_version_1"] == 1.0
    assert result["shape"] == list(SHAPE) and result["machine"]["load_average"] is not None
