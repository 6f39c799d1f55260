"""An adaptation run end to end: guard, report, registry writes, cancel leaves no trace."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from test_adapt_helpers import drive, same_state, state_copy, tiny_model, toy_anchor, toy_corrections

from napari_tumorseg.adapt.config import (
    PHASE_ADAPTING,
    PHASE_SAVING,
    PHASE_SCORING_AFTER,
    PHASE_SCORING_BEFORE,
    default_config,
)
from napari_tumorseg.adapt.eval_sets import EvalSet
from napari_tumorseg.adapt.guard import SetScores, decide
from napari_tumorseg.adapt.run import run_adaptation
from napari_tumorseg.adapt.stepback import STEP_BACK_FRACTIONS, interpolated
from napari_tumorseg.jobs import Cancelled
from napari_tumorseg.models.checkpoint import save_checkpoint
from napari_tumorseg.models.registry import CANDIDATE, REJECTED, ModelRegistry

torch.set_num_threads(1)
FAST = dict(steps=10, lr=3e-2, inner_lr=3e-2, crop=16, optimizer="adam", replay=0)


@pytest.fixture()
def registry(tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    save_checkpoint(shipped / "unet-synthetic.safetensors", tiny_model(background=True))
    return ModelRegistry(tmp_path / "registry", pretrained_dirs=[shipped])


def registry_files(root) -> dict[str, bytes]:
    return (
        {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        if root.exists()
        else {}
    )


def forgetting_anchor(corrections) -> EvalSet:
    """The corrections' own inputs labelled all background: learning the corrections must 'forget' it."""
    case = corrections.cases[0]
    return EvalSet("anchor", ((case.inputs, np.zeros_like(case.labels)),), {"seeds": []})


def test_decide_accepts_within_tolerance_and_force_overrides():
    small = SetScores(16, {"mean": 0.80}, {"mean": 0.79})
    large = SetScores(16, {"mean": 0.80}, {"mean": 0.70})
    assert decide(small).accepted and decide(small).activate
    assert not decide(large).accepted and not decide(large).activate
    assert "rejected" in decide(large).reason and "0.100" in decide(large).reason
    forced = decide(large, force=True)
    assert forced.forced and forced.activate and "forced" in forced.reason
    assert decide(large, tolerance=0.2).accepted


@pytest.mark.parametrize("method", ["naive", "active"])
def test_an_accepted_run_becomes_the_active_version_with_its_report(registry, method):
    loaded, parent = registry.load()
    corrections = toy_corrections(held_out=3)
    config = default_config(method, **FAST, tolerance=1.0)
    reports, outcome = drive(
        run_adaptation(loaded.model, corrections, config, anchor=toy_anchor(), registry=registry, parent_id=parent.id)
    )
    phases = [r.phase for r in reports]
    assert phases[0] == PHASE_SCORING_BEFORE and phases[-1] == PHASE_SAVING
    assert phases.index(PHASE_ADAPTING) < phases.index(PHASE_SCORING_AFTER)
    report = outcome.report
    assert report.status == "active" and report.activated and registry.active_id() == report.version_id
    version = registry.get(report.version_id)
    assert version.parent == "unet-synthetic" and version.method == method and version.status == CANDIDATE
    assert version.corrections_hash == corrections.digest()
    assert set(report.dice) == {"corrections", "held_out", "anchor"}
    assert report.dice["held_out"].slices == 3
    assert report.dice["corrections"].after["mean"] > report.dice["corrections"].before["mean"]
    assert report.replay == {"used": False}
    saved = json.loads((version.weights.parent / "report.json").read_text(encoding="utf-8"))
    assert saved["version_id"] == report.version_id and saved["dice"]["anchor"]["slices"] == 4
    json.loads(report.to_json())
    stored, _ = registry.load(report.version_id)
    assert same_state(state_copy(stored.model), state_copy(outcome.model))


def test_the_guard_rejects_forgetting_and_keeps_the_candidate(registry):
    loaded, parent = registry.load()
    corrections = toy_corrections()
    config = default_config("naive", **FAST, step_back=False)
    _, outcome = drive(
        run_adaptation(
            loaded.model,
            corrections,
            config,
            anchor=forgetting_anchor(corrections),
            registry=registry,
            parent_id=parent.id,
        )
    )
    report = outcome.report
    assert report.anchor_drop > 0.02
    assert report.status == REJECTED and not report.activated
    assert registry.active_id() == "unet-synthetic"
    assert registry.get(report.version_id).status == REJECTED
    assert "forgetting" in registry.get(report.version_id).reason


def test_a_refused_step_is_taken_back_toward_the_parent_until_the_guard_accepts(registry):
    loaded, parent = registry.load()
    original = state_copy(loaded.model)
    corrections = toy_corrections()
    reports, outcome = drive(run_adaptation(loaded.model, corrections, default_config("naive", **FAST),
                                            anchor=forgetting_anchor(corrections), registry=registry,
                                            parent_id=parent.id))
    report = outcome.report
    assert report.details["step"] in STEP_BACK_FRACTIONS
    assert report.status == "active" and registry.active_id() == report.version_id
    assert report.anchor_drop <= 0.02
    assert report.reason.startswith("stepped back to") and "The full step was refused: forgetting" in report.reason
    assert not same_state(state_copy(outcome.model), original)  # it kept part of the step, not nothing
    assert same_state(state_copy(loaded.model), original)  # and the parent is untouched
    stored, _ = registry.load(report.version_id)
    assert same_state(state_copy(stored.model), state_copy(outcome.model))
    assert [r.phase for r in reports].count(PHASE_SCORING_AFTER) > 2  # the full step, then each one back
    from napari_tumorseg._qt.adapt_panel import report_card_html

    assert "<b>stepped back</b>" in report_card_html(report)  # the card says plainly that part was kept


