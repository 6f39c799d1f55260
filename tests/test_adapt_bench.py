"""`tumorseg bench-adapt`'s measurement: each repeat is a whole adaptation in the same process, the first reported."""

from __future__ import annotations

import torch

from napari_tumorseg.adapt.bench import benchmark_adaptation
from napari_tumorseg.models import build_model


def test_repeats_time_whole_adaptations_in_one_process_and_report_the_first():
    torch.manual_seed(0)
    model = build_model("unet", base_width=4, depth=2)
    result = benchmark_adaptation("naive", model=model, slices=2, threads=1, shape=(24, 48, 48), cache_dir=None,
                                  repeats=2, steps=1, replay=2)
    runs = result["runs"]
    assert len(runs) == 2
    for run in runs:
        assert run["adapt_and_guard_s"] > 0 and run["phases"]["adapting"] > 0
    assert result["timings"]["adapt_and_guard_s"] == runs[0]["adapt_and_guard_s"]
    assert result["phases"] == runs[0]["phases"]
    assert result["device"] == "cpu" and result["corrected_slices"] == 2
