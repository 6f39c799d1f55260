"""One adaptation run, end to end: score before, adapt, score after, guard, save the version.

``run_adaptation`` is a long job like the methods (see ``napari_tumorseg.jobs``):
it yields a Progress for every step of every phase and checks the cancel flag
before each. Until the run is complete nothing is written: a cancel
(``jobs.Cancelled``) or an error leaves the caller's model and the registry exactly as they were. Then
the new version is stored in one atomic rename and, if the guard accepts it
(or the user forces it), activated by an atomic pointer replace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from torch import nn

from ..jobs import CancelFlag, Clock, Progress
from .config import PHASE_SAVING, PHASE_SCORING_AFTER, PHASE_SCORING_BEFORE, AdaptConfig
from .continual import dycnn_continual, require_dycnn
from .corrections import Corrections
from .guard import ANCHOR_SET, HELD_OUT_SET, EvalSet, SetScores, correction_sets, decide, score_set
from .maml import meta_tune
from .naive import naive_finetune
from ..models.registry import CANDIDATE, REJECTED, ModelRegistry
from .report import AdaptationReport
from .sampling import Replay, SlicePool
from .training import MethodResult, model_device

METHOD_RUNNERS: dict[str, Callable[..., Generator[Progress, None, MethodResult]]] = {
    "naive": naive_finetune,
    "passive": meta_tune,
    "active": meta_tune,
    "dycnn": dycnn_continual,
}


@dataclass
class AdaptationOutcome:
    """What a finished run gives back: the report and the adapted network."""

    report: AdaptationReport
    model: nn.Module


def _score_phase(
    model: nn.Module, sets: list[EvalSet], phase: str, cancel: CancelFlag
) -> Generator[Progress, None, dict[str, dict[str, float]]]:
    clock = Clock(len(sets), phase, cancel)
    scores: dict[str, dict[str, float]] = {}
    for evaluation in sets:
        clock.check()
        scores[evaluation.name] = score_set(model, evaluation)
        yield clock.tick(detail=evaluation.name)
    return scores


def make_replay(config: AdaptConfig, replay_pools: Sequence[SlicePool], model: nn.Module) -> Replay | None:
    """The replay the config asks for, on the model's device; None when replay is off or there are no pools."""
    if config.replay <= 0 or not any(len(pool) for pool in replay_pools):
        return None
    return Replay(replay_pools, config.replay_per_step, config.replay_weight, config.crop).to(model_device(model))


def adapt_loaded_model(
    loaded: Any,
    corrections: Corrections,
    config: AdaptConfig,
    *,
    registry: ModelRegistry | None,
    parent_id: str | None,
    anchor_shape: tuple[int, int, int] | None = None,
    force: bool = False,
    auto_activate: bool = True,
    cancel: CancelFlag = None,
) -> Generator[Progress, None, AdaptationOutcome]:
    """Build (or reuse) the source anchor and replay sets, then :func:`run_adaptation`.

    What "Adapt model" and ``tumorseg adapt`` both do. The source sets are
    synthetic glioma slices, cached after the first build, which takes a while:
    it reports progress and can be cancelled like the rest.

    Args:
        loaded: a ``models.checkpoint`` loaded model (its ``model``, ``config`` and ``preprocessing``).
        anchor_shape: grid of the synthetic source cases (default: BraTS size; tests use a small one).
        corrections, config, registry, parent_id, force, auto_activate, cancel: as :func:`run_adaptation`.
    """
    from .anchors import anchor_set_steps, replay_pools_steps

    if config.method == "dycnn":
        require_dycnn(loaded.model)  # fail before the source sets are built
    anchor = yield from anchor_set_steps(loaded.config, loaded.preprocessing, shape=anchor_shape, cancel=cancel)
    replay = yield from replay_pools_steps(
        config.replay, loaded.config, loaded.preprocessing, shape=anchor_shape, cancel=cancel
    )
    return (
        yield from run_adaptation(
            loaded.model,
            corrections,
            config,
            anchor=anchor,
            replay_pools=replay,
            registry=registry,
            parent_id=parent_id,
            preprocessing=loaded.preprocessing,
            force=force,
            auto_activate=auto_activate,
            cancel=cancel,
        )
    )


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

    Yields:
        Progress for scoring before, adapting, scoring after and saving.

    Returns:
        AdaptationOutcome with the report and the adapted network.
    """
    if config.method == "dycnn":
        require_dycnn(model)  # fail before minutes of scoring, not after
    started = time.perf_counter()
    timings: dict[str, float] = {}
    sets = [*correction_sets(corrections), anchor]

    before = yield from _score_phase(model, sets, PHASE_SCORING_BEFORE, cancel)
    timings["scoring_before"] = round(time.perf_counter() - started, 3)

    replay = make_replay(config, replay_pools, model)
    tick = time.perf_counter()
    result = yield from METHOD_RUNNERS[config.method](model, corrections, config, cancel=cancel, replay=replay)
    timings["adapting"] = round(time.perf_counter() - tick, 3)

    tick = time.perf_counter()
    after = yield from _score_phase(result.model, sets, PHASE_SCORING_AFTER, cancel)
    timings["scoring_after"] = round(time.perf_counter() - tick, 3)

    dice = {s.name: SetScores(s.num_slices, before[s.name], after[s.name]) for s in sets}
    decision = decide(dice[ANCHOR_SET], config.tolerance, force, held_out=dice.get(HELD_OUT_SET))
    activate = decision.activate and (auto_activate or decision.forced)
    replay_info: dict[str, Any] = {"used": replay is not None}
    if replay is not None:
        replay_info.update(replay.describe())
    report = AdaptationReport(
        method=config.method,
        parent_id=parent_id,
        version_id=None,
        status="active" if activate and registry is not None else (CANDIDATE if decision.activate else REJECTED),
        activated=bool(activate and registry is not None),
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
    )

    if registry is not None:
        clock = Clock(1, PHASE_SAVING, cancel)
        clock.check()  # the last moment a cancel can still leave no trace
        report.version_id = registry.new_version_id()
        timings["total"] = round(time.perf_counter() - started, 3)
        report.timings = timings
        registry.add(
            result.model,
            parent=parent_id,
            method=config.method,
            hyperparameters=config.to_dict(),
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
    timings["total"] = round(time.perf_counter() - started, 3)
    report.timings = timings
    return AdaptationOutcome(report, result.model)
