"""The lifelong stream's pieces: single-modality restriction, batch order, forgetting measures."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.experiments.lifelong import LifelongConfig, restrict, stream_batches
from napari_tumorseg.experiments.lifelong_analysis import run_measures
from napari_tumorseg.training.data import SliceCache


def fake_cache(cases: int = 4) -> SliceCache:
    rng = np.random.default_rng(0)
    images = tuple((rng.normal(size=(3, 4, 16, 16)) + 5).astype(np.float16) for _ in range(cases))
    labels = tuple(np.ones((3, 16, 16), np.uint8) for _ in range(cases))
    availability = tuple(np.ones(4, np.float32) for _ in range(cases))
    return SliceCache(images, labels, availability, tuple(f"c{i}" for i in range(cases)), 0)


def test_restrict_keeps_one_modality_per_case_and_marks_the_others_absent():
    cache = fake_cache()
    out = restrict(cache, [0, 1, 2], ["t2", "flair", "t2"])  # order flair, t1, t1c, t2
    assert [a.tolist() for a in out.availability] == [[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1]]
    assert np.all(out.images[0][:, :3] == 0) and np.all(out.images[0][:, 3] == cache.images[0][:, 3])
    assert np.all(out.images[1][:, 1:] == 0) and np.all(out.images[1][:, 0] == cache.images[1][:, 0])
    same = restrict(cache, [3], "flair")
    assert same.availability[0].tolist() == [1, 0, 0, 0]
    with pytest.raises(ValueError):
        restrict(cache, [0, 1], ["t2"])


def test_stream_batches_alternate_and_cover_every_patient_once():
    config = LifelongConfig(train_patients=8, large_batch=2, small_batch=1)
    modalities = ["t2", "flair"] * 4
    large = stream_batches(config, "large", modalities)
    assert [m for m, _ in large] == ["t2", "flair", "t2", "flair"]
    assert sorted(c for _, cases in large for c in cases) == list(range(8))
    assert all(modalities[c] == m for m, cases in large for c in cases)
    small = stream_batches(config, "small", modalities)
    assert len(small) == 8 and [m for m, _ in small][:3] == ["t2", "flair", "t2"]
    joint = stream_batches(config, "joint", modalities)
    assert len(joint) == 8 and all(m is None and cases == list(range(8)) for m, cases in joint)


def test_forgetting_measures_on_a_hand_made_curve():
    def batch(modality, t2, flair):
        return {"modality": modality, "t2": {"WT": t2}, "flair": {"WT": flair}}

    curve = [batch("t2", 0.8, 0.1), batch("flair", 0.3, 0.9), batch("t2", 0.85, 0.4)]
    measures = run_measures(curve, "WT")
    # R[N][m_b] - R[b][m_b] for b = 1, 2: (0.85 - 0.8) and (0.4 - 0.9)
    assert measures["backward_transfer"] == pytest.approx(((0.85 - 0.8) + (0.4 - 0.9)) / 2)
    # drops of the untrained modality: batch 2 trains flair, t2 0.8 -> 0.3; batch 3 trains t2, flair 0.9 -> 0.4
    assert measures["drop_on_switch"] == pytest.approx(((0.8 - 0.3) + (0.9 - 0.4)) / 2)
    assert measures["final_average"] == pytest.approx((0.85 + 0.4) / 2)
    assert measures["curve_average"] == pytest.approx(np.mean([0.45, 0.6, 0.625]))
    mixed = run_measures([batch("mixed", 0.5, 0.6)], "WT")
    assert mixed["backward_transfer"] is None and mixed["drop_on_switch"] is None


def test_without_availability_the_network_is_not_told_the_modality():
    cache = fake_cache()
    told = restrict(cache, [0, 1], ["t2", "flair"])
    blind = restrict(cache, [0, 1], ["t2", "flair"], availability=False)
    assert [a.tolist() for a in told.availability] == [[0, 0, 0, 1], [1, 0, 0, 0]]
    assert all(a.tolist() == [1, 1, 1, 1] for a in blind.availability)
    np.testing.assert_array_equal(told.images[0], blind.images[0])  # the images are the same either way
