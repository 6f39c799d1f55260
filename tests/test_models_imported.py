"""Bring your own model: ONNX, TorchScript and MONAI-bundle segmenters made here, run on a case, and refused
in one line when they are not what they claim (or would run code unasked)."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from napari_tumorseg.errors import ModelError
from napari_tumorseg.inference.external import ImportedSegmenter
from napari_tumorseg.inference.outputs import class_probabilities, labels_from
from napari_tumorseg.io.labels import BACKGROUND, ED, ET, NCR
from napari_tumorseg.models.external import load_imported
from napari_tumorseg.models.sidecar import spec_from_dict
from napari_tumorseg.models.testing import (
    write_monai_bundle,
    write_onnx_threshold_model,
    write_torchscript_threshold_model,
)

FOUR = ["flair", "t1", "t1c", "t2"]


def expected_oedema(case) -> np.ndarray:
    """What the threshold models segment: oedema where FLAIR's brain z-score is above 0.5."""
    flair = case.images["flair"]
    brain = np.zeros(case.shape, bool)
    for volume in case.images.values():
        brain |= volume != 0
    inside = flair[flair != 0]
    z = (flair - inside.mean(dtype=np.float64)) / inside.std(dtype=np.float64)
    return np.where((flair != 0) & (z > 0.5), ED, BACKGROUND).astype(np.uint8)


@pytest.mark.parametrize("axes", ["SPL", "IAR", "SLP"])
def test_an_onnx_slice_model_segments_what_it_should_on_any_axes(tmp_path, small_glioma, axes):
    path = write_onnx_threshold_model(tmp_path / "m.onnx", {"name": "thr", "sequences": FOUR, "axes": axes})
    segmenter = ImportedSegmenter(load_imported(path))
    result = segmenter.segment(small_glioma)
    expected = expected_oedema(small_glioma)
    np.testing.assert_array_equal(result.labels, expected)
    assert result.probabilities.shape == (4, *small_glioma.shape) and result.probabilities.dtype == np.uint8
    probabilities = segmenter.predict_slices(small_glioma, [3, 20])
    np.testing.assert_array_equal(np.argmax(probabilities, axis=1), expected[[3, 20]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_an_onnx_3d_model_runs_in_overlapping_windows(tmp_path, small_glioma):
    spec = {"name": "thr3d", "sequences": FOUR, "input": "3d", "axes": "LPS", "roi": [32, 32, 16],
            "output": "classes", "labels": [0, 1, 2, 4], "convention": "brats2020"}
    segmenter = ImportedSegmenter(load_imported(write_onnx_threshold_model(tmp_path / "m.onnx", spec, dims=3)))
    progress = []
    from napari_tumorseg.jobs import drive

    result = drive(segmenter.run(small_glioma), on_progress=progress.append)
    np.testing.assert_array_equal(result.labels, expected_oedema(small_glioma))
    assert progress[-1].total > 1, "several windows, each a step"


def test_torchscript_runs_only_when_trusted(tmp_path, small_glioma, torch_single_thread):
    path = write_torchscript_threshold_model(tmp_path / "m.pt", {"name": "ts", "sequences": FOUR})
    with pytest.raises(ModelError, match="m.pt: a TorchScript model runs code stored in the file"):
        load_imported(path)
    result = ImportedSegmenter(load_imported(path, trust=True), device="cpu").segment(small_glioma)
    np.testing.assert_array_equal(result.labels, expected_oedema(small_glioma))


def test_a_monai_bundle_builds_from_its_configuration_read_as_data(tmp_path, small_glioma, torch_single_thread):
    folder = write_monai_bundle(tmp_path / "bundle", roi=(32, 32, 32))
    imported = load_imported(folder)
    spec = imported.spec
    assert spec.sequences == ("t1c", "t1", "t2", "flair") and spec.input == "3d" and spec.axes == "LPS"
    assert spec.output == "regions" and spec.regions == ("TC", "WT", "ET") and spec.activation == "sigmoid"
    assert spec.roi == (32, 32, 32) and spec.normalisation == "zscore" and spec.size_multiple == 8
    assert type(imported.module).__name__ == "SegResNet" and not imported.adaptable
    result = ImportedSegmenter(imported, device="cpu").segment(small_glioma)
    assert result.labels.shape == small_glioma.shape and set(np.unique(result.labels)) <= {0, 1, 2, 3}


def test_regions_become_nested_classes_and_the_bundles_label_rule():
    spec = spec_from_dict({"sequences": FOUR, "output": "regions", "regions": ["TC", "WT", "ET"]}, "test")
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    raw = np.array([[logit(0.9), logit(0.95), logit(0.2)],  # core, not enhancing: NCR
                    [logit(0.1), logit(0.8), logit(0.05)],  # whole tumour only: ED
                    [logit(0.6), logit(0.9), logit(0.7)],  # enhancing
                    [logit(0.1), logit(0.2), logit(0.1)]], np.float32).T[None]  # (1, 3, 4)
    probabilities = class_probabilities(raw, spec)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert labels_from(raw, probabilities, spec).tolist() == [[NCR, ED, ET, BACKGROUND]]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"name": "x"}, "'sequences' is missing"),
        ({"sequences": FOUR, "colour": "red"}, r"unknown field\(s\) \['colour'\]"),
        ({"sequences": ["flair", "dwi"]}, "'sequences' must name each of"),
        ({"sequences": FOUR, "axes": "SPP"}, "'axes' must be three anatomical codes"),
        ({"sequences": FOUR, "input": "2d", "axes": "LPS"}, "first axis must be S or I"),
        ({"sequences": FOUR, "labels": [0, 1, 2, 4]}, r"'labels' must be brats2023 values"),
        ({"sequences": FOUR, "context": 2}, "only for 2.5d input"),
    ],
)
def test_a_bad_description_is_one_line_naming_the_field(tmp_path, spec, says):
    (tmp_path / "m.json").write_text(json.dumps(spec))
    (tmp_path / "m.onnx").write_bytes(b"not read")
    with pytest.raises(ModelError, match=says) as caught:
        load_imported(tmp_path / "m.onnx")
    assert "\n" not in str(caught.value) and str(tmp_path / "m.json") in str(caught.value)


