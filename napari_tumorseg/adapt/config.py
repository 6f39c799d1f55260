"""Hyper-parameters of an adaptation run, with the defaults of each method (no torch here).

The speed target of the adaptation issue is 5 corrected slices adapted and
guarded in at most 15 s on 2 CPU cores with the shipped base-16 U-Net: met
(``tumorseg bench-adapt``, README Speed): 10.9 s on 2 idle cores of an EPYC
with bfloat16 units where the guard refuses the full step and steps back
(``step_back``), with OpenMP's short spin (``napari_tumorseg/__init__.py``).
They come from ``default_config``; a field given explicitly always wins.

Why these defaults (measured with the shipped base-16 U-Net on 5 corrected
slices of BraTS-size synthetic metastasis cases, 8 held-out slices each, and
the 16-slice glioma anchor set of the time: 4 slices of 4 cases, which
docs/results/guard-anchor found to under-state forgetting; the replay figures
below were read on it):

- Plain SGD, not Adam: Adam moves every weight by about ``lr`` per step,
  whether or not it matters for the corrections, and the anchor Dice fell by
  0.02-0.16 even at Adam lr 1e-4 to 1e-3; SGD moves weights in proportion to
  their gradient and forgot less for the same gain on held-out slices.
- Replay on (4 source slices per step, weight 1): without it every method
  lost 0.02-0.05 anchor Dice and the guard (tolerance 0.02) rejected nearly
  every run; with it the drop was under 0.01 while the held-out metastasis
  Dice still rose by 0.01-0.04. ``replay=0`` turns it off. The set drawn
  from: 8 slices (4 of each of 2 synthetic gliomas). 16 scored best of
  8/16/32 on seeds 36000 and was not worse on fresh seeds 37000, so the
  sweep's rule (scripts/replay_size_sweep.py) adopted it, but the
  difference was noise (+0.0105 +/- 0.040 over 8 cases, p = 0.58), and on
  the real glioma every figure was a little worse (rest WT 0.914 / 0.925
  against 0.916 / 0.929; the next real cases' ET lower still), with more
  passes per step: 8 stays (docs/results/replay-size).
- Inner step alpha 1e-2: at 1e-3 one SGD step changes a slice's loss by
  under 1 %, so MAML degenerates to plain training on the query samples; at
  1e-2 to 3e-2 it lowers it by 5-10 % and stays stable.
- Whole slices (``crop=None``) for naive and meta-tuning, not 96-px crops:
  on 20 metastasis patients at k = 5 (docs/results/meta-tune-whole-slices
  against the same seed of docs/results/meta-tune) ET Dice on the patients'
  other slices rose 0.839 -> 0.906 (naive) and 0.851 -> 0.899 (first-order
  active), on held-out patients 0.89 -> 0.92, the anchor unchanged; on one
  case whose corrected slices held only oedema, crops made the rest of the
  case collapse (0.93 -> 0.40) and whole slices did not (0.93 -> 0.95).
  Instance norm sees different statistics in a crop than in the slice it
  later segments. Cost: 1.5-2.2x the time (bench-adapt on one thread: active
  14.8 -> 21.8 s, naive 16.2 -> 35.1 s; on two threads 13.4 and 20.1 s).
- First-order meta-tuning by default: in that first full run (120 runs of
  each order) the second-order variants collapsed in 6 runs and first-order
  in none, first-order scored as well, and it is 1.6x faster.
- Matched compute: a meta step of ``meta_batch_size`` = 2 tasks runs 4 slices
  forward and backward (each task's support and query slice), so naive
  fine-tuning takes batches of 4 slices and Dy-CNN continual batches of 4,
  with the same number of steps and the same replay per step: every method
  does the same number of forward/backward passes (``MethodResult.details
  ["passes"]`` counts them). Meta-tuning's query losses are averaged over
  the tasks, as naive averages over its batch.
- Guard budget 0.05: each version may lose at most ``tolerance`` anchor Dice
  against its parent and at most ``budget`` against the original model its
  lineage started from, so ten accepted versions cannot each lose 0.02.
- Memory 2 per step: two slices of the user's earlier cases' corrections
  (``adapt.memory``) are replayed beside the source slices at every step.
- Precision "auto": bfloat16 passes where the CPU has native bfloat16 units
  (``models.precision``). On 2 cores of such a Xeon it adapted in 12.6 s
  against 14.6-15.3 s in float32, and on the effort protocol (4 fresh
  metastasis patients, the real labelled case, 2 seeds) the adapted
  versions' rest-of-volume WT differed from float32's by +0.002 +/- 0.005
  (docs/results/adapt-precision, a rule written before measuring).
- Absent-class weight 1 (the training loss): corrections without enhancing
  tumour make the next cases lose some of theirs, less at smaller weights,
  but on synthetic lower-grade gliomas the weights 0-1 scored within 0.006
  of each other on the rule written first, and on fresh cases 0.25 lowered
  the next cases' Dice (-0.0105, 7 of 8): it keeps some false enhancement
  too (docs/results/absent-class).
- Every layer adapted, not the decoder alone: keeping the encoder adapts
  18 % faster on the CPU and the next cases keep a little more enhancing
  tumour, but the corrected case learns little (real glioma rest WT 0.905
  against 0.916; phantoms S -0.033, 1 of 8 better: docs/results/decoder-only).
- Replay drawn across the set's cases, not one case per step: by case is one
  pass fewer per step (the GPU's cost) but no faster on a CPU, and a little
  lower on the real glioma (docs/results/replay-by-case).
- Absent classes kept (``keep_absent``): corrections without enhancing tumour
  lowered its output so far that the next real cases kept a third of theirs;
  moving that class's bias back to the parent's count on the anchor
  (``adapt.prior``) keeps 72 % with the corrected case's rest WT unchanged
  (0.916 / 0.929), and on phantoms S +0.002 (6 of 8); 0.06 s a run beyond
  the guard's own anchor pass, which it shares (docs/results/keep-absent, a
  rule written before measuring).
- Not also on faintly enhancing phantoms (``keep_absent_faint``): four such
  phantoms ask for less shift than the anchor on the real glioma, so the next
  real cases keep 72 % as without (docs/results/keep-absent-faint).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import AdaptationError

METHODS: tuple[str, ...] = ("naive", "passive", "active", "dycnn")
# Meta-tuning's task orders: the least-learned slices first (active), the best-learned first (the
# experiment's control for active, same pairing), or a random order (passive).
ORDERS: tuple[str, ...] = ("worst-first", "best-first", "random")
METHOD_ORDER = {"active": "worst-first", "passive": "random"}
# Phases of one adaptation run, in the order they happen (the ``phase`` of its progress reports).
PHASE_PREPARING_SOURCE = "preparing-source"
PHASE_SCORING_BEFORE = "scoring-before"
PHASE_ADAPTING = "adapting"
PHASE_SCORING_AFTER = "scoring-after"
PHASE_SAVING = "saving"
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
# The passes' arithmetic (see ``models.precision``; kept equal to its PRECISIONS by a test).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
# The parameters an adaptation changes: every layer, or the decoder and head with the encoder kept as trained
# (``adapt.training.working_copy``).
LAYERS: tuple[str, ...] = ("all", "decoder")
DEFAULT_METHOD = "active"


@dataclass(frozen=True)
class AdaptConfig:
    """Everything that defines an adaptation run (recorded with the version it makes).

    Args:
        method: "naive" (gradient fine-tune), "passive" (MAML, random task
            order), "active" (MAML, least-learned tasks first) or "dycnn"
            (continual updates of a Dy-CNN, temperature frozen).
        steps: naive: optimiser steps; passive/active: meta steps (one meta
            batch each); dycnn: steps on each arriving batch of corrections.
        lr: learning rate of the optimiser (naive, dycnn), or the meta step
            size beta of meta-tuning.
        inner_lr: meta-tuning's inner step size alpha (plain SGD, as in MAML).
        first_order: meta-tuning: drop the second-order term (FOMAML); faster,
            the meta-gradient is then the query gradient at the adapted weights.
        meta_batch_size: tasks per meta step, all from one case (Algorithm 1's "meta
            batch of one patient"); their query losses are averaged.
        optimizer: "sgd" (default; the plain update of Algorithm 1,
            theta <- theta - lr * gradient, which forgets less, see above) or "adam".
        batch_size: naive and dycnn: slices per step.
        crop: side of the random crops taken from the slices (None: whole
            slices); a multiple of the network's size multiple.
        order: meta-tuning's task order (see ORDERS); None: the method's
            (active worst-first, passive random). "best-first" is the control
            that shows whether the order matters.
        seed: seeds task order, crops and flips.
        replay: source-domain (synthetic glioma) slices in the replay set; 0 = no replay.
        replay_per_step: replay slices mixed into each step.
        replay_weight: weight of the replay loss against the corrections' loss.
        replay_faint: the replay set's second case is a glioma whose enhancing tumour enhances faintly
            (generator version 7, ``anchors.REPLAY_FAINT_SEED``) instead of a brightly enhancing one.
        replay_distill: weight of a second replay term: the replayed source slices' softmax pulled
            towards the parent version's (KL; ``sampling.Replay``'s teachers); 0 = off, labels only.
        replay_by_case: draw each step's replay slices (and its memory slices) from one case
            picked at random, so that they share a size and go through the network as one
            batch (one pass fewer per step than slices of two cases; see ``sampling.Replay``).
        tolerance: largest drop of the anchor set's Dice the guard accepts against the
            parent version (the held-out slices, when there are any, may drop by
            ``max(tolerance, 0.05)``).
        budget: largest drop of the anchor set's Dice the guard accepts against the
            original model of the lineage (cumulative over versions).
        memory_per_step: slices of the user's earlier cases' corrections replayed at every
            step when there are any (see ``adapt.memory``); 0 = off.
        reference_slices: held-out slices of each case (with a reference) scored before and after.
        precision: the arithmetic of the adaptation's forward and backward passes: "fp32",
            "bf16" (mixed precision: weights, update and loss stay float32), or "auto"
            (bf16 where the CPU has native bfloat16 units, else fp32; see ``models.precision``).
            The scoring before and after, and so the guard, always runs in float32.
        step_back: when the guard rejects the adapted version, keep the first of the versions
            0.75, 0.5, 0.25 of the way from the parent that it accepts (see ``adapt.stepback``).
        absent_class_weight: weight, in the loss's Dice mean, of a tumour class that a batch's
            reference does not hold (``models.losses.dice_ce_loss``; 1 weighs it as the others).
        max_shrink: the largest share by which the voxels the model marks as a region (WT, TC, ET)
            on the anchor set may shrink against the parent; None: not checked (``guard.decide``).
        layers: the parameters the adaptation changes (see LAYERS): "all", or "decoder" (the up-sampling
            path and the head; the encoder, stem and down-samplings, keeps the features it learnt from the
            training set, and its backward pass is skipped).
        keep_absent: after adapting, move the output bias of each tumour class no corrected slice holds so
            that the new version marks as many anchor voxels of it as its parent (``adapt.prior``).
        keep_absent_faint: with ``keep_absent``, also keep the parent's count on phantoms whose tumour
            enhances faintly (``anchors.FAINT_CALIBRATION_SEEDS``), the larger of the two shifts made.
    """

    method: str = DEFAULT_METHOD
    steps: int = 20
    lr: float = 1e-2
    inner_lr: float = 1e-2
    first_order: bool = False
    meta_batch_size: int = 2
    optimizer: str = "sgd"
    batch_size: int = 4
    crop: int | None = 96
    order: str | None = None
    seed: int = 0
    replay: int = 8
    replay_per_step: int = 4
    replay_weight: float = 1.0
    replay_by_case: bool = False
    replay_distill: float = 0.0
    replay_faint: bool = False
    tolerance: float = 0.02
    budget: float = 0.05
    memory_per_step: int = 2
    reference_slices: int = 8
    precision: str = "auto"
    step_back: bool = True
    absent_class_weight: float = 1.0
    max_shrink: float | None = None
    layers: str = "all"
    keep_absent: bool = True
    keep_absent_faint: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise AdaptationError(f"unknown adaptation method {self.method!r}; expected one of {', '.join(METHODS)}")
        if self.order is not None and self.order not in ORDERS:
            raise AdaptationError(f"unknown task order {self.order!r}; expected one of {', '.join(ORDERS)}")
        if self.precision not in PRECISIONS:
            raise AdaptationError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")
        if self.layers not in LAYERS:
            raise AdaptationError(f"unknown layers {self.layers!r}; expected one of {', '.join(LAYERS)}")
        if self.optimizer not in OPTIMIZERS:
            raise AdaptationError(f"unknown optimizer {self.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
        for name in ("steps", "meta_batch_size", "batch_size", "replay_per_step"):
            if getattr(self, name) < 1:
                raise AdaptationError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "inner_lr"):
            if not getattr(self, name) > 0:
                raise AdaptationError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.crop is not None and self.crop < 8:
            raise AdaptationError(f"crop must be at least 8 pixels (or None), got {self.crop}")
        if not 0.0 <= self.absent_class_weight <= 1.0:
            raise AdaptationError(f"absent_class_weight must be in [0, 1], got {self.absent_class_weight}")
        if self.max_shrink is not None and not 0.0 <= self.max_shrink < 1.0:
            raise AdaptationError(f"max_shrink must be in [0, 1) or None, got {self.max_shrink}")
        non_negative = ("replay", "replay_weight", "replay_distill", "tolerance", "budget", "memory_per_step",
                        "reference_slices")
        if any(getattr(self, name) < 0 for name in non_negative):
            raise AdaptationError(f"{', '.join(non_negative)} must be >= 0")

    @property
    def is_meta(self) -> bool:
        return self.method in ("passive", "active")

    @property
    def task_order(self) -> str:
        """The meta-tuning task order in effect (the explicit ``order``, else the method's)."""
        return self.order or METHOD_ORDER.get(self.method, "random")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# Per-method defaults (see the module docstring for how they were chosen).
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "naive": {"steps": 20, "lr": 1e-2, "batch_size": 4, "crop": None},
    "passive": {"steps": 20, "lr": 1e-2, "inner_lr": 1e-2, "meta_batch_size": 2, "first_order": True, "crop": None},
    "active": {"steps": 20, "lr": 1e-2, "inner_lr": 1e-2, "meta_batch_size": 2, "first_order": True, "crop": None},
    "dycnn": {"steps": 20, "lr": 1e-2, "batch_size": 4, "crop": None},
}


def default_config(method: str = DEFAULT_METHOD, **overrides: Any) -> AdaptConfig:
    """The default hyper-parameters of ``method``, with ``overrides`` applied.

    Args:
        method: one of METHODS.
        overrides: AdaptConfig fields to set; None values are ignored, so CLI
            options left unset keep the method's default; ``crop=0`` means
            whole slices (crop None).
    """
    if method not in METHODS:
        raise AdaptationError(f"unknown adaptation method {method!r}; expected one of {', '.join(METHODS)}")
    base = replace(AdaptConfig(method=method), **_METHOD_DEFAULTS[method])
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("crop") == 0:
        given["crop"] = None
    return replace(base, **given)
