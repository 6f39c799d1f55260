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
from napari_tumorseg.adapt.eval_sets import EvalSet, score_set
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

    shifts = keep_absent_classes(adapted, without_et(toy_corrections()), anchor, parent_scores).by_name()

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
    correction = keep_absent_classes(adapted, Corrections.of(dataclasses.replace(case, labels=labels)), anchor,
                                     score_set(parent, anchor, marked=True))
    assert correction is None and torch.equal(adapted.head.bias.detach(), before)


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


def lowered_copy(parent: torch.nn.Module, by: float) -> torch.nn.Module:
    adapted = copy.deepcopy(parent)
    with torch.no_grad():
        adapted.head.bias[ET] -= by
    return adapted


class LogitsAreInputs(torch.nn.Module):
    """A network whose logits are its four input channels through a 1x1 ``head``: logits we can write down."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Conv2d(4, 4, 1)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def enhancing_set(name: str, et_logit: float) -> EvalSet:
    """8x8 slices whose every voxel the parent calls ET, by ``et_logit`` over background's 0."""
    inputs = np.zeros((2, 4, 8, 8), np.float32)
    inputs[:, ET] = et_logit
    return EvalSet(name, ((inputs, np.full((2, 8, 8), ET, np.uint8)),))


def test_with_a_calibration_set_the_larger_of_the_two_shifts_is_made():
    parent = LogitsAreInputs()
    bright, faint = enhancing_set("anchor", 10.0), enhancing_set("faint", 1.0)
    adapted = copy.deepcopy(parent)
    with torch.no_grad():  # the ET logit halved and lowered by 2: 10 -> 3 stays ET, 1 -> -1.5 does not
        adapted.head.weight[ET, ET] *= 0.5
        adapted.head.bias[ET] -= 2.0
    corrections = without_et(toy_corrections())
    anchor_only = keep_absent_classes(copy.deepcopy(adapted), corrections, bright,
                                      score_set(parent, bright, marked=True))
    assert float(anchor_only.shift[ET]) < 0  # the bright set alone would even lower the bias

    both = keep_absent_classes(adapted, corrections, bright, score_set(parent, bright, marked=True), parent=parent,
                               calibration=[faint])

    assert float(both.shift[ET]) == pytest.approx(1.5, abs=0.01)  # -1.5 + shift must pass background's 0
    for evaluation in (bright, faint):  # neither set marks less of the class than the parent
        assert score_set(adapted, evaluation, marked=True)["ET_marked"] == 128


def test_calibration_sets_need_the_parent():
    parent, anchor = spread_model(), toy_anchor()
    with pytest.raises(ValueError, match="parent"):
        keep_absent_classes(lowered_copy(parent, 2.0), without_et(toy_corrections()), anchor,
                            score_set(parent, anchor, marked=True), calibration=[anchor])


def test_the_anchor_labels_read_off_the_logits_are_the_corrected_networks():
    # The guard scores the corrected full step on the anchor from these labels, without a second pass.
    parent, anchor = spread_model(), toy_anchor()
    adapted = lowered_copy(parent, 2.0)
    correction = keep_absent_classes(adapted, without_et(toy_corrections()), anchor,
                                     score_set(parent, anchor, marked=True))
    from napari_tumorseg.adapt.eval_sets import score_predictions

    assert score_predictions(correction.anchor_labels(), anchor, marked=True) == score_set(adapted, anchor,
                                                                                           marked=True)


def test_an_adaptation_hands_its_calibration_sets_and_its_parent_to_the_correction(monkeypatch):
    from napari_tumorseg.adapt import run as run_module

    seen = {}

    def recording(*args, **kwargs):
        seen.update(kwargs)
        return keep_absent_classes(*args, **kwargs)

    monkeypatch.setattr(run_module, "keep_absent_classes", recording)
    parent, anchor = spread_model(), toy_anchor()
    other = dataclasses.replace(anchor, name="other")
    config = default_config("naive", steps=2, lr=1e-2, crop=16, replay=0, tolerance=1.0, budget=1.0)
    drive(run_adaptation(parent, without_et(toy_corrections()), config, anchor=anchor, calibration=(other,)))
    assert seen["calibration"] == (other,) and seen["parent"] is parent


def test_the_guard_reads_the_corrected_full_steps_anchor_scores_off_the_correction(monkeypatch):
    # One pass over the anchor for the full step, not two: the correction's logits give the guard its labels.
    from napari_tumorseg.adapt import run as run_module

    scored = []
    real_score_set = run_module.score_set

    def counting(model, evaluation, **kwargs):
        scored.append(evaluation.name)
        return real_score_set(model, evaluation, **kwargs)

    monkeypatch.setattr(run_module, "score_set", counting)
    parent, anchor = spread_model(), toy_anchor()
    config = default_config("naive", steps=2, lr=1e-2, crop=16, replay=0, tolerance=1.0, budget=1.0)
    _, outcome = drive(run_adaptation(parent, without_et(toy_corrections()), config, anchor=anchor))
    assert outcome.report.details["step"] == 1.0 and scored.count("anchor") == 1  # the scoring before only
    after = outcome.report.dice["anchor"].after
    assert after["ET_marked"] == score_set(outcome.model, anchor, marked=True)["ET_marked"]


def test_the_faint_calibration_is_off_by_default():
    # Until its rule (scripts/keep_absent_faint_sweep.py) decides.
    assert not any(default_config(method).keep_absent_faint for method in ("naive", "passive", "active", "dycnn"))
