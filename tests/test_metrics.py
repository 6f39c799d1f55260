"""Metrics: Dice and HD95 against MONAI, empty-mask conventions, BraTS regions and lesion-wise scores."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric

from napari_tumorseg.metrics import (
    BRATS_EMPTY_HD95,
    LESION_MISS_HD95,
    dice,
    hd95,
    lesion_wise_scores,
    region_metrics,
    summarize,
)

torch.set_num_threads(1)


def _ball(shape, center, radius, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((g - c) * sp) ** 2 for g, c, sp in zip(grids, center, spacing)) <= radius**2


def _random_blobs(shape, seed: int, density: float) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.random(shape), 1.5)
    return noise > np.quantile(noise, 1 - density)


def _mask_pairs():
    shape = (20, 28, 24)
    yield "random", _random_blobs(shape, 1, 0.2), _random_blobs(shape, 2, 0.25)
    yield "noise", np.random.default_rng(3).random(shape) > 0.7, np.random.default_rng(4).random(shape) > 0.6
    yield "balls", _ball(shape, (10, 12, 11), 6), _ball(shape, (11, 14, 10), 5)
    yield "border", np.pad(np.ones((6, 28, 10), bool), ((0, 14), (0, 0), (0, 14))), _ball(shape, (3, 14, 5), 7)
    yield "far apart", _ball(shape, (5, 5, 5), 3), _ball(shape, (15, 22, 18), 4)


def _monai(metric, pred: np.ndarray, ref: np.ndarray, **kwargs) -> float:
    as_tensor = lambda m: torch.from_numpy(m.astype(np.float32))[None, None]  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(metric(y_pred=as_tensor(pred), y=as_tensor(ref), **kwargs)[0, 0])


@pytest.mark.parametrize("name, pred, ref", list(_mask_pairs()), ids=[p[0] for p in _mask_pairs()])
def test_dice_equals_monai(name: str, pred: np.ndarray, ref: np.ndarray) -> None:
    expected = _monai(DiceMetric(include_background=True, reduction="none", ignore_empty=False), pred, ref)
    assert dice(pred, ref) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.9, 1.2)])
@pytest.mark.parametrize("name, pred, ref", list(_mask_pairs()), ids=[p[0] for p in _mask_pairs()])
def test_hd95_equals_monai(name: str, pred: np.ndarray, ref: np.ndarray, spacing) -> None:
    metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    expected = _monai(metric, pred, ref, spacing=list(spacing))
    assert hd95(pred, ref, spacing) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert hd95(ref, pred, spacing) == pytest.approx(expected, rel=1e-5, abs=1e-5)  # symmetric


def test_hd95_in_2d_equals_monai() -> None:
    pred, ref = _random_blobs((40, 36), 5, 0.3), _random_blobs((40, 36), 6, 0.2)
    metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    assert hd95(pred, ref, (1.5, 0.7)) == pytest.approx(_monai(metric, pred, ref, spacing=[1.5, 0.7]), rel=1e-5)


def test_hd95_of_a_shifted_slab_is_the_shift_in_mm() -> None:
    ref = np.zeros((30, 10, 10), bool)
    ref[5:15] = True
    pred = np.roll(ref, 4, axis=0)
    # Every surface voxel of the slab's faces moves 4 slices of 2 mm.
    assert hd95(pred, ref, (2.0, 1.0, 1.0)) == pytest.approx(8.0)


def test_empty_mask_conventions() -> None:
    empty, full = np.zeros((5, 6, 7), bool), _ball((5, 6, 7), (2, 3, 3), 2)
    assert dice(empty, empty) == 1.0 and hd95(empty, empty) == 0.0
    assert dice(full, empty) == 0.0 and dice(empty, full) == 0.0
    assert hd95(full, empty) == hd95(empty, full) == pytest.approx(373.1287, abs=1e-3) == BRATS_EMPTY_HD95
    assert math.isnan(hd95(empty, full, empty_value=float("nan")))
    with pytest.raises(ValueError, match="shape"):
        dice(full, full[:-1])


def test_region_metrics_build_brats_regions_from_internal_labels() -> None:
    ref = np.zeros((16, 20, 20), np.uint8)
    ref[_ball(ref.shape, (8, 10, 10), 7)] = 2  # oedema
    ref[_ball(ref.shape, (8, 10, 10), 4)] = 1  # necrosis
    ref[_ball(ref.shape, (8, 10, 10), 3)] = 3  # enhancing (> 50 mm3: scored lesion-wise)
    pred = ref.copy()
    pred[pred == 3] = 1  # enhancing tumour called necrosis: WT and TC intact, ET missed
    scores = region_metrics(pred, ref, spacing=(1.0, 1.0, 1.0))
    assert scores["WT"]["dice"] == 1.0 and scores["TC"]["dice"] == 1.0 and scores["WT"]["hd95"] == 0.0
    assert scores["ET"]["dice"] == 0.0 and scores["ET"]["hd95"] == BRATS_EMPTY_HD95
    assert scores["ET"]["lesion_dice"] == 0.0 and scores["ET"]["lesion_hd95"] == LESION_MISS_HD95
    only_et = region_metrics(pred, ref, regions=["ET"], lesion_wise=False)
    assert list(only_et) == ["ET"] and set(only_et["ET"]) == {"dice", "hd95"}
    with pytest.raises(ValueError, match="regions"):
        region_metrics(pred, ref, regions=["XX"])


SHAPE = (30, 40, 40)


def test_lesion_wise_missed_and_false_positive_lesions_score_zero() -> None:
    first, second = _ball(SHAPE, (8, 10, 10), 4), _ball(SHAPE, (20, 30, 30), 4)
    ref = first | second
    false_positive = _ball(SHAPE, (22, 8, 32), 3)
    pred = first | false_positive  # the first lesion exactly, the second missed
    scores = lesion_wise_scores(pred, ref)
    assert (scores.true_positives, scores.false_negatives, scores.false_positives) == (1, 1, 1)
    assert scores.dice == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert scores.hd95 == pytest.approx((0.0 + 374.0 + 374.0) / 3)
    # The whole-volume Dice hides the per-lesion picture.
    assert dice(pred, ref) > 0.4


def test_lesion_wise_matching_goes_through_the_dilated_reference() -> None:
    ref = _ball(SHAPE, (15, 20, 20), 5)
    near = np.roll(ref, 8, axis=2) & ~ref  # touches nothing, lies within 3 voxels of the lesion
    near_only = np.zeros(SHAPE, bool)
    near_only[15, 20, 26 + 2] = True  # 2 voxels beyond the lesion's edge: within the dilation
    far_only = np.zeros(SHAPE, bool)
    far_only[15, 20, 26 + 6] = True  # 6 voxels beyond: outside
    assert lesion_wise_scores(near_only, ref).false_positives == 0
    assert lesion_wise_scores(near_only, ref).true_positives == 1
    assert lesion_wise_scores(far_only, ref).false_positives == 1
    matched = lesion_wise_scores(ref | near, ref)
    assert matched.lesions[0].dice == pytest.approx(dice(ref | near, ref))


def test_reference_components_joined_by_dilation_are_one_lesion() -> None:
    a = np.zeros(SHAPE, bool)
    a[10:16, 10:16, 10:16] = True
    b = np.zeros(SHAPE, bool)
    b[10:16, 10:16, 19:25] = True  # a gap of 3 voxels: dilation by 3 joins them
    scores = lesion_wise_scores(a, a | b)
    assert len(scores.lesions) == 1 and scores.lesions[0].volume_mm3 == 2 * 216
    assert scores.dice == pytest.approx(dice(a, a | b))
    c = np.zeros(SHAPE, bool)
    c[10:16, 10:16, 30:36] = True  # 14 voxels away from b: a separate lesion
    assert len(lesion_wise_scores(a, a | c).lesions) == 2


def test_small_reference_lesions_are_not_scored_and_spacing_sets_their_volume() -> None:
    big, small = _ball(SHAPE, (10, 10, 10), 5), np.zeros(SHAPE, bool)
    small[24:27, 30:33, 30:33] = True  # 27 voxels
    pred = big | small
    scores = lesion_wise_scores(pred, big | small)
    assert len(scores.lesions) == 1 and scores.false_positives == 0 and scores.dice == 1.0
    anisotropic = lesion_wise_scores(pred, big | small, spacing=(2.0, 1.0, 1.0))  # 54 mm3 > 50
    assert len(anisotropic.lesions) == 2 and anisotropic.dice == 1.0
    missed_small = lesion_wise_scores(big, big | small)
    assert missed_small.dice == 1.0 and missed_small.false_negatives == 0


def test_lesion_wise_empty_conventions() -> None:
    empty = np.zeros(SHAPE, bool)
    both = lesion_wise_scores(empty, empty)
    assert (both.dice, both.hd95) == (1.0, 0.0)
    only_pred = lesion_wise_scores(_ball(SHAPE, (10, 10, 10), 4), empty)
    assert only_pred.dice == 0.0 and only_pred.hd95 == 374.0 and only_pred.false_positives == 1


def test_summarize_mean_std_and_nan() -> None:
    cases = [
        {"ET": {"dice": 0.5, "hd95": 2.0}},
        {"ET": {"dice": 1.0, "hd95": float("nan")}},
    ]
    summary = summarize(cases)
    assert summary["ET"]["dice"] == {"mean": 0.75, "std": 0.25, "n": 2}
    assert summary["ET"]["hd95"] == {"mean": 2.0, "std": 0.0, "n": 1}
