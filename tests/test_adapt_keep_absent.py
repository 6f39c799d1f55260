"""The bias correction of a tumour class the corrections lack (``adapt.prior``, ``AdaptConfig.keep_absent``)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from test_adapt_helpers import drive, tiny_model, toy_anchor, toy_corrections

from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import Corrections
from napari_tumorseg.adapt.eval_sets import score_set
from napari_tumorseg.adapt.prior import absent_classes, class_counts, keep_absent_classes
from napari_tumorseg.adapt.run import run_adaptation
from napari_tumorseg.io.labels import ED, ET, NCR

torch.set_num_threads(1)


def without_et(corrections: Corrections) -> Corrections:
    """The toy corrections with their enhancing core relabelled necrosis: no corrected slice holds ET."""
    case = corrections.cases[0]
    labels = np.where(case.labels == ET, NCR, case.labels).astype(np.uint8)
    return Corrections.of(dataclasses.replace(case, labels=labels))


def spread_model() -> torch.nn.Module:
    """A tiny network whose head marks every class somewhere on the toy anchor (random weights, small bias)."""
    model = tiny_model(seed=3)
    with torch.no_grad():
        model.head.bias.zero_()
    return model


def test_the_absent_classes_are_those_no_corrected_slice_holds():
    assert absent_classes(toy_corrections()) == (NCR,)  # the toy slices hold oedema around an enhancing core
    assert absent_classes(without_et(toy_corrections())) == (ET,)


def test_class_counts_come_from_the_region_counts():
    assert class_counts({"WT_marked": 10.0, "TC_marked": 6.0, "ET_marked": 4.0}) == {ET: 4.0, NCR: 2.0, ED: 4.0}


def test_a_lowered_class_is_brought_back_to_the_parents_anchor_count():
    parent, anchor = spread_model(), toy_anchor()
    parent_scores = score_set(parent, anchor, marked=True)
    assert parent_scores["ET_marked"] > 50
    adapted = copy.deepcopy(parent)
    with torch.no_grad():
        adapted.head.bias[ET] -= 2.0  # what learning from slices without enhancing tumour does, in caricature
    lowered = score_set(adapted, anchor, marked=True)["ET_marked"]
    assert lowered < 0.5 * parent_scores["ET_marked"]
    other_biases = adapted.head.bias.detach().clone()[[0, NCR, ED]]

    shifts = keep_absent_classes(adapted, without_et(toy_corrections()), anchor, parent_scores)

    assert set(shifts) == {"ET"} and shifts["ET"] == pytest.approx(2.0, abs=0.05)
    assert score_set(adapted, anchor, marked=True)["ET_marked"] == pytest.approx(parent_scores["ET_marked"], abs=1)
    assert torch.equal(adapted.head.bias.detach()[[0, NCR, ED]], other_biases)


def test_nothing_moves_when_every_class_is_corrected():
    parent, anchor = spread_model(), toy_anchor()
    full = toy_corrections()
    case = full.cases[0]
    labels = case.labels.copy()
    labels[:, 0, 0] = NCR  # one necrosis voxel: every tumour class is now corrected somewhere
    adapted = copy.deepcopy(parent)
    before = adapted.head.bias.detach().clone()
    shifts = keep_absent_classes(adapted, Corrections.of(dataclasses.replace(case, labels=labels)), anchor,
                                 score_set(parent, anchor, marked=True))
    assert shifts == {} and torch.equal(adapted.head.bias.detach(), before)


def test_an_adaptation_with_keep_absent_reports_the_shift_and_leaves_the_parent_alone():
    parent, anchor = spread_model(), toy_anchor()
    start = copy.deepcopy(parent.state_dict())
    config = default_config("naive", steps=3, lr=1e-2, crop=16, replay=0, tolerance=1.0, budget=1.0,
                            keep_absent=True)
    _, outcome = drive(run_adaptation(parent, without_et(toy_corrections()), config, anchor=anchor))
    shift = outcome.report.details["absent_bias_shift"]
    assert set(shift) == {"ET"}
    adapted_et = score_set(outcome.model, anchor, marked=True)["ET_marked"]
    assert adapted_et == pytest.approx(score_set(parent, anchor, marked=True)["ET_marked"], rel=0.05, abs=5)
    assert all(torch.equal(v, parent.state_dict()[k]) for k, v in start.items())
    line = next(text for text in outcome.report.summary_lines() if "kept ET" in text)
    assert f"ET {shift['ET']:+.2f} logits" in line
    from napari_tumorseg._qt.adapt_panel import report_card_html

    assert "Kept ET as the previous version marks it" in report_card_html(outcome.report)


def test_the_plugin_keeps_absent_classes_by_default():
    # Decided by the rule in scripts/keep_absent_sweep.py (docs/results/keep-absent).
    assert all(default_config(method).keep_absent for method in ("naive", "passive", "active", "dycnn"))