def test_a_garbage_onnx_file_and_a_missing_sequence_are_refused(tmp_path, small_glioma):
    (tmp_path / "m.onnx").write_bytes(os.urandom(2000))
    (tmp_path / "m.json").write_text(json.dumps({"sequences": FOUR}))
    with pytest.raises(ModelError, match="m.onnx: not a loadable ONNX model"):
        load_imported(tmp_path / "m.onnx")
    path = write_onnx_threshold_model(tmp_path / "t.onnx", {"name": "thr", "sequences": ["flair", "t1c"]})
    small = type(small_glioma)(small_glioma.name, {"flair": small_glioma.images["flair"]}, small_glioma.geometry)
    with pytest.raises(ModelError, match="the model needs T1c; case .* has none"):
        ImportedSegmenter(load_imported(path)).segment(small)


def test_the_spacing_it_expects_is_checked(tmp_path, small_glioma):
    path = write_onnx_threshold_model(tmp_path / "m.onnx", {"sequences": FOUR, "spacing": [1.0, 1.0, 1.0]})
    warning = ImportedSegmenter(load_imported(path)).spacing_warning(small_glioma)
    assert "expects 1 x 1 x 1 mm" in warning and "resample" in warning


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: _network(d, init_filters="$__import__('os').system('touch pwned')"), "is a Python expression"),
        (lambda d: _network(d, _target_="os.system"), "network 'os.system' is not one this program builds"),
        (lambda d: _network(d, init_filters=100_000), "beyond any network this program builds"),
        (lambda d: (d / "models" / "model.pt").write_bytes(pickle.dumps({"x": _Exploit()})), "pickled Python code"),
        (lambda d: _network(d, init_filters=16), "the weights do not fit network_def"),
    ],
)
def test_a_hostile_bundle_is_refused_and_runs_nothing(tmp_path, monkeypatch, damage, says, torch_single_thread):
    folder = write_monai_bundle(tmp_path / "bundle")
    damage(folder)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=says):
        load_imported(folder)
    assert not (tmp_path / "pwned").exists()


def _network(folder, **changes):
    path = folder / "configs" / "inference.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["network_def"].update(changes)
    path.write_text(json.dumps(config))


def test_the_command_line_segments_a_dicom_case_with_an_onnx_model_into_a_dicom_seg(tmp_path, capsys,
                                                                                     small_glioma_folder):
    from napari_tumorseg.cli import main
    from napari_tumorseg.io import read_case
    from napari_tumorseg.io.dicom_seg import read_dicom_seg
    from napari_tumorseg.io.testing import ORIENTATIONS, write_dicom_series

    volume = np.zeros((20, 24, 10), np.int16)
    volume[4:16, 4:20, 2:8] = 100
    volume[8:12, 8:14, 3:7] = 400  # bright: the threshold model's oedema
    write_dicom_series(tmp_path / "case" / "flair", volume, ORIENTATIONS["RAS"], description="AX FLAIR",
                       series_number=3)
    model = write_onnx_threshold_model(tmp_path / "m.onnx", {"name": "thr", "sequences": ["flair"]})
    out = tmp_path / "mask.dcm"
    # The box looks like a head with its skull to the checks, so segment prepares it (no brain extraction asked)
    # and the SEG goes back onto the series' own grid.
    assert main(["segment", str(tmp_path / "case"), "--model", str(model), "-o", str(out), "--quiet",
                 "--brain", "none"]) == 0
    assert "thr (ONNX)" in capsys.readouterr().err
    case = read_case(tmp_path / "case")
    np.testing.assert_array_equal(read_dicom_seg(out, case), expected_oedema(case))
    # A NIfTI-read case cannot become a DICOM SEG: refused before the model runs.
    assert main(["segment", str(small_glioma_folder), "--model", str(model), "-o", str(tmp_path / "x.dcm")]) == 2
    assert "a DICOM SEG needs a case read from DICOM series" in capsys.readouterr().err
    assert not (tmp_path / "x.dcm").exists()


def test_the_adapt_command_refuses_an_imported_model_in_one_line(tmp_path, small_glioma_folder, capsys):
    from napari_tumorseg.cli import main

    model = write_onnx_threshold_model(tmp_path / "m.onnx", {"name": "thr", "sequences": ["flair"]})
    seg = next(small_glioma_folder.glob("*_seg.nii.gz"))
    assert main(["adapt", "--case", str(small_glioma_folder), "--corrected", str(seg), "--slices", "20",
                 "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "cannot be adapted" in err and "imported ONNX model segments as it is" in err and len(err.splitlines()) == 1
