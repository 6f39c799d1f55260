"""The radiologist's curve: Dice of the rest of the case against the number of slices corrected.

Protocol, per patient and repeat seed, for each run (a strategy and a method):

    segment -> pick 2 slices -> give their reference -> adapt -> re-segment,

five rounds, up to 10 corrected slices; after every round the prediction is
scored on the whole rest of the volume (``effort_scoring``). Each round
adapts the current version on *all* corrections so far (as "Adapt model"
does with the session's corrected slices), with the plugin's defaults, the
source replay and the guard (anchor tolerance and the cumulative budget
against the original model); a rejected version is not used, as in the
plugin (the rest of the case it would have given is recorded too, to show
what the guard cost). The held-out check is off: a radiologist's case has
no reference.

Strategies: ``suggest`` (the plugin's suggestions, ``workflow.suggest``),
``random`` (slices through the brain at random), ``dice`` (the worst
slices by the truth, which no user has: the ceiling of picking), ``paste``
(the suggested slices pasted in, no learning: what learning adds).
Methods: ``naive``, ``active`` (first-order active meta-tune),
``active-best`` (its control: best-learned first, same pairing), ``passive``,
``dycnn`` (continual updates of the shipped Dy-CNN). All at the same
number of forward/backward passes (see ``adapt.config``).

Patients: fresh synthetic metastases (``common.EFFORT_PATIENT_SEEDS``, a
range no default was tuned on; ``--tune`` runs the tuning range instead),
on the BraTS grid; and the real labelled case with the same protocol, plus
the targets (5 slices at once, then the unlabelled real cases before and
after) — see ``effort_real``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from torch import nn

from ..adapt.anchors import ANCHOR_SLICES_PER_CASE
from ..jobs import Clock, Progress, drive
from .common import EFFORT_PATIENT_SEEDS, EFFORT_TUNE_SEEDS, seed_list
from .effort_scoring import pick_by_dice, pick_random, pick_suggested, rest_scores

STRATEGIES: tuple[str, ...] = ("suggest", "random", "dice", "paste")
# Experiment method -> (adapt method, AdaptConfig overrides).
METHOD_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "naive": ("naive", {}),
    "active": ("active", {}),
    "active-best": ("active", {"order": "best-first"}),
    "passive": ("passive", {}),
    "dycnn": ("dycnn", {}),
}
# Strategies compared with the default method, methods compared with the plugin's suggestions.
DEFAULT_RUNS: tuple[str, ...] = (
    "paste", "suggest/active", "random/active", "dice/active", "suggest/naive", "suggest/active-best", "suggest/dycnn",
)
RUN_LABELS = {
    "paste": "suggestions pasted, no learning",
    "suggest/active": "suggestions + active meta-tune",
    "random/active": "random slices + active meta-tune",
    "dice/active": "Dice order (needs the truth) + active meta-tune",
    "suggest/naive": "suggestions + naive fine-tune",
    "suggest/active-best": "suggestions + best-first meta-tune (control)",
    "suggest/passive": "suggestions + passive meta-tune",
    "suggest/dycnn": "suggestions + Dy-CNN continual",
}


def parse_run(run: str) -> tuple[str, str | None]:
    """(strategy, method) of a run name ("paste" has no method)."""
    strategy, _, method = run.partition("/")
    if strategy not in STRATEGIES or (strategy == "paste") != (method == ""):
        raise ValueError(f"unknown run {run!r}: 'paste' or STRATEGY/METHOD with a strategy of {STRATEGIES[:3]}")
    if method and method not in METHOD_SPECS:
        raise ValueError(f"unknown method in run {run!r}; expected one of {list(METHOD_SPECS)}")
    return strategy, method or None


@dataclass
class EffortConfig:
    """Everything that defines the effort experiment (recorded in results.json).

    Args:
        patients: synthetic metastasis patients (the first seeds of the range).
        seeds: repeat seeds per patient (``seed``, ``seed + 1``, ...).
        seed: the first repeat seed.
        rounds: rounds of picking and adapting.
        per_round: slices corrected per round.
        runs: "paste" and "strategy/method" names (see DEFAULT_RUNS).
        tune: use the tuning seed range (EFFORT_TUNE_SEEDS) instead of the reported one.
        shape: synthetic grid (None: BraTS 1 mm, the shipped models' grid).
        anchor_per_case: anchor slices per anchor case (the guard's: ``adapt.anchors.ANCHOR_SLICES_PER_CASE``).
        flip: the suggestions also compare the prediction with the one on the mirrored volume.
        adapt_overrides: per adapt method, AdaptConfig fields changed from the defaults.
        real: run the protocol and the targets on the real cases too (when present).
        real_seeds: repeat seeds on the real labelled case.
        real_runs: the runs on the real labelled case (None: ``runs``).
        target_slices: slices corrected at once for the real-case target.
    """

    patients: int = 10
    seeds: int = 3
    seed: int = 0
    rounds: int = 5
    per_round: int = 2
    runs: tuple[str, ...] = DEFAULT_RUNS
    tune: bool = False
    shape: tuple[int, int, int] | None = None
    anchor_per_case: int = ANCHOR_SLICES_PER_CASE
    flip: bool = False
    adapt_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    real: bool = True
    real_seeds: int = 3
    real_runs: tuple[str, ...] | None = None
    target_slices: int = 5

    def __post_init__(self) -> None:
        self.runs = tuple(dict.fromkeys(self.runs))
        for run in (*self.runs, *(self.real_runs or ())):
            parse_run(run)
        if min(self.patients, self.seeds, self.rounds, self.per_round) < 1:
            raise ValueError("patients, seeds, rounds and per_round must be >= 1")
        if self.shape is not None:
            self.shape = tuple(int(n) for n in self.shape)

    @classmethod
    def quick(cls, **changes: Any) -> EffortConfig:
        """The smoke test: a tiny grid, 2 patients, 1 seed, 2 rounds, a few steps, no real cases."""
        steps = {m: {"steps": 2} for m in ("naive", "active", "passive", "dycnn")}
        base = cls(patients=2, seeds=1, rounds=2, shape=(40, 64, 64), anchor_per_case=1, adapt_overrides=steps,
                   real=False)
        return replace(base, **changes)

    @property
    def first_patient_seed(self) -> int:
        return EFFORT_TUNE_SEEDS if self.tune else EFFORT_PATIENT_SEEDS

    def patient_seeds(self) -> list[int]:
        return seed_list(self.first_patient_seed, self.patients)

    def repeat_seeds(self, count: int | None = None) -> list[int]:
        return seed_list(self.seed, self.seeds if count is None else count)

    def archs(self, runs: Sequence[str] | None = None) -> set[str]:
        """The base networks the runs need ("unet", and "dycnn" for the Dy-CNN method)."""
        return {"dycnn" if parse_run(r)[1] == "dycnn" else "unet" for r in (runs or self.runs)}

    def adapt_config(self, method: str, seed: int) -> Any:
        from ..adapt.config import default_config

        adapt_method, fixed = METHOD_SPECS[method]
        # No held-out scoring: a radiologist's case has no reference beyond the corrections.
        changes = {**self.adapt_overrides.get(adapt_method, {}), **fixed, "seed": seed, "reference_slices": 0}
        return default_config(adapt_method, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BaseModel:
    """A pretrained network and what goes with it: preprocessing, source sets, anchor score."""

    model: nn.Module
    preprocessing: Any
    description: str
    anchor: Any = None
    replay: list = field(default_factory=list)
    calibration: list = field(default_factory=list)  # the absent-class correction's sets besides the anchor
    anchor_mean: float = float("nan")
    anchor_scores: dict = field(default_factory=dict)


def prepare_sources(bases: dict[str, BaseModel], config: EffortConfig, anchor_cache: Any) -> None:
    """The guard's anchor set, the replay slices and the original's anchor score for every base network."""
    from ..adapt.anchors import anchor_set, calibration_sets, replay_pools
    from ..adapt.eval_sets import score_set

    replay_count = max(config.adapt_config(m, 0).replay for m in METHOD_SPECS)
    faint = any(config.adapt_config(m, 0).replay_faint for m in METHOD_SPECS)
    for base in bases.values():
        base.anchor = anchor_set(base.model.config, base.preprocessing, shape=config.shape,
                                 per_case=config.anchor_per_case, cache_dir=anchor_cache)
        base.replay = replay_pools(replay_count, base.model.config, base.preprocessing, shape=config.shape,
                                   cache_dir=anchor_cache, faint=faint)
        base.calibration = calibration_sets(config.adapt_config("active", 0), base.model.config, base.preprocessing,
                                            shape=config.shape, cache_dir=anchor_cache)
        base.anchor_scores = score_set(base.model, base.anchor)
        base.anchor_mean = base.anchor_scores["mean"]


@dataclass
class Segmented:
    """One prediction of the whole case."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    flipped: np.ndarray | None = None
    seconds: float = 0.0


def segment(model: nn.Module, preprocessing: Any, case: Any, device: Any, flip: bool = False) -> Segmented:
    """The plugin's segmentation of ``case`` (speck removal included), and optionally of its mirror image."""
    from ..inference.segmenter import Segmenter

    started = time.perf_counter()
    # One pass on every device (mirror "auto" would average four on a GPU): the curves of a GPU run and
    # of a CPU run, and those already published, stay comparable.
    segmenter = Segmenter(model, config=model.config, preprocessing=preprocessing, device=str(device), mirror="none")
    result = segmenter.segment(case)
    flipped = None
    if flip:
        mirrored = replace(case, images={k: np.ascontiguousarray(v[:, :, ::-1]) for k, v in case.images.items()},
                           label=None)
        flipped = np.ascontiguousarray(segmenter.segment(mirrored).labels[:, :, ::-1])
    return Segmented(result.labels, result.probabilities, flipped, time.perf_counter() - started)


def brain_slices(model: nn.Module, preprocessing: Any, case: Any) -> list[int]:
    """The case's axial slices through the brain (the ones the segmenter runs, the ones a user scrolls)."""
    from ..inference.preprocess import case_channels, plan_preprocessing
    from ..models.config import PreprocessingConfig

    margin = (preprocessing or PreprocessingConfig()).crop_margin
    plan = plan_preprocessing(case_channels(case), multiple=model.config.size_multiple, margin=margin)
    return [plan.crop.start[0] + int(z) for z in np.flatnonzero(plan.brain_slices)]


def _rng(*parts: Any) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(str(p).encode()) for p in parts])


