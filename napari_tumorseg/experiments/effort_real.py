"""The effort experiment on the real cases: the same protocol on the labelled case, and the issue's targets.

The development set has one real case with a reference (``TCGA-DU-7294``,
a lower-grade glioma) and two without (a BraTS 2023 glioma and a
metastasis). On the labelled case:

- the protocol of ``effort`` (rounds of 2 slices, the rest of the volume
  scored), with the runs asked for;
- the target: ``target_slices`` (5) slices corrected at once with the
  defaults (active meta-tune), picked either by the plugin's suggestions
  on the first prediction or, as the issue's own measurement did, spread
  over the tumour (largest slice first, then each farthest from those
  picked); the rest of the case scored, whether the guard accepted the
  version or not (both are reported).

"The next real case no worse than before adapting" has no reference to
score against: each target-adapted version segments the unlabelled cases,
and what changed is measured without labels — the predicted tumour volume
(WT, TC, ET in ml) and its connected components before and after, and the
agreement of the two predictions (mean region Dice). A version that
erases or doubles the tumour of an unseen case shows there.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from ..jobs import Clock, Progress, drive
from .effort import BaseModel, EffortConfig, Segmented, _forward, _rng, brain_slices, parse_run, run_protocol, segment
from .effort_scoring import pick_suggested, rest_scores

LABELLED = "TCGA-DU-7294"
UNLABELLED = ("BraTS-GLI-00001-000", "BraTS-MET-00110-000")
TARGET_RULES = ("suggested", "spread")


def _volumes(labels: np.ndarray, spacing: Any) -> dict[str, Any]:
    from scipy import ndimage

    from ..io.labels import REGIONS

    voxel_ml = float(np.prod(spacing)) / 1000.0
    out: dict[str, Any] = {f"{name}_ml": round(float(np.isin(labels, classes).sum()) * voxel_ml, 3)
                           for name, classes in REGIONS.items()}
    out["components"] = int(ndimage.label(labels > 0, structure=np.ones((3, 3, 3)))[1])
    return out


def _agreement(before: np.ndarray, after: np.ndarray) -> float:
    from ..models.losses import mean_region_dice

    return round(mean_region_dice(after, before), 5)


def target_picks(rule: str, case: Any, initial: Segmented, brain: list[int], count: int, seed: int) -> list[int]:
    """The slices corrected at once for the target: the plugin's suggestions, or spread over the tumour."""
    from ..adapt.corrections import slices_with_tumour
    from ..workflow.suggest import slice_scores
    from .patients import spread_order

    if rule == "suggested":
        scores = slice_scores(initial.probabilities, initial.labels, flipped_labels=initial.flipped).total
        return pick_suggested(scores, brain, [], count, _rng(case.name, seed, rule))
    tumour = slices_with_tumour(case.label)
    areas = [float(np.count_nonzero(case.label[z])) for z in tumour]
    return sorted(spread_order(tumour, areas, count))


def run_real(
    bases: dict[str, BaseModel],
    config: EffortConfig,
    *,
    device: Any = "cpu",
    cancel: Any = None,
    journal: Any = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """The real-case part; returns {"available": False} where the real cases are absent."""
    from ..adapt.guard import Lineage
    from ..evaluation.realdata import real_case_dir
    from ..io import read_case
    from .journal import Journal

    folder = real_case_dir(LABELLED)
    if folder is None:
        return {"available": False}
    journal = journal or Journal(None, {})
    runs = config.real_runs or config.runs
    seeds = config.repeat_seeds(config.real_seeds)
    others = [(name, real_case_dir(name)) for name in UNLABELLED]
    others = [(name, path) for name, path in others if path is not None]
    clock = Clock(len(seeds) * (len(runs) + len(TARGET_RULES)), "real cases", cancel)
    case = read_case(folder)
    unet = bases["unet"]
    brain = brain_slices(unet.model, unet.preprocessing, case)
    initial: dict[str, Segmented] = {}

    def first(arch: str) -> Segmented:
        if arch not in initial:
            initial[arch] = segment(bases[arch].model, bases[arch].preprocessing, case, device, flip=config.flip)
        return initial[arch]

    protocol = []
    for seed in seeds:
        for run in runs:
            unit = ("real", case.name, seed, run)
            record = journal.get(unit)
            if record is None:
                arch = "dycnn" if parse_run(run)[1] == "dycnn" else "unet"
                record = yield from _forward(run_protocol(case, bases[arch], first(arch), brain, run, seed, config,
                                                          device, cancel), clock)
                journal.add(unit, record)
            protocol.append(record)
            yield clock.tick(f"{case.name} seed {seed} {run}")

    unlabelled_before = {}
    for name, path in others:
        other = read_case(path)
        unlabelled_before[name] = (other, segment(unet.model, unet.preprocessing, other, device).labels)
    baseline = {"rest": rest_scores(first("unet").labels, case.label, [], case.geometry.spacing),
                "unlabelled": {name: _volumes(labels, other.geometry.spacing)
                               for name, (other, labels) in unlabelled_before.items()}}
    targets = []
    lineage = Lineage.of_original("original", unet.anchor_scores, unet.anchor)
    for seed in seeds:
        for rule in TARGET_RULES:
            unit = ("target", case.name, seed, rule)
            record = journal.get(unit)
            if record is None:
                clock.check()
                record = _target_run(case, unet, first("unet"), brain, rule, seed, config, lineage,
                                     unlabelled_before, device, cancel)
                journal.add(unit, record)
            targets.append(record)
            yield clock.tick(f"{case.name} target {rule} seed {seed}")
    return {"available": True, "case": case.name, "brain_slices": len(brain), "protocol": protocol,
            "baseline": baseline, "targets": targets, "unlabelled_cases": [name for name, _ in others]}


def _target_run(case: Any, unet: BaseModel, initial: Segmented, brain: list[int], rule: str, seed: int,
                config: EffortConfig, lineage: Any, unlabelled_before: dict, device: Any, cancel: Any) -> dict:
    """5 slices picked by ``rule`` corrected at once and adapted with the defaults: the rest of the case and the
    unlabelled cases after (the issue's targets)."""
    from ..adapt.corrections import Corrections, case_corrections
    from ..adapt.run import run_adaptation

    picks = target_picks(rule, case, initial, brain, config.target_slices, seed)
    corrections = Corrections.of(case_corrections(case, case.label, picks, model_config=unet.model.config,
                                                  preprocessing=unet.preprocessing, reference_slices=0))
    outcome = drive(run_adaptation(unet.model, corrections, config.adapt_config("active", seed), anchor=unet.anchor,
                                   replay_pools=unet.replay, lineage=lineage, cancel=cancel,
                                   calibration=unet.calibration))
    after = segment(outcome.model, unet.preprocessing, case, device)
    record = {"rule": rule, "seed": seed, "slices": picks, "status": outcome.report.status,
              "reason": outcome.report.reason,
              "rest": rest_scores(after.labels, case.label, picks, case.geometry.spacing),
              "baseline_rest": rest_scores(initial.labels, case.label, picks, case.geometry.spacing),
              "unlabelled": {}}
    for name, (other, labels) in unlabelled_before.items():
        adapted = segment(outcome.model, unet.preprocessing, other, device).labels
        record["unlabelled"][name] = {**_volumes(adapted, other.geometry.spacing),
                                      "agreement_with_before": _agreement(labels, adapted)}
    return record
