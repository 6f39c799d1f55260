"""Paper 000's experiment on synthetic domains: a glioma-pretrained network adapted to metastasis patients.

For each metastasis patient, k of its tumour slices are "corrected" (their
reference labels are the corrections) and a copy of the pretrained model is
adapted to them by each method; the adapted copy is scored on

- ``own``: the patient's other tumour slices (the paper's training-set figure),
- ``held_out``: tumour slices of metastasis patients never adapted on (its
  validation figure),
- ``anchor``: the adaptation guard's fixed glioma anchor set (forgetting),

as Dice of WT, TC and ET over each set's pooled voxels. Every method starts
from the same pretrained weights and sees the same corrections; the repeat
seeds change only the methods' random draws (crops, flips, task order).
The baseline (no adaptation) does not depend on k or the seed and is scored
once. Methods are ``adapt``'s own generators, called directly: this measures
what the plugin's "Adapt model" does, without the registry, with the plugin's
defaults except where ``adapt_overrides`` says otherwise (by default the 96-px
crops of the published run; ``--crop 0`` for the plugin's whole slices).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from ..adapt.anchors import ANCHOR_SLICES_PER_CASE
from ..jobs import Clock, Progress, drive
from .common import (
    META_TUNE_HELD_OUT_SEEDS,
    META_TUNE_PATIENT_SEEDS,
    check_seeds,
    seed_list,
)
from .journal import Journal
from .patients import PreparedPatient, held_out_set, prepare_patient

# Method name in the experiment -> (adapt method, AdaptConfig overrides).
METHOD_SPECS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "baseline": None,
    "naive": ("naive", {}),
    "passive": ("passive", {"first_order": False}),
    "passive-fo": ("passive", {"first_order": True}),
    "active": ("active", {"first_order": False}),
    "active-fo": ("active", {"first_order": True}),
}
METHOD_LABELS: dict[str, str] = {
    "baseline": "baseline (no adaptation)",
    "naive": "naive fine-tune",
    "passive": "passive meta-tune (2nd order)",
    "passive-fo": "passive meta-tune (1st order)",
    "active": "active meta-tune (2nd order)",
    "active-fo": "active meta-tune (1st order)",
}
SETS: tuple[str, ...] = ("own", "held_out", "anchor")
# The experiment adapts on 96-px random crops, as the plugin did when the published run was made
# (docs/results/meta-tune); the plugin now adapts on whole slices, which ``--crop 0`` runs.
EXPERIMENT_CROP = 96


@dataclass
class MetaTuneConfig:
    """Everything that defines a meta-tune experiment (recorded in results.json).

    Args:
        patients: metastasis patients adapted on (first qualifying seeds from 30000).
        held_out: metastasis patients only scored (first qualifying seeds from 31000).
        eval_slices: evaluation ("other") slices per adapted patient.
        held_out_slices: evaluation slices per held-out patient.
        ks: numbers of corrected slices swept.
        main_k: the k of the main table (in ``ks``).
        sweep_patients: patients used for the other ks (the first ones; None: all). The sweep is
            smaller than the main table so the default run fits in an hour on two CPU cores.
        seeds: repeat seeds (``seed``, ``seed + 1``, ...) of every adaptation.
        sweep_seeds: repeat seeds for the other ks (None: all).
        seed: the first repeat seed.
        methods: from METHOD_SPECS; "baseline" is always scored.
        shape: synthetic grid (None: the BraTS 1 mm grid the shipped models were trained on).
        adapt_overrides: per adapt method ("naive", "passive", "active"), AdaptConfig fields
            to change from ``adapt.config.default_config`` (default: 96-px crops, see EXPERIMENT_CROP;
            empty: the plugin's defaults).
        anchor_per_case: anchor slices per anchor case (the guard's: ``adapt.anchors.ANCHOR_SLICES_PER_CASE``).
        replay: mix source (glioma) slices into every step, as the plugin does by default
            (``AdaptConfig.replay``); False runs the methods as the paper states them, on the
            corrections alone.
    """

    patients: int = 20
    held_out: int = 4
    eval_slices: int = 8
    held_out_slices: int = 4
    ks: tuple[int, ...] = (1, 3, 5, 10)
    main_k: int = 5
    sweep_patients: int | None = 8
    seeds: int = 3
    sweep_seeds: int | None = 1
    seed: int = 0
    methods: tuple[str, ...] = ("baseline", "naive", "passive", "active", "active-fo")
    shape: tuple[int, int, int] | None = None
    adapt_overrides: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        method: {"crop": EXPERIMENT_CROP} for method in ("naive", "passive", "active")})
    anchor_per_case: int = ANCHOR_SLICES_PER_CASE
    replay: bool = True

    def __post_init__(self) -> None:
        self.ks = tuple(sorted({int(k) for k in self.ks}))
        unknown = [m for m in self.methods if m not in METHOD_SPECS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; expected some of {list(METHOD_SPECS)}")
        self.methods = ("baseline", *[m for m in dict.fromkeys(self.methods) if m != "baseline"])
        if self.main_k not in self.ks:
            raise ValueError(f"main_k {self.main_k} is not among ks {self.ks}")
        if min(self.ks) < 1 or self.patients < 1 or self.seeds < 1 or self.eval_slices < 1:
            raise ValueError("ks, patients, seeds and eval_slices must be >= 1")
        if self.shape is not None:
            self.shape = tuple(int(n) for n in self.shape)

    @classmethod
    def quick(cls, **changes: Any) -> MetaTuneConfig:
        """The smoke-test setting: a tiny grid, 3 patients, 2 seeds, a few steps per method."""
        steps = {"naive": {"steps": 4, "crop": 32}, "passive": {"steps": 3, "crop": 32},
                 "active": {"steps": 3, "crop": 32}}
        base = cls(patients=3, held_out=2, eval_slices=3, held_out_slices=2, ks=(1, 3), main_k=3,
                   sweep_patients=None, sweep_seeds=None, seeds=2, shape=(40, 64, 64), adapt_overrides=steps,
                   anchor_per_case=1)
        return replace(base, **changes)

    def patients_for(self, k: int) -> int:
        return self.patients if k == self.main_k or self.sweep_patients is None else min(self.sweep_patients,
                                                                                        self.patients)

    def seeds_for(self, k: int) -> list[int]:
        count = self.seeds if k == self.main_k or self.sweep_seeds is None else min(self.sweep_seeds, self.seeds)
        return seed_list(self.seed, count)

    def adapt_config(self, method: str, seed: int) -> Any:
        """The AdaptConfig of an experiment method (not "baseline") for a repeat seed."""
        from ..adapt.config import default_config

        adapt_method, fixed = METHOD_SPECS[method]  # type: ignore[misc]
        changes = {**self.adapt_overrides.get(adapt_method, {}), **fixed, "seed": seed}
        if not self.replay:
            changes["replay"] = 0
        return default_config(adapt_method, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def units(self) -> int:
        """Progress units: one per prepared case, per baseline score, per adaptation."""
        adapting = len(self.methods) - 1
        runs = sum(self.patients_for(k) * len(self.seeds_for(k)) * adapting for k in self.ks)
        return self.patients + self.held_out + self.patients + runs


def _prepare_group(
    start: int, count: int, model: nn.Module, config: MetaTuneConfig, eval_slices: int, max_k: int,
    cache_dir: Path | None, clock: Clock, what: str, limit: int = 200,
) -> Generator[Progress, None, tuple[list[PreparedPatient], list[int]]]:
    """The first ``count`` qualifying patients from seed ``start``, and the seeds skipped."""
    patients: list[PreparedPatient] = []
    skipped: list[int] = []
    for seed in range(start, start + limit):
        if len(patients) == count:
            break
        clock.check()
        patient = prepare_patient("metastasis", seed, model.config, shape=config.shape, eval_slices=eval_slices,
                                  max_k=max_k, cache_dir=cache_dir)
        if patient is None:
            skipped.append(seed)
            continue
        patients.append(patient)
        yield clock.tick(f"{what} {patient.name}", phase="preparing")
    if len(patients) < count:
        raise ValueError(f"only {len(patients)} of {count} {what} cases from seed {start} have enough tumour slices")
    return patients, skipped


def run_meta_tune(
    model: nn.Module,
    config: MetaTuneConfig,
    *,
    cache_dir: Path | None = None,
    anchor_cache: Path | None | bool = True,
    cancel: Any = None,
    journal: Journal | None = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """Run the experiment; yields progress, returns the raw records (see ``meta_tune_analysis.analyse``).

    Args:
        model: the pretrained glioma network (moved by the caller to the device it should run on).
        config: the experiment's settings.
        cache_dir: folder of cached prepared patients (None: no cache).
        anchor_cache: the anchor set's cache (as ``adapt.anchors.anchor_set``'s ``cache_dir``).
        cancel: a threading.Event or a callable returning True to stop (jobs.Cancelled).
        journal: finished adaptations to reuse and to record (see ``journal``); None keeps none.
    """
    clock = Clock(config.units(), cancel=cancel)
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    patients, skipped, held, held_skipped = yield from _prepare_patients(model, config, cache_dir, clock)
    sets_shared, replay = _shared_sets(model, config, held, anchor_cache)
    timings["preparing_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    records = yield from _baseline_records(model, patients, sets_shared, clock)
    timings["baseline_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    journal = journal or Journal(None, {})
    adapted, reused = yield from _adapted_records(model, config, patients, sets_shared, replay, journal, clock, cancel)
    records += adapted
    records.sort(key=lambda r: (r["k"] is not None, r["k"] or 0, r["patient"], r["seed"] or 0,
                                list(METHOD_SPECS).index(r["method"])))
    timings["adapting_s"] = time.perf_counter() - tick
    return {
        "records": records,
        "patients": [{"name": p.name, "seed": p.seed, "eval_slices": list(p.indices[: p.eval_count]),
                      "correction_order": list(p.indices[p.eval_count:])} for p in patients],
        "patients_skipped": skipped,
        "held_out": [{"name": p.name, "seed": p.seed, "eval_slices": list(p.indices[: p.eval_count])} for p in held],
        "held_out_skipped": held_skipped,
        "anchor": {"slices": sets_shared["anchor"].num_slices, **sets_shared["anchor"].description},
        "adapt_configs": {m: config.adapt_config(m, config.seed).to_dict() for m in config.methods[1:]},
        # Adaptations taken from the journal of an earlier (interrupted or parallel) run of the same settings.
        "adaptations_from_journal": reused,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }


def _prepare_patients(
    model: nn.Module, config: MetaTuneConfig, cache_dir: Path | None, clock: Clock,
) -> Generator[Progress, None, tuple[list[PreparedPatient], list[int], list[PreparedPatient], list[int]]]:
    """The adapted patients and the held-out ones, each with the seeds skipped for too few tumour slices."""
    patients, skipped = yield from _prepare_group(
        META_TUNE_PATIENT_SEEDS, config.patients, model, config, config.eval_slices, max(config.ks), cache_dir,
        clock, "patient")
    held, held_skipped = yield from _prepare_group(
        META_TUNE_HELD_OUT_SEEDS, config.held_out, model, config, config.held_out_slices, 0, cache_dir, clock,
        "held-out")
    check_seeds({"patients": ("metastasis", [p.seed for p in patients] + skipped),
                 "held_out": ("metastasis", [p.seed for p in held] + held_skipped)})
    return patients, skipped, held, held_skipped


def _shared_sets(
    model: nn.Module, config: MetaTuneConfig, held: list[PreparedPatient], anchor_cache: Path | None | bool,
) -> tuple[dict[str, Any], Any]:
    """The sets every adaptation is scored on besides the patient's own (held-out, anchor), and the replay pools."""
    from ..adapt.anchors import anchor_set, replay_pools

    sets_shared = {
        "held_out": held_out_set(held),
        "anchor": anchor_set(model.config, shape=config.shape, per_case=config.anchor_per_case,
                             cache_dir=anchor_cache),
    }
    # The same source slices the plugin replays (built once; each run's config says whether to use them).
    adapt_configs = [config.adapt_config(m, config.seed) for m in config.methods[1:]]
    replay_count = max((c.replay for c in adapt_configs), default=0)
    faint = any(c.replay_faint for c in adapt_configs)
    return sets_shared, replay_pools(replay_count, model.config, shape=config.shape, cache_dir=anchor_cache,
                                     faint=faint)


def _baseline_records(
    model: nn.Module, patients: list[PreparedPatient], sets_shared: dict[str, Any], clock: Clock,
) -> Generator[Progress, None, list[dict[str, Any]]]:
    """The pretrained model's scores: one record per patient, method "baseline"."""
    from ..adapt.eval_sets import score_set

    baseline_shared = {name: score_set(model, s) for name, s in sets_shared.items()}
    records: list[dict[str, Any]] = []
    for patient in patients:
        clock.check()
        own = score_set(model, patient.eval_set())
        records.append({"k": None, "patient": patient.seed, "seed": None, "method": "baseline", "own": own,
                        **baseline_shared, "seconds": 0.0, "losses": []})
        yield clock.tick(patient.name, phase="baseline")
    return records


def _adapted_records(
    model: nn.Module, config: MetaTuneConfig, patients: list[PreparedPatient], sets_shared: dict[str, Any],
    replay: Any, journal: Journal, clock: Clock, cancel: Any,
) -> Generator[Progress, None, tuple[list[dict[str, Any]], int]]:
    """One record per (k, patient, seed, method), from the journal where it has one; and how many came from it."""
    records: list[dict[str, Any]] = []
    reused = 0
    # The main table's k first: an interrupted run has the most important figures already journaled.
    for k in sorted(config.ks, key=lambda value: (value != config.main_k, value)):
        for patient in patients[: config.patients_for(k)]:
            corrections = _corrections(patient, k)
            own_set = patient.eval_set()
            for seed in config.seeds_for(k):
                for method in config.methods[1:]:
                    clock.check()
                    unit = (k, patient.seed, seed, method)
                    record = journal.get(unit)
                    reused += record is not None
                    if record is None:
                        record = _adapt_and_score(model, corrections, config.adapt_config(method, seed),
                                                  {"own": own_set, **sets_shared}, replay, cancel)
                        record = {"k": k, "patient": patient.seed, "seed": seed, "method": method, **record}
                        journal.add(unit, record)
                    records.append(record)
                    yield clock.tick(f"k={k} {patient.name} seed {seed} {method}", phase="adapting")
    return records, reused


def _adapt_and_score(
    model: nn.Module, corrections: Any, adapt_config: Any, sets: dict[str, Any], replay_pools: Any, cancel: Any
) -> dict[str, Any]:
    """Adapt a copy of ``model`` with one method and score it on every set (one step of the experiment)."""
    from ..adapt.eval_sets import score_set
    from ..adapt.run import METHOD_RUNNERS, make_replay

    started = time.perf_counter()
    replay = make_replay(adapt_config, replay_pools, model)
    runner = METHOD_RUNNERS[adapt_config.method](model, corrections, adapt_config, cancel=cancel, replay=replay)
    result = drive(runner)
    seconds = time.perf_counter() - started
    return {**{name: score_set(result.model, s) for name, s in sets.items()}, "seconds": round(seconds, 3),
            "losses": [round(v, 5) for v in result.losses], "details": _details(result.details)}


def _corrections(patient: PreparedPatient, k: int) -> Any:
    from ..adapt.corrections import Corrections

    return Corrections.of(patient.corrections(k))


def _details(details: dict[str, Any]) -> dict[str, Any]:
    """The method facts worth keeping per run (order, passes), not the bulky per-task dicts."""
    keep = ("order", "first_order", "passes")
    return {k: details[k] for k in keep if k in details}
