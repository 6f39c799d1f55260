"""Statistics, seed bookkeeping and result files shared by the experiments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_tumorseg.experiments.common import (
    LIFELONG_TEST_SEEDS,
    LIFELONG_TRAIN_SEEDS,
    META_TUNE_HELD_OUT_SEEDS,
    META_TUNE_PATIENT_SEEDS,
    RESERVED_SEEDS,
    STAND_IN_PRETRAIN_SEEDS,
    check_seeds,
    format_mean_std,
    format_p,
    json_ready,
    paired_test,
    summarize,
    without_timings,
    write_json,
)


def test_summarize_mean_and_both_spreads():
    # 3 patients x 2 seeds
    values = np.array([[0.2, 0.4], [0.5, 0.5], [0.8, 1.0]])
    stats = summarize(values)
    assert stats["mean"] == pytest.approx(values.mean())
    # patients' means 0.3, 0.5, 0.9 -> sample std
    assert stats["std_patients"] == pytest.approx(np.std([0.3, 0.5, 0.9], ddof=1))
    # seeds' means 0.5, 0.6333
    assert stats["std_seeds"] == pytest.approx(np.std([0.5, (0.4 + 0.5 + 1.0) / 3], ddof=1))
    assert (stats["n_patients"], stats["n_seeds"]) == (3, 2)


def test_summarize_skips_missing_and_has_no_spread_of_one_value():
    stats = summarize(np.array([[0.5, np.nan], [np.nan, np.nan]]))
    assert stats["mean"] == 0.5
    assert stats["std_patients"] is None and stats["std_seeds"] is None
    assert stats["n_patients"] == 1


def test_paired_test_matches_the_wilcoxon_table():
    # Differences 1..8, all positive: W- = 0, the exact two-sided p is 2 / 2**8.
    a = np.arange(1, 9, dtype=float) + 10
    b = np.full(8, 10.0)
    result = paired_test(a, b)
    assert result["n"] == 8
    assert result["statistic"] == 0.0
    assert result["p_value"] == pytest.approx(2 / 2**8)
    assert (result["a_better"], result["b_better"]) == (8, 0)
    assert result["mean_difference"] == pytest.approx(4.5)


def test_paired_test_known_mixed_example():
    # Differences +1, +2, -3, +4, +5: ranks 1, 2, 3, 4, 5; W- = 3 -> exact two-sided p = 2 * P(W <= 3) = 2 * 5/32.
    a = [1.0, 2.0, -3.0, 4.0, 5.0]
    result = paired_test(a, [0.0] * 5)
    assert result["statistic"] == 3.0
    assert result["p_value"] == pytest.approx(2 * 5 / 32)


def test_paired_test_all_equal_and_missing_pairs():
    assert paired_test([0.3, 0.4], [0.3, 0.4])["p_value"] == 1.0
    result = paired_test([0.3, np.nan, 0.9], [0.1, 0.2, np.nan])
    assert result["n"] == 1
    with pytest.raises(ValueError):
        paired_test([1.0], [1.0, 2.0])


def test_reserved_seeds_match_the_modules_that_own_them():
    from napari_tumorseg.adapt.anchors import ANCHOR_SEEDS, REPLAY_SEEDS
    from napari_tumorseg.adapt.bench import BENCH_CASE_SEED
    from napari_tumorseg.cli._train_options import DEFAULT_VALIDATION_SEEDS
    from napari_tumorseg.cli.train import EVALUATION_SEEDS
    from napari_tumorseg.training.data import seed_range

    def reserved(domain: str, seed: int) -> bool:
        return any(seed in r for r in RESERVED_SEEDS[domain])

    for domain, seeds in EVALUATION_SEEDS.items():
        assert all(reserved(domain, s) for s in seeds)
    for seed in (*ANCHOR_SEEDS, *REPLAY_SEEDS, *seed_range(DEFAULT_VALIDATION_SEEDS), *range(64)):
        assert reserved("glioma", seed)
    assert reserved("metastasis", BENCH_CASE_SEED)
    # The experiments' own ranges are clear of all of them.
    for domain, start in (("metastasis", META_TUNE_PATIENT_SEEDS), ("metastasis", META_TUNE_HELD_OUT_SEEDS),
                          ("glioma", LIFELONG_TRAIN_SEEDS), ("glioma", LIFELONG_TEST_SEEDS),
                          ("glioma", STAND_IN_PRETRAIN_SEEDS)):
        assert not any(reserved(domain, s) for s in range(start, start + 200))


def test_check_seeds_refuses_overlap_and_reserved():
    check_seeds({"a": ("metastasis", [30000, 30001]), "b": ("metastasis", [31000])})
    with pytest.raises(ValueError, match="both"):
        check_seeds({"a": ("glioma", [40000]), "b": ("glioma", [40000])})
    with pytest.raises(ValueError, match="reserved"):
        check_seeds({"test": ("metastasis", [20005])})


def test_json_ready_and_write_json(tmp_path):
    data = {"a": np.float32(0.5), "b": float("nan"), "c": (1, np.int64(2)), "d": np.array([1.0, np.inf])}
    assert json_ready(data) == {"a": 0.5, "b": None, "c": [1, 2], "d": [1.0, None]}
    write_json(tmp_path / "r.json", data)
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["b"] is None


def test_without_timings_drops_only_volatile_fields():
    doc = {"timings": {"x": 1}, "records": [{"seconds": 2.0, "own": {"ET": 0.5}}], "machine": {}, "k": 5}
    assert without_timings(doc) == {"records": [{"own": {"ET": 0.5}}], "k": 5}


def test_formatting():
    assert format_mean_std({"mean": 0.4523, "std_patients": 0.2317}) == "0.452 ± 0.232"
    assert format_mean_std({"mean": None}) == "n/a"
    assert format_p(0.0001) == "<0.001" and format_p(0.0312) == "0.0312" and format_p(None) == "n/a"
    assert not math.isnan(summarize([[0.1], [0.3]])["std_patients"])
