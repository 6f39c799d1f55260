"""Evaluation on cases with and without reference: volumes, empty-region conventions, figures, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from napari_tumorseg.cli import main
from napari_tumorseg.evaluation.report import case_line, summary_lines
from napari_tumorseg.evaluation.run import evaluate_cases
from napari_tumorseg.evaluation.scoring import REFERENCE_EMPTY, SCORED, region_scores, score_case
from napari_tumorseg.io.case import Case, Geometry
from napari_tumorseg.jobs import drive
from napari_tumorseg.metrics import BRATS_EMPTY_HD95
from napari_tumorseg.metrics.volumes import component_counts, volumes_ml

ANISOTROPIC = (2.5, 0.9, 1.2)  # canonical (z, y, x) mm: one voxel is 2.7 mm³


def _canonical_geometry(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> Geometry:
    """A grid whose voxel axes are already (S, P, L), with the given spacing."""
    sz, sy, sx = spacing
    affine = np.array([[0, 0, -sx, 0], [0, -sy, 0, 0], [sz, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    return Geometry(affine, shape)


def _without_enhancing(case: Case) -> Case:
    """The case as a lower-grade glioma: its enhancing tumour relabelled as core (no ET in the reference)."""
    return replace(case, label=np.where(case.label == 3, 1, case.label).astype(np.uint8))


class _Fixed:
    """A stand-in segmenter returning the same labels for every case."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def segment(self, case: Case):
        return type("Result", (), {"labels": self.labels})()


def test_volumes_in_ml_follow_anisotropic_spacing_and_components_count_blobs():
    labels = np.zeros((10, 12, 14), dtype=np.uint8)
    labels[1:3, 1:4, 1:5] = 1  # 24 NCR voxels
    labels[5:7, 5:10, 5:10] = 2  # 50 ED voxels
    labels[8, 1:3, 1:3] = 3  # 4 ET voxels, apart from the rest
    voxel = 2.5 * 0.9 * 1.2 / 1000.0
    volumes = volumes_ml(labels, ANISOTROPIC)
    assert volumes["NCR"] == pytest.approx(24 * voxel) and volumes["ED"] == pytest.approx(50 * voxel)
    assert volumes["ET"] == pytest.approx(4 * voxel)
    assert volumes["WT"] == pytest.approx(78 * voxel) and volumes["TC"] == pytest.approx(28 * voxel)
    assert volumes_ml(labels, None)["WT"] == pytest.approx(0.078)
    assert component_counts(labels) == {"WT": 3, "TC": 2, "ET": 1}
    assert component_counts(np.zeros_like(labels)) == {"WT": 0, "TC": 0, "ET": 0}


def test_a_region_the_reference_lacks_follows_brats_in_numbers_but_is_marked(small_glioma):
    reference = _without_enhancing(small_glioma).label
    spacing = small_glioma.geometry.spacing
    agreed = region_scores(reference, reference, spacing)
    assert agreed["ET"]["status"] == REFERENCE_EMPTY and agreed["WT"]["status"] == SCORED
    assert agreed["ET"]["dice"] == 1.0 and agreed["ET"]["hd95"] == 0.0 and agreed["ET"]["predicted_ml"] == 0.0
    marked = reference.copy()
    marked[marked == 1] = 3  # the model calls the core enhancing
    false_positive = region_scores(marked, reference, spacing)["ET"]
    assert false_positive["status"] == REFERENCE_EMPTY
    assert false_positive["dice"] == 0.0 and false_positive["hd95"] == pytest.approx(BRATS_EMPTY_HD95)
    assert false_positive["predicted_ml"] > 0
    assert false_positive["predicted_ml"] == pytest.approx(volumes_ml(reference, spacing)["NCR"], abs=1e-3)
    missed = region_scores(np.zeros_like(reference), small_glioma.label, spacing)["ET"]
    assert missed["status"] == SCORED and missed["dice"] == 0.0  # a region the model missed is a real 0


def test_summary_leaves_empty_reference_regions_out_of_the_means_and_names_them(small_glioma):
    lgg = replace(_without_enhancing(small_glioma), name="lgg")
    ghost = lgg.label.copy()
    ghost[ghost == 1] = 3  # a false-positive ET where the reference has none
    unlabelled = replace(small_glioma, name="nolabel", label=None)
    cases = [small_glioma, lgg, unlabelled]
    outputs = iter([small_glioma.label, ghost, small_glioma.label])

    class Replay:
        def segment(self, case):
            return type("Result", (), {"labels": next(outputs)})()

    results = []
    evaluation = drive(evaluate_cases({"m": Replay()}, cases), on_progress=lambda p: results.append(p.data))
    assert [r.has_reference for r in results] == [True, True, False]
    summary, brats = evaluation.summary("m"), evaluation.summary_brats("m")
    assert summary["ET"]["dice"] == {"mean": 1.0, "std": 0.0, "n": 1}  # the LGG's ET is not averaged in
    assert brats["ET"]["dice"]["n"] == 2 and brats["ET"]["dice"]["mean"] == pytest.approx(0.5)
    [empty] = evaluation.reference_empty("m")["ET"]
    assert empty["case"] == "lgg" and empty["false_positive"] and empty["predicted_ml"] > 0
    assert "ET n/a (reference has none; predicted" in case_line(results[1])
    assert "no reference; predicted NCR" in case_line(results[2])
    text = "\n".join(summary_lines(evaluation, "m"))
    assert "ET absent from the reference of lgg" in text and "false positive" in text and "nolabel" in text
    document = json.dumps(evaluation.to_dict(), allow_nan=False)  # standard JSON: no NaN anywhere
    assert json.loads(document)["m"]["cases_without_reference"] == ["nolabel"]