def run_protocol(
    case: Any, base: BaseModel, initial: Segmented, brain: Sequence[int], run: str, seed: int,
    config: EffortConfig, device: Any, cancel: Any = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """One run of the protocol on one case; yields after every round; returns its record.

    Args:
        case: the case (its ``label`` is the truth).
        base: the pretrained network of the run's method.
        initial: its prediction of the case (shared by the runs).
        brain: the case's slices through the brain.
        run: "paste" or "strategy/method".
        seed: the repeat seed.
    """
    from ..adapt.corrections import Corrections, case_corrections
    from ..adapt.eval_sets import ANCHOR_SET
    from ..adapt.guard import Lineage
    from ..adapt.run import run_adaptation
    from ..workflow.suggest import slice_scores

    strategy, method = parse_run(run)
    truth = case.label
    spacing = case.geometry.spacing
    rng = _rng(case.name, seed, strategy)
    clock = Clock(config.rounds, "rounds", cancel)
    model, current, previous = base.model, initial, None
    corrected: list[int] = []
    lineage = Lineage.of_original("original", base.anchor_scores, base.anchor)
    rounds = [{"slices": 0, "picked": [], "accepted": None, **rest_scores(current.labels, truth, [], spacing)}]
    for index in range(config.rounds):
        clock.check()
        if strategy in ("suggest", "paste"):
            scores = slice_scores(current.probabilities, current.labels, flipped_labels=current.flipped,
                                  previous_labels=previous).total
            picks = pick_suggested(scores, brain, corrected, config.per_round, rng)
        elif strategy == "random":
            picks = pick_random(brain, corrected, config.per_round, rng)
        else:
            picks = pick_by_dice(current.labels, truth, brain, corrected, config.per_round, rng)
        corrected += picks
        accepted, timing = None, {}
        if method is not None:
            started = time.perf_counter()
            corrections = Corrections.of(case_corrections(case, truth, corrected, model_config=base.model.config,
                                                          preprocessing=base.preprocessing, reference_slices=0))
            adapt_config = config.adapt_config(method, seed * 1000 + index)
            outcome = drive(run_adaptation(model, corrections, adapt_config, anchor=base.anchor,
                                           replay_pools=base.replay, lineage=lineage, cancel=cancel,
                                           calibration=base.calibration))
            timing["adapt_s"] = round(time.perf_counter() - started, 2)
            accepted = outcome.report.status != "rejected"
            timing["passes"] = outcome.report.details.get("passes")
            timing["anchor_drop"] = outcome.report.anchor_drop
            timing["cumulative_drop"] = outcome.report.lineage.get("cumulative_drop")
            timing["guard"] = outcome.report.reason  # which bound a rejected version broke, in words
            timing["step"] = outcome.report.details.get("step")  # below 1: stepped back toward the parent
            timing["anchor_after"] = outcome.report.dice[ANCHOR_SET].after
            if accepted:
                model, previous = outcome.model, current.labels
                current = segment(model, base.preprocessing, case, device, flip=config.flip and strategy == "suggest")
                timing["segment_s"] = round(current.seconds, 2)
            else:  # what the guard kept from the user: the rejected version's rest of the case
                rejected = segment(outcome.model, base.preprocessing, case, device)
                timing["rejected_rest"] = rest_scores(rejected.labels, truth, corrected, spacing)
        rounds.append({"slices": len(corrected), "picked": picks, "accepted": accepted, **timing,
                       **rest_scores(current.labels, truth, corrected, spacing)})
        yield clock.tick(f"{case.name} seed {seed} {run}: {len(corrected)} slices")
    return {"case": case.name, "seed": seed, "run": run, "rounds": rounds}


def run_effort(
    bases: dict[str, BaseModel],
    config: EffortConfig,
    *,
    device: Any = "cpu",
    cancel: Any = None,
    journal: Any = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """The synthetic part: every patient, seed and run; returns the raw records.

    Args:
        bases: "unet" (and "dycnn" when a run needs it) -> BaseModel with its source sets.
        config: the experiment's settings.
        device: where to adapt and segment.
        cancel: a threading.Event or callable; a cancel raises Cancelled.
        journal: finished units to reuse and to record (see ``journal``), or None.
    """
    from ..synth.generate import make_case
    from .journal import Journal

    journal = journal or Journal(None, {})
    clock = Clock(config.patients * config.seeds * len(config.runs), "patients", cancel)
    records, reused, started = [], 0, time.perf_counter()
    for patient in config.patient_seeds():
        clock.check()
        case = make_case("metastasis", patient, **({"shape": config.shape} if config.shape else {}))
        brain = brain_slices(bases["unet"].model, bases["unet"].preprocessing, case)
        initial: dict[str, Segmented] = {}
        for seed in config.repeat_seeds():
            for run in config.runs:
                unit = (case.name, seed, run)
                record = journal.get(unit)
                if record is None:
                    arch = "dycnn" if parse_run(run)[1] == "dycnn" else "unet"
                    if arch not in initial:
                        base = bases[arch]
                        initial[arch] = segment(base.model, base.preprocessing, case, device, flip=config.flip)
                    record = yield from _forward(run_protocol(case, bases[arch], initial[arch], brain, run, seed,
                                                              config, device, cancel), clock)
                    record["patient"] = patient
                    journal.add(unit, record)
                else:
                    reused += 1
                records.append(record)
                yield clock.tick(f"{case.name} seed {seed} {run}")
    return {"records": records, "patients": config.patient_seeds(), "units_from_journal": reused,
            "seconds": round(time.perf_counter() - started, 1)}


def _forward(job: Generator[Progress, None, Any], clock: Clock) -> Generator[Progress, None, Any]:
    """Run an inner job, passing its rounds on as details of the outer progress (the bar stays the outer one)."""
    while True:
        try:
            report = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(clock.done, clock.total, clock.phase, report.detail, clock.elapsed)
