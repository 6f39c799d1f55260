"""``tumorseg adapt`` and ``tumorseg models`` on a small synthetic case, with a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_adapt_helpers import tiny_model

from napari_tumorseg.cli import main
from napari_tumorseg.io import read_case, write_case, write_mask
from napari_tumorseg.models.checkpoint import save_checkpoint

torch.set_num_threads(1)
SHAPE = "48,80,80"


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    from napari_tumorseg.synth.generate import make_case

    case = make_case("metastasis", 3, shape=tuple(int(v) for v in SHAPE.split(",")))
    root = tmp_path_factory.mktemp("adapt_cli")
    folder = write_case(case, root / case.name)
    tumour = np.flatnonzero(case.label.reshape(case.shape[0], -1).any(axis=1))
    slices = [int(tumour[len(tumour) // 3]), int(tumour[2 * len(tumour) // 3])]
    mask = write_mask(case.label, case.geometry, root / "corrected.nii.gz", convention="brats2020")
    checkpoint = save_checkpoint(root / "tiny.safetensors", tiny_model())
    return folder, mask, slices, checkpoint


def adapt(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["adapt", "--anchor-shape", SHAPE, "--steps", "2", "--crop", "32", "--threads", "1", *args])
    captured = capsys.readouterr()
    return status, captured.out.strip(), captured.err


def test_adapt_then_list_rollback_and_delete(case_files, capsys, tmp_path):
    folder, mask, slices, checkpoint = case_files
    report_path = tmp_path / "report.json"
    common = ["--case", str(folder), "--corrected", str(mask), "--slices", ",".join(map(str, slices))]
    status, first, err = adapt(
        capsys,
        *common,
        "--method",
        "naive",
        "--model",
        str(checkpoint),
        "--tolerance",
        "1",
        "--report",
        str(report_path),
    )
    assert status == 0, err
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["version_id"] == first and report["status"] == "active" and report["method"] == "naive"
    assert report["corrections"][0]["slices"] == slices
    assert report["dice"]["held_out"]["slices"] > 0 and report["dice"]["anchor"]["slices"] == 16
    assert "Dice" in err
    assert report["device"] in ("cpu", "cuda", "cuda:0", "mps")  # --device auto: the segmenter's choice
    assert report["label_free"]["slices"] == 12 and "without labels" in err
    assert report["lineage"]["budget"] == 1.0  # never tighter than --tolerance

    status, second, err = adapt(capsys, *common, "--method", "active", "--first-order", "--tolerance", "1")
    assert status == 0, err
    assert main(["models", "list", "--json"]) == 0
    listed = {v["id"]: v for v in json.loads(capsys.readouterr().out)["versions"]}
    assert listed[second]["active"] and listed[second]["parent"] == first
    assert listed[second]["hyperparameters"]["first_order"] is True

    assert main(["models", "rollback"]) == 0
    assert capsys.readouterr().out.strip() == f"active: {first}"
    assert main(["models", "delete", first]) == 2
    assert "is active" in capsys.readouterr().err
    assert main(["models", "delete", second]) == 0
    assert capsys.readouterr().out.strip() == f"deleted: {second}"
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert first in table and second not in table


def test_adapt_from_a_saved_corrections_folder(case_files, capsys, tmp_path):
    folder, _, slices, checkpoint = case_files
    case = read_case(folder)
    session = tmp_path / "session"
    session.mkdir()
    np.savez_compressed(session / "corrections.npz", indices=np.array(slices, np.int32), slices=case.label[slices])
    status, version, err = adapt(
        capsys,
        "--case",
        str(folder),
        "--corrected",
        str(session),
        "--model",
        str(checkpoint),
        "--method",
        "naive",
        "--tolerance",
        "1",
    )
    assert status == 0, err
    assert version.startswith("v")
    # The case's corrections are kept beside the registry, for replay when another case is adapted.
    from napari_tumorseg.adapt.memory import CorrectionMemory
    from napari_tumorseg.models.registry import ModelRegistry

    (entry,) = CorrectionMemory.beside(ModelRegistry().root).entries()
    assert entry.case_name == case.name and entry.slices == tuple(slices)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--slices", "999"], "outside"),
        ([], "give --slices"),
        (["--slices", "20", "--method", "dycnn"], "no dynamic convolutions"),
        (["--slices", "0"], "hold no brain"),
        (["--slices", "20", "--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_bad_input_exits_2_with_one_line(case_files, capsys, extra, message):
    folder, mask, _, checkpoint = case_files
    status, out, err = adapt(
        capsys, "--case", str(folder), "--corrected", str(mask), "--model", str(checkpoint), *extra
    )
    assert status == 2 and out == ""
    assert err.startswith("tumorseg: error: ") and message in err and err.strip().count("\n") == 0
