"""``tumorseg bench --peer segresnet``: MONAI's SegResNet as its BraTS bundle runs it, timed beside ours.

Tiny volumes and a tiny sliding window: these check the comparison's
mechanics and the bundle's configuration, never the speed itself.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from napari_tumorseg.cli import main
from napari_tumorseg.inference.benchmark import phantom_case, save_case_arrays
from napari_tumorseg.inference.peer import BUNDLE_NETWORK, BUNDLE_ROI, bundle_input

SMALL = (12, 40, 40)
SMALL_ROI = [40, 40, 16]  # (X, Y, Z): covers the tiny volume in one window, divisible by SegResNet's 8


def test_bundle_input_is_the_stored_xyz_grid_in_the_decathlon_channel_order():
    case = phantom_case(SMALL, seed=1)
    case.images.pop("t1")
    image = bundle_input(case)
    assert image.shape == (4, 40, 40, 12) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0], case.images["flair"].transpose(2, 1, 0))
    np.testing.assert_array_equal(image[2], case.images["t1c"].transpose(2, 1, 0))
    assert not image[1].any()  # a missing modality is a zero channel


def test_peer_has_the_bundle_network_and_writes_brats_labels():
    pytest.importorskip("monai")
    from napari_tumorseg.inference.peer import SegResNetPeer

    assert BUNDLE_ROI == (240, 240, 160)
    peer = SegResNetPeer(SMALL_ROI, seed=0)
    described = peer.describe()
    assert described["network"] == {"blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1], "init_filters": 16,
                                    "in_channels": 4, "out_channels": 3, "dropout_prob": 0.2}
    assert described["sw_batch_size"] == 1 and described["overlap"] == 0.5 and not described["bundle_roi_size"]
    assert not peer.network.training  # dropout off, as in the bundle's evaluator
    labels = peer.segment(phantom_case(SMALL))
    assert labels.shape == (40, 40, 12) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, 4}
    assert BUNDLE_NETWORK["init_filters"] == 16


def test_measure_versus_interleaves_rounds_and_pairs_the_ratios(tmp_path: Path, capsys):
    pytest.importorskip("monai")
    from napari_tumorseg.inference.versus import VersusSpec, measure_versus

    save_case_arrays(phantom_case(SMALL), tmp_path / "case.npz")
    spec = VersusSpec(case_file=str(tmp_path / "case.npz"), ours=["unet"], threads=1, repeats=2,
                      peer_roi=SMALL_ROI)
    result = measure_versus(spec)
    ours, peer = result["contestants"]
    assert ours["role"] == "ours" and peer["role"] == "peer" and result["threads"] == 1
    assert len(ours["warm_runs"]) == len(peer["warm_runs"]) == 2
    assert ours["warm_min_seconds"] <= ours["warm_median_seconds"] <= ours["warm_max_seconds"]
    paired = [a / b for a, b in zip(ours["warm_runs"], peer["warm_runs"])]
    assert ours["versus_peer"]["median_of_paired"] == pytest.approx(statistics.median(paired), rel=1e-2)
    assert "versus_peer" not in peer and result["load_average_before"] is not None
    rounds = [line.split(": ", 2)[2] for line in capsys.readouterr().err.splitlines() if ": round " in line]
    assert [r.split(" ")[0] for r in rounds] == ["unet", "SegResNet", "SegResNet", "unet"]  # A B, then B A


def test_bench_peer_command_prints_a_table_and_writes_the_json(tmp_path: Path, capsys):
    pytest.importorskip("monai")
    out = tmp_path / "versus.json"
    status = main(["bench", "--peer", "segresnet", "--phantom", "--shape", "12,40,40", "--peer-roi", "40,40,16",
                   "--arch", "unet", "--repeats", "1", "--threads", "1", "-o", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "ours / peer" in printed and "SegResNet (MONAI BraTS bundle)" in printed and "not judged here" in printed
    report = json.loads(out.read_text(encoding="utf-8"))
    names = [c["name"] for c in report["versus"]["contestants"]]
    assert names == ["unet (random weights)", "SegResNet (MONAI BraTS bundle)"]
    assert report["case"]["shape"] == [12, 40, 40] and report["versus"]["threads"] == 1
    assert report["versus"]["contestants"][1]["roi_size"] == [40, 40, 16]


def test_the_targets_are_judged_only_on_a_brats_volume_on_the_cpu():
    from napari_tumorseg.cli._bench_peer import verdict_lines

    def report(shape, warm, ratio, device="cpu"):
        ours = {"name": "m", "warm_median_seconds": warm, "versus_peer": {"median_of_paired": ratio}}
        return {"case": {"shape": shape}, "versus": {"device": device, "threads": 2,
                                                     "contestants": [ours, {"name": "peer"}]}}

    [line] = verdict_lines(report([155, 240, 240], 4.2, 0.3))
    assert "4.20 s (met" in line and "0.30 of the peer (met" in line
    [line] = verdict_lines(report([155, 240, 240], 6.0, 0.6))
    assert "(NOT met: <= 5 s)" in line and "0.60 of the peer (NOT met" in line
    assert "not judged" in verdict_lines(report([12, 40, 40], 0.1, 0.3))[0]
    assert "not judged" in verdict_lines(report([155, 240, 240], 0.1, 0.3, device="cuda"))[0]


def test_bench_peer_without_monai_is_a_one_line_error(monkeypatch, capsys):
    import napari_tumorseg.inference.peer as peer

    monkeypatch.setattr(peer, "monai_available", lambda: False)
    assert main(["bench", "--peer", "segresnet", "--phantom", "--shape", "12,40,40"]) == 2
    assert "pip install 'napari-tumorseg[bench]'" in capsys.readouterr().err


def _bench_args(**overrides):
    import argparse

    values = {"case": None, "phantom": False, "shape": SMALL, "seed": 0, **overrides}
    return argparse.Namespace(**values)


def test_bench_times_the_real_brats_glioma_when_the_real_set_is_there(tmp_path: Path, monkeypatch, small_glioma):
    from dataclasses import replace

    from napari_tumorseg.cli._bench_case import bench_case
    from napari_tumorseg.io import write_case

    real = tmp_path / "real"
    write_case(replace(small_glioma, name="BraTS-GLI-00001-000"), real / "BraTS-GLI-00001-000", layout="brats2023")
    monkeypatch.setenv("TUMORSEG_REAL_DATA", str(real))
    case, source = bench_case(_bench_args(), real_default=True)
    assert source.startswith("real BraTS 2023 glioma BraTS-GLI-00001-000") and case.shape == small_glioma.shape
    case, source = bench_case(_bench_args(), real_default=False)  # plain `tumorseg bench` keeps its synthetic case
    assert "real" not in source
    monkeypatch.setenv("TUMORSEG_REAL_DATA", str(tmp_path / "absent"))
    case, source = bench_case(_bench_args(phantom=True), real_default=True)
    assert source.startswith("ellipsoid phantom") and case.shape == SMALL
    case, source = bench_case(_bench_args(case=real / "BraTS-GLI-00001-000"), real_default=True)
    assert "--case" in source and case.shape == small_glioma.shape


def test_the_case_file_keeps_the_voxel_spacing(tmp_path: Path):
    from dataclasses import replace

    from napari_tumorseg.inference.benchmark import load_case_arrays
    from napari_tumorseg.io.case import Geometry

    affine = np.array([[0, 0, -1.2, 0], [0, -0.9, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    case = replace(phantom_case(SMALL), geometry=Geometry(affine, SMALL))
    save_case_arrays(case, tmp_path / "case.npz")
    loaded = load_case_arrays(tmp_path / "case.npz")
    assert loaded.geometry.spacing == pytest.approx((2.5, 0.9, 1.2)) and loaded.modalities == case.modalities
