"""One adaptation run, end to end: score before, adapt, score after, guard, save the version.

``run_adaptation`` is a long job like the methods (see ``napari_tumorseg.jobs``):
it yields a Progress for every step of every phase and checks the cancel flag
before each. Until the run is complete nothing is written: a cancel
(``jobs.Cancelled``) or an error leaves the caller's model and the registry exactly as they were. Then
the new version is stored in one atomic rename and, if the guard accepts it
(or the user forces it), activated by an atomic pointer replace.

What lives around one run (the source sets, the device, the lineage, the
memory of past corrections) is ``loaded.adapt_loaded_model``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from torch import nn

from ..jobs import CancelFlag, Clock, Progress
from ..models.losses import adaptation_loss
from ..models.registry import CANDIDATE, REJECTED, ModelRegistry
from .config import PHASE_SAVING, PHASE_SCORING_AFTER, PHASE_SCORING_BEFORE, AdaptConfig
from .continual import dycnn_continual, require_dycnn
from .corrections import Corrections
from .eval_sets import (
    ANCHOR_SET,
    HELD_OUT_SET,
    MEMORY_SET,
    EvalSet,
    anchor_key,
    correction_sets,
    memory_set,
    region_scores,
    score_predictions,
    score_set,
)
from .guard import GuardDecision, Lineage, SetScores, decide
from .labelfree import label_free_check, labels_before
from .maml import meta_tune
from .naive import naive_finetune
from .prior import keep_absent_classes
from .report import AdaptationReport
from .sampling import Replay, SlicePool, teacher_probabilities
from .stepback import step_back
from .training import MethodResult, model_device

METHOD_RUNNERS: dict[str, Callable[..., Generator[Progress, None, MethodResult]]] = {
    "naive": naive_finetune,
    "passive": meta_tune,
    "active": meta_tune,
    "dycnn": dycnn_continual,
}

# The sets the guard decides on, in the order a version is scored on them: the anchor refuses most often.
GUARD_ORDER = (ANCHOR_SET, HELD_OUT_SET, MEMORY_SET)


@dataclass
class AdaptationOutcome:
    """What a finished run gives back: the report and the adapted network."""

    report: AdaptationReport
    model: nn.Module


def _score_phase(
    model: nn.Module, sets: list[EvalSet], phase: str, cancel: CancelFlag, extra: Callable[[], Any] | None = None
) -> Generator[Progress, None, tuple[dict[str, dict[str, float]], Any]]:
    """Score every set (and run ``extra``, the label-free part, as one more step)."""
    clock = Clock(len(sets) + (extra is not None), phase, cancel)
    scores: dict[str, dict[str, float]] = {}
    for evaluation in sets:
        clock.check()
        scores[evaluation.name] = score_set(model, evaluation, marked=evaluation.name == ANCHOR_SET)
        yield clock.tick(detail=evaluation.name)
    result = None
    if extra is not None:
        clock.check()
        result = extra()
        yield clock.tick(detail="label-free check")
    return scores, result


def make_replay(
    config: AdaptConfig, replay_pools: Sequence[SlicePool], model: nn.Module, memory_pools: Sequence[SlicePool] = ()
) -> Replay | None:
    """The replay the config asks for, on the model's device; None when it has nothing to replay.

    Args:
        config: ``replay`` (0: no source slices), ``replay_per_step``, ``replay_weight``,
            ``replay_distill`` (> 0: the model's own softmax on the source slices, taken now, is
            replayed too), ``memory_per_step`` (0: no memory), ``crop``.
        replay_pools: the source slices.
        model: the network (its device).
        memory_pools: the user's earlier cases' corrections (see ``adapt.memory``).
    """
    source = [p for p in replay_pools if len(p)] if config.replay > 0 else []
    memory = [p for p in memory_pools if len(p)] if config.memory_per_step > 0 else []
    if not source and not memory:
        return None
    device = model_device(model)
    source = [pool.to(device) for pool in source]
    teachers = teacher_probabilities(model, source) if config.replay_distill > 0 and source else []
    replay = Replay(source, config.replay_per_step, config.replay_weight, config.crop,
                    memory=memory, memory_per_step=config.memory_per_step, by_case=config.replay_by_case,
                    teachers=teachers, distill_weight=config.replay_distill)
    return replay.to(device)


def _guard_scores(
    version: nn.Module, sets: Sequence[EvalSet], judge: Callable[[dict], GuardDecision], cancel: CancelFlag,
    *, stop_at_refusal: bool, known: Mapping[str, dict[str, float]] | None = None,
) -> Generator[Progress, None, dict[str, dict[str, float]]]:
    """A version's scores on the sets the guard decides on (anchor, held-out, memory), the anchor first.

    Each set can only add a reason to refuse, so with ``stop_at_refusal`` the sets
    after the first that makes ``judge`` refuse are not scored: a version
    the guard refuses on the anchor costs the anchor's scoring alone. ``known``: scores of this version
    already computed (the absent-class correction reads the anchor's off the logits it needed).
    """
    known = known or {}
    ordered = [s for name in GUARD_ORDER for s in sets if s.name == name]
    clock = Clock(len(ordered), PHASE_SCORING_AFTER, cancel)
    after: dict[str, dict[str, float]] = {}
    for evaluation in ordered:
        clock.check()
        after[evaluation.name] = known.get(evaluation.name) or score_set(version, evaluation,
                                                                          marked=evaluation.name == ANCHOR_SET)
        yield clock.tick(detail=evaluation.name)
        if stop_at_refusal and not judge(after).accepted:
            break
    return after


def _choose_version(
    parent: nn.Module, adapted: nn.Module, sets: Sequence[EvalSet], judge: Callable[[dict], GuardDecision],
    config: AdaptConfig, force: bool, cancel: CancelFlag, known: Mapping[str, dict[str, float]] | None = None,
) -> Generator[Progress, None, tuple[nn.Module, dict[str, dict[str, float]], GuardDecision, float]]:
    """The version to keep: the full step, or the first step back the guard accepts (see ``stepback``).

    Returns the version, its guard-set scores, the guard's decision and the step (1.0: the full step).
    The full step is scored on every guard set (its sentence names them all, accepted or not; ``known``:
    those of its scores already computed); the steps back stop at their first refusing set.
    """
    after = yield from _guard_scores(adapted, sets, judge, cancel, stop_at_refusal=False, known=known)
    decision = judge(after)
    if decision.accepted or force or not config.step_back:
        return adapted, after, decision, 1.0

    def score(version: nn.Module) -> Generator[Progress, None, dict[str, dict[str, float]]]:
        return _guard_scores(version, sets, judge, cancel, stop_at_refusal=True)

    kept = yield from step_back(parent, adapted, score, judge, decision)
    if kept is None:
        return adapted, after, decision, 1.0
    return kept.model, kept.after, kept.decision, kept.fraction


def run_adaptation(
    model: nn.Module,
    corrections: Corrections,
    config: AdaptConfig,
    *,
    anchor: EvalSet,
    replay_pools: Sequence[SlicePool] = (),
    registry: ModelRegistry | None = None,
    parent_id: str | None = None,
    preprocessing: Any = None,
    force: bool = False,
    auto_activate: bool = True,
    cancel: CancelFlag = None,
    memory_pools: Sequence[SlicePool] = (),
    lineage: Lineage | None = None,
    calibration: Sequence[EvalSet] = (),
) -> Generator[Progress, None, AdaptationOutcome]:
    """Adapt ``model`` to ``corrections`` with ``config.method``, guard it, and store the version.

    Args:
        model: the current model (never modified).
        corrections: the corrected slices (and held-out reference slices, if any).
        config: the method and its hyper-parameters (see ``config.default_config``).
        anchor: the source-domain anchor set (see ``anchors.anchor_set``).
        replay_pools: source slices to replay (see ``anchors.replay_pools``); used when ``config.replay`` > 0.
        registry: where to store the new version; None stores nothing.
        parent_id: the version ``model`` was loaded from (provenance).
        preprocessing: the parent's PreprocessingConfig, saved with the new weights.
        force: activate the new version even if the guard rejects it.
        auto_activate: activate it when the guard accepts it (else keep it as a candidate).
        cancel: a threading.Event or a callable returning True to stop.
        memory_pools: the user's earlier cases' corrections, replayed when ``config.memory_per_step`` > 0
            and then also scored before and after as the guard's memory set.
        lineage: the original model and its anchor Dice (the cumulative budget); None: the
            parent is the original.
        calibration: sets besides the anchor whose class counts ``config.keep_absent`` keeps too
            (see ``anchors.calibration_sets``).

    Yields:
        Progress for scoring before, adapting, scoring after and saving.

    Returns:
        AdaptationOutcome with the report and the adapted network.
    """
    if config.method == "dycnn":
        require_dycnn(model)  # fail before minutes of scoring, not after
    started = time.perf_counter()
    timings: dict[str, float] = {}
    earlier = memory_set(memory_pools) if config.memory_per_step > 0 else None
    sets = [*correction_sets(corrections), anchor, *([earlier] if earlier is not None else [])]
    unlabelled = [c.unlabelled for c in corrections.cases if c.unlabelled is not None]
    seen: list[np.ndarray] = []

    def before_unlabelled() -> None:
        seen.extend(labels_before(model, group) for group in unlabelled)

    before, _ = yield from _score_phase(model, sets, PHASE_SCORING_BEFORE, cancel,
                                        before_unlabelled if unlabelled else None)
    timings["scoring_before"] = round(time.perf_counter() - started, 3)

    replay = make_replay(config, replay_pools, model, memory_pools)
    tick = time.perf_counter()
    result = yield from METHOD_RUNNERS[config.method](model, corrections, config, cancel=cancel, replay=replay,
                                                      loss_fn=adaptation_loss(config.absent_class_weight))
    known: dict[str, dict[str, float]] = {}  # the full step's guard scores already in hand
    if config.keep_absent:
        correction = keep_absent_classes(result.model, corrections, anchor, before[ANCHOR_SET], parent=model,
                                         calibration=calibration)
        result.details["absent_bias_shift"] = correction.by_name() if correction else {}
        if correction is not None:
            known[ANCHOR_SET] = score_predictions(correction.anchor_labels(), anchor, marked=True)
    timings["adapting"] = round(time.perf_counter() - tick, 3)

    lineage = lineage or Lineage(parent_id, None, anchor_key(anchor))

    def judge(after: dict[str, dict[str, float]]) -> GuardDecision:
        dice = {s.name: SetScores(s.num_slices, before[s.name], after[s.name]) for s in sets if s.name in after}
        return decide(dice[ANCHOR_SET], config.tolerance, force, held_out=dice.get(HELD_OUT_SET),
                      original=lineage.root_anchor, budget=config.budget, original_regions=lineage.root_regions,
                      memory=dice.get(MEMORY_SET), max_shrink=config.max_shrink)

    def label_free(version: nn.Module) -> Callable[[], Any] | None:
        return (lambda: label_free_check(seen, version, unlabelled)) if unlabelled else None

    tick = time.perf_counter()
    adapted, after, decision, step = yield from _choose_version(model, result.model, sets, judge, config, force, cancel,
                                                                known)
    more, check = yield from _score_phase(adapted, [s for s in sets if s.name not in after], PHASE_SCORING_AFTER,
                                          cancel, label_free(adapted))
    after.update(more)
    result.details["step"] = step
    timings["scoring_after"] = round(time.perf_counter() - tick, 3)

    dice = {s.name: SetScores(s.num_slices, before[s.name], after[s.name]) for s in sets}
    activate = decision.activate and (auto_activate or decision.forced)
    report = _make_report(config, corrections, anchor, dice, decision, result, replay, lineage,
                          parent_id=parent_id, stored=activate and registry is not None, check=check,
                          device=str(model_device(model)))
    if registry is not None:
        yield from _store_version(registry, adapted, report, decision, activate, preprocessing, cancel,
                                  lambda: _finish_timings(report, timings, started))
    _finish_timings(report, timings, started)
    return AdaptationOutcome(report, adapted)


def _lineage_record(lineage: Lineage, decision: GuardDecision, anchor_scores: SetScores) -> dict[str, Any]:
    """What the report says of the original model and the budget spent since it."""
    if lineage.root_anchor is None:  # the parent is the original: its scores before are the lineage's
        root_anchor, root_regions = anchor_scores.before["mean"], region_scores(anchor_scores.before)
    else:
        root_anchor, root_regions = lineage.root_anchor, lineage.root_regions
    return {"root": lineage.root, "root_anchor": round(float(root_anchor), 6), "anchor_key": lineage.anchor_key,
            "cumulative_drop": decision.cumulative_drop, "budget": decision.budget,
            "root_anchor_regions": None if root_regions is None else
            {k: round(float(v), 6) for k, v in root_regions.items()},
            "failed_region": decision.failed_region}


def _make_report(config: AdaptConfig, corrections: Corrections, anchor: EvalSet, dice: dict[str, SetScores],
                 decision: GuardDecision, result: MethodResult, replay: Replay | None, lineage: Lineage, *,
                 parent_id: str | None, stored: bool, check: Any, device: str) -> AdaptationReport:
    replay_info: dict[str, Any] = {"used": replay is not None}
    if replay is not None:
        replay_info.update(replay.describe())
    return AdaptationReport(
        method=config.method,
        parent_id=parent_id,
        version_id=None,
        status="active" if stored else (CANDIDATE if decision.activate else REJECTED),
        activated=stored,
        forced=decision.forced,
        reason=decision.reason,
        anchor_drop=decision.anchor_drop,
        tolerance=decision.tolerance,
        hyperparameters=config.to_dict(),
        corrections_hash=corrections.digest(),
        corrections=corrections.summary(),
        replay=replay_info,
        anchor={"slices": anchor.num_slices, **anchor.description},
        dice=dice,
        losses=[round(v, 6) for v in result.losses],
        task_order=result.task_order,
        details=result.details,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        lineage=_lineage_record(lineage, decision, dice[ANCHOR_SET]),
        label_free=None if check is None else check.to_dict(),
        device=device,
    )


def _finish_timings(report: AdaptationReport, timings: dict[str, float], started: float) -> None:
    timings["total"] = round(time.perf_counter() - started, 3)
    report.timings = timings


def _store_version(registry: ModelRegistry, adapted: nn.Module, report: AdaptationReport, decision: GuardDecision,
                   activate: bool, preprocessing: Any, cancel: CancelFlag,
                   finish_timings: Callable[[], None]) -> Generator[Progress, None, None]:
    """Store the adapted network as a new version (activated if the guard and the caller allow)."""
    clock = Clock(1, PHASE_SAVING, cancel)
    clock.check()  # the last moment a cancel can still leave no trace
    report.version_id = registry.new_version_id()
    finish_timings()  # the stored report carries the time up to saving
    registry.add(
        adapted,
        parent=report.parent_id,
        method=report.method,
        hyperparameters=report.hyperparameters,
        corrections_hash=report.corrections_hash,
        metrics=report.metrics(),
        status=CANDIDATE if decision.activate else REJECTED,
        reason=decision.reason,
        report=report.to_dict(),
        preprocessing=preprocessing,
        version_id=report.version_id,
    )
    if activate:
        registry.activate(report.version_id, force=decision.forced)
    yield clock.tick(detail=report.version_id)