def test_a_region_no_reference_has_is_na_in_the_summary(small_glioma):
    lgg = _without_enhancing(small_glioma)
    evaluation = drive(evaluate_cases({"m": _Fixed(lgg.label)}, [lgg]))
    assert evaluation.summary("m")["ET"]["dice"] == {"mean": None, "std": None, "n": 0}
    assert evaluation.summary_brats("m")["ET"]["dice"]["mean"] == 1.0
    assert "ET n/a (no reference has it)" in "\n".join(summary_lines(evaluation, "m"))


def test_unlabelled_case_reports_volumes_in_ml_on_its_own_grid(small_glioma):
    geometry = _canonical_geometry(small_glioma.shape, ANISOTROPIC)
    case = replace(small_glioma, geometry=geometry, label=None)
    result = score_case("m", case, small_glioma.label, 1.0)
    counts = np.bincount(small_glioma.label.ravel(), minlength=4)
    voxel_ml = np.prod(ANISOTROPIC) / 1000.0
    assert not result.has_reference and result.regions is None and result.reference_ml is None
    assert result.predicted_ml["ED"] == pytest.approx(counts[2] * voxel_ml)
    assert result.predicted_ml["WT"] == pytest.approx(counts[1:].sum() * voxel_ml)
    assert result.components["WT"] >= 1
    assert result.to_dict()["reference"] is False and "WT" not in result.to_dict()


def test_figure_shows_slices_with_and_without_tumour_and_is_written_atomically(small_glioma, tmp_path):
    from napari_tumorseg.evaluation.figures import representative_slices, write_case_figure

    tumour_per_slice = np.isin(small_glioma.label, (1, 2, 3)).sum(axis=(1, 2))
    slices = representative_slices(small_glioma, {}, count=6)
    assert int(np.argmax(tumour_per_slice)) in slices
    assert any(tumour_per_slice[z] == 0 for z in slices)  # normal anatomy is shown too
    assert slices == sorted(set(slices)) and len(slices) >= 5
    path = write_case_figure(small_glioma, {"a": small_glioma.label, "b": np.zeros_like(small_glioma.label)},
                             tmp_path / "figs" / "case.png", slices=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["case.png"]  # no temporary file left behind


@pytest.fixture
def tiny_checkpoint(tmp_path, torch_single_thread):
    from napari_tumorseg.models import build_model
    from napari_tumorseg.models.checkpoint import save_checkpoint

    torch_single_thread.manual_seed(1)
    return save_checkpoint(tmp_path / "tiny.safetensors", build_model("unet", base_width=4, depth=2))


def test_evaluate_cli_on_a_folder_mixing_cases_with_and_without_reference(small_glioma, tiny_checkpoint, tmp_path,
                                                                          capsys):
    from napari_tumorseg.io import write_case
    from napari_tumorseg.synth.generate import make_case

    folder = tmp_path / "cases"
    anisotropic = replace(small_glioma, name="aniso", geometry=_canonical_geometry(small_glioma.shape, ANISOTROPIC))
    write_case(anisotropic, folder / "aniso", layout="brats2020")
    write_case(replace(make_case("glioma", 1, shape=(40, 64, 64)), name="nolabel", label=None), folder / "nolabel",
               layout="brats2023")
    out, figures = tmp_path / "result.json", tmp_path / "figures"
    assert main(["evaluate", str(folder), "--model", str(tiny_checkpoint), "--json", str(out), "--figures",
                 str(figures), "--figure-slices", "3", "--threads", "1", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "nolabel" in printed and "no reference; predicted" in printed and "1 without" in printed
    document = json.loads(out.read_text(encoding="utf-8"))
    results = document["models"]["tiny"]
    by_case = {c["case"]: c for c in results["per_case"]}
    assert by_case["aniso"]["reference"] and not by_case["nolabel"]["reference"]
    reference_wt = np.isin(small_glioma.label, (1, 2, 3)).sum() * np.prod(ANISOTROPIC) / 1000.0
    assert by_case["aniso"]["WT"]["reference_ml"] == pytest.approx(reference_wt, abs=1e-3)
    assert by_case["aniso"]["volumes_ml"]["reference"]["WT"] == pytest.approx(reference_wt, abs=1e-3)
    assert set(by_case["nolabel"]["volumes_ml"]["predicted"]) == {"NCR", "ED", "ET", "WT", "TC"}
    assert set(by_case["nolabel"]["components"]) == {"WT", "TC", "ET"}
    assert results["cases_with_reference"] == ["aniso"] and results["summary"]["WT"]["dice"]["n"] == 1
    assert document["hardware"]["cpu_cores"] >= 1 and "load_average" in document["hardware"]
    assert sorted(p.name for p in figures.iterdir()) == ["aniso.png", "nolabel.png"]
    assert document["figures"]["nolabel"] == str(figures / "nolabel.png")


def test_shipped_flag_names_every_shipped_model_once():
    import argparse

    from napari_tumorseg.cli.evaluate import _model_specs
    from napari_tumorseg.resources import resources_root

    shipped = sorted(str(p) for p in (resources_root() / "models").glob("*.safetensors"))
    assert len(shipped) >= 2
    assert _model_specs(argparse.Namespace(model=None, shipped=True)) == shipped
    assert _model_specs(argparse.Namespace(model=[shipped[1]], shipped=True)) == [shipped[1], shipped[0], *shipped[2:]]
    assert _model_specs(argparse.Namespace(model=None, shipped=False)) == [None]