def test_a_step_back_the_anchor_refuses_is_not_scored_on_the_other_sets(registry):
    loaded, parent = registry.load()
    corrections = toy_corrections(held_out=3)
    strong = default_config("naive", **{**FAST, "lr": 0.1, "steps": 30})  # forgets enough to refuse 0.75 and 0.5
    reports, outcome = drive(run_adaptation(loaded.model, corrections, strong, anchor=forgetting_anchor(corrections),
                                            registry=registry, parent_id=parent.id))
    scored = [r.detail for r in reports if r.phase == PHASE_SCORING_AFTER and r.detail]
    step = outcome.report.details["step"]
    assert step in STEP_BACK_FRACTIONS[1:]  # at least one step back was refused first
    refused = STEP_BACK_FRACTIONS.index(step)
    # The full step on every guard set; each refused step back on the anchor alone; the kept one on every
    # guard set, then on the corrections (the report's figures), each set scored once per version.
    assert scored == ["anchor", "held_out", *["anchor"] * refused, "anchor", "held_out", "corrections"]
    assert set(outcome.report.dice) == {"corrections", "held_out", "anchor"}
    assert all(s.after for s in outcome.report.dice.values())


def test_interpolated_weights_lie_on_the_line_from_the_parent():
    parent, adapted = tiny_model(), tiny_model()
    with torch.no_grad():
        for p in adapted.parameters():
            p.add_(1.0)
    for fraction in (0.0, 0.5, 1.0):
        mixed = interpolated(parent, adapted, fraction)
        for (key, a), b in zip(parent.state_dict().items(), mixed.state_dict().values()):
            if a.is_floating_point() and key in dict(parent.named_parameters()):
                torch.testing.assert_close(b, a + fraction)


def test_force_activates_a_version_the_guard_would_reject(registry):
    loaded, parent = registry.load()
    corrections = toy_corrections()
    _, outcome = drive(
        run_adaptation(
            loaded.model,
            corrections,
            default_config("naive", **FAST),
            anchor=forgetting_anchor(corrections),
            registry=registry,
            parent_id=parent.id,
            force=True,
        )
    )
    assert outcome.report.forced and outcome.report.activated
    assert registry.active_id() == outcome.report.version_id
    assert registry.rollback().id == "unet-synthetic"


@pytest.mark.parametrize("phase", [PHASE_SCORING_BEFORE, PHASE_ADAPTING, PHASE_SCORING_AFTER, PHASE_SAVING])
def test_cancel_in_any_phase_writes_nothing_and_keeps_the_model(registry, phase):
    loaded, parent = registry.load()
    original = state_copy(loaded.model)
    before = registry_files(registry.root)
    cancel = threading.Event()
    generator = run_adaptation(
        loaded.model,
        toy_corrections(held_out=2),
        default_config("active", **FAST),
        anchor=toy_anchor(),
        registry=registry,
        parent_id=parent.id,
        cancel=cancel,
    )
    with pytest.raises(Cancelled):
        for progress in generator:
            # Saving has one step; cancel just before it by stopping at the end of scoring-after.
            last_scoring = progress.phase == PHASE_SCORING_AFTER and progress.done == progress.total
            if progress.phase == phase or (phase == PHASE_SAVING and last_scoring):
                cancel.set()
    assert registry_files(registry.root) == before
    assert registry.active_id() == "unet-synthetic"
    assert same_state(original, state_copy(loaded.model))


def test_replay_is_reported(registry):
    from test_adapt_helpers import toy_slices

    from napari_tumorseg.adapt.sampling import SlicePool

    loaded, _ = registry.load()
    inputs, labels = toy_slices(4, seed=8)
    pools = [SlicePool.from_arrays(inputs, labels, [f"r{i}" for i in range(4)])]
    config = default_config("naive", **{**FAST, "replay": 4}, tolerance=1.0)
    _, outcome = drive(run_adaptation(loaded.model, toy_corrections(), config, anchor=toy_anchor(), replay_pools=pools))
    assert outcome.report.replay == {"used": True, "slices": 4, "per_step": 4, "weight": 1.0}
    assert outcome.report.version_id is None and outcome.report.status == CANDIDATE


def test_decide_rejects_an_adaptation_that_makes_the_rest_of_the_case_worse():
    anchor_held = SetScores(16, {"mean": 0.90}, {"mean": 0.90})
    case_worse = SetScores(8, {"mean": 0.93}, {"mean": 0.68})
    case_noise = SetScores(8, {"mean": 0.93}, {"mean": 0.89})  # within the looser held-out bound (0.05)
    verdict = decide(anchor_held, held_out=case_worse)
    assert not verdict.accepted and "other slices" in verdict.reason and "0.250" in verdict.reason
    assert decide(anchor_held, held_out=case_noise).accepted
    assert decide(anchor_held, held_out=case_worse, force=True).activate
    assert decide(anchor_held, tolerance=0.3, held_out=case_worse).accepted  # a looser tolerance loosens both
