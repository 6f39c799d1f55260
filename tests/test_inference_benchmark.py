"""The benchmark behind ``tumorseg bench``: what it measures and the JSON it prints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_tumorseg.cli import main
from napari_tumorseg.inference.benchmark import (
    BenchSpec,
    load_case_arrays,
    measure,
    phantom_case,
    save_case_arrays,
)

SMALL = (12, 40, 40)


def test_phantom_round_trips_through_the_case_file(tmp_path: Path) -> None:
    case = phantom_case(SMALL, seed=3)
    assert case.shape == SMALL and case.modalities == ("flair", "t1", "t1c", "t2")
    save_case_arrays(case, tmp_path / "case.npz")
    loaded = load_case_arrays(tmp_path / "case.npz")
    for key in case.modalities:
        np.testing.assert_array_equal(loaded.images[key], case.images[key])


def test_measure_reports_cold_warm_memory_and_work(tmp_path: Path) -> None:
    case = phantom_case(SMALL)
    save_case_arrays(case, tmp_path / "case.npz")
    spec = BenchSpec(case_file=str(tmp_path / "case.npz"), arch="unet", device="cpu", repeats=2, threads=1)
    result = measure(spec)
    assert result["arch"] == "unet" and result["device"] == "cpu" and result["threads"] == 1
    assert len(result["warm_runs"]) == 2 and result["warm_min_seconds"] <= result["warm_seconds"]
    assert result["cold_seconds"] > 0 and result["slice_seconds"] > 0
    assert result["peak_rss_mb"] > 50 and result["peak_gpu_mb"] is None
    brain_slices = int(np.any(case.images["flair"] != 0, axis=(1, 2)).sum())
    assert result["slices_run"] == brain_slices
    assert result["parameters"] > 1_000_000  # the default base-16, depth-4 network


def test_bench_command_writes_json_for_each_architecture(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    arguments = ["--phantom", "--shape", "12,40,40", "--device", "cpu", "--repeats", "1", "--threads", "1"]
    status = main(["bench", *arguments, "-o", str(out)])
    assert status == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(capsys.readouterr().out) == report
    assert [r["arch"] for r in report["results"]] == ["unet", "dycnn"]
    assert all("error" not in r and r["warm_seconds"] > 0 for r in report["results"])
    assert report["case"]["shape"] == [12, 40, 40] and report["machine"]["cpu_cores"] >= 1


def test_bench_times_each_flip_averaging_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    arguments = ["--phantom", "--shape", "12,40,40", "--device", "cpu", "--repeats", "1", "--threads", "1"]
    assert main(["bench", *arguments, "--arch", "unet", "--mirror", "none", "all", "-o", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert [(r["arch"], r["mirror"]) for r in results] == [("unet", "none"), ("unet", "all")]


def test_bench_with_a_missing_model_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--model", str(tmp_path / "none.safetensors")]) == 2
    assert "none.safetensors: no such checkpoint file" in capsys.readouterr().err
