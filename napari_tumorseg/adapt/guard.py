"""The forgetting guard: decide on a new version from its scores before and after on fixed sets.

The sets (corrections, held-out, anchor, memory) and their pooled Dice are
``eval_sets``'s. The new version is accepted when neither the anchor's
mean Dice nor any one region's anchor Dice drops by more than ``tolerance``
(default 0.02) against its parent, nor by more than ``budget`` (default
0.05) against the *original* model its lineage started from (the shipped
model the first adaptation was made from), and, when there is a held-out
set, its mean Dice drops by at most ``max(tolerance, 0.05)``, and the same for
the memory set; otherwise it is rejected unless the user forces it. The sentence names the region that
failed.

Why per region: the mean hides one class traded for another. Five slices
of a lower-grade glioma without enhancing tumour taught the model "less
enhancing tumour"; its WT and TC rose, the mean held, and the next cases'
enhancing tumour fell to a quarter or a third. A region's own Dice falling
by more than the bound is forgetting, whatever the others do. (Held to the
same bounds, a single region is a stricter test than the mean: an ET loss
of 0.06 alone moves the mean by 0.02.)

Why a limit on shrinking (``max_shrink``, off by default): the same step marks less enhancing
tumour on the anchor too, but the parent over-called it there, so the anchor's ET Dice *rose*. The
voxels marked fall in both; with a limit, a version that marks more than that share less of a
region on the anchor is refused (and stepped back from). On phantoms the limit cost the corrected
cases more than it saved the next ones, so it stays off (docs/results/anchor-blind-spot).

Why the budget: each version compared with its parent alone lets ten
accepted versions lose 0.02 each. The original's anchor Dice travels down
the lineage in every version's metrics (``lineage``), so the cumulative drop
costs nothing to compute and the user sees how much of the budget is used.

Why the held-out check: an adaptation can learn the corrected slices, keep
the anchor set, and still get the rest of the very case worse (seen in the
GUI with active meta-tune and no replay: corrections 0.92 -> 0.96, anchor
held, the case's other slices 0.93 -> 0.68). The held-out set is a few slices
of one or two cases, noisier than the anchor, hence the looser bound.

Why the memory set: the anchor is synthetic glioma, which the user's cases
are not. Five slices of a glioma without enhancing tumour made the model call
a third of the enhancing tumour on the next real cases, and the anchor's own
enhancing tumour *rose*, so nothing caught it. The user's earlier corrected
cases are the only references of their own domain the plugin holds; a version
that gets them worse is forgetting what the user taught it. They are few and
replayed during the run (so they lean optimistic), hence the held-out bound;
at most ``eval_sets.MEMORY_GUARD_SLICES`` of them are scored, newest cases first, to keep
the scoring to about the anchor's cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ..io.labels import REGION_TITLES
from .eval_sets import EvalSet, anchor_key, marked_key, region_scores

DEFAULT_TOLERANCE = 0.02
DEFAULT_BUDGET = 0.05
HELD_OUT_MIN_TOLERANCE = 0.05  # the bound of the two small sets (held-out, memory)
MIN_MARKED_VOXELS = 100  # a region marked on fewer anchor voxels is too small to judge its shrinking


@dataclass
class SetScores:
    """Dice of one set before and after adaptation."""

    slices: int
    before: dict[str, float]
    after: dict[str, float] = field(default_factory=dict)

    @property
    def change(self) -> float:
        """after - before of the mean Dice (NaN until scored after)."""
        if "mean" not in self.after:
            return float("nan")
        return round(self.after["mean"] - self.before["mean"], 6)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["change"] = self.change
        return data


@dataclass(frozen=True)
class GuardDecision:
    """The guard's verdict on a new version.

    Args:
        accepted: neither the anchor's Dice (its mean or any region's) nor the held-out set's dropped
            by more than allowed.
        forced: the user asked to activate it whatever the guard says.
        anchor_drop: before - after of the anchor's mean Dice (negative: it improved).
        tolerance: the largest drop accepted.
        reason: one sentence for the user.
        cumulative_drop: the original model's anchor mean Dice - after (None: not checked).
        budget: the largest cumulative drop accepted.
        failed_region: the region ("WT", "TC", "ET") whose own anchor Dice dropped too far, else None.
    """

    accepted: bool
    forced: bool
    anchor_drop: float
    tolerance: float
    reason: str
    cumulative_drop: float | None = None
    budget: float | None = None
    failed_region: str | None = None

    @property
    def activate(self) -> bool:
        return self.accepted or self.forced


def decide(
    anchor: SetScores,
    tolerance: float = DEFAULT_TOLERANCE,
    force: bool = False,
    held_out: SetScores | None = None,
    *,
    original: float | None = None,
    budget: float = DEFAULT_BUDGET,
    original_regions: Mapping[str, float] | None = None,
    memory: SetScores | None = None,
    max_shrink: float | None = None,
) -> GuardDecision:
    """Accept when neither the anchor (its mean or any one region) nor the held-out or memory set lost too much.

    ``force`` overrides the verdict (the version is activated, the sentence says so).

    Args:
        anchor: the anchor set's scores before and after ("mean", and "WT", "TC",
            "ET" when known: each region is then checked on its own too).
        tolerance: the largest accepted drop against the parent, of the anchor's
            mean Dice and of each region's.
        force: activate even when a drop is larger.
        held_out: the held-out slices' scores, when the cases have a reference
            (its bound is ``max(tolerance, HELD_OUT_MIN_TOLERANCE)``).
        original: the anchor mean Dice of the lineage's original model (None: the
            parent is the original, its score before is used).
        budget: the largest accepted cumulative drop against the original, of the
            mean and of each region (never below ``tolerance``: a looser step
            tolerance loosens the budget too).
        original_regions: the original model's anchor Dice per region (None: when
            ``original`` is None the parent's scores before, else no per-region
            check against the original).
        memory: the user's earlier cases' scores, when the memory holds any (the
            held-out set's bound).
        max_shrink: the largest share by which a region's voxels marked on the anchor may
            shrink against the parent (None: not checked); see :func:`_shrink_failure`.
    """
    budget = max(float(budget), float(tolerance))
    drop = round(anchor.before["mean"] - anchor.after["mean"], 6)
    reference = anchor.before["mean"] if original is None else float(original)
    cumulative = round(reference - anchor.after["mean"], 6)
    numbers, problem = _anchor_mean(anchor, drop, cumulative, tolerance, budget)
    if original is None and original_regions is None:
        original_regions = anchor.before
    failed_region = None
    # Each failure's numbers go before the sentence so far; the first problem found is the one named.
    for failure in (_region_failure(anchor, tolerance, original_regions, budget), _shrink_failure(anchor, max_shrink)):
        if failure is not None:
            region, region_problem, region_numbers = failure
            numbers = f"{region_numbers}; {numbers}"
            problem = problem or region_problem
            failed_region = failed_region or region
    small_numbers, small_problem = _small_sets(held_out, memory, tolerance)
    numbers += small_numbers
    problem = problem or small_problem
    accepted = problem is None
    reason = _reason(problem, force, numbers)
    return GuardDecision(accepted, force and not accepted, drop, tolerance, reason, cumulative, budget, failed_region)


def _anchor_mean(
    anchor: SetScores, drop: float, cumulative: float, tolerance: float, budget: float
) -> tuple[str, str | None]:
    """The anchor mean's part of the sentence, and its complaint if it fell too far against the parent or
    the original."""
    spent = f"{cumulative:.3f}" if cumulative > 0 else "none"
    used = f"{spent} of the {budget:.3f} budget used"
    numbers = (
        f"anchor Dice {anchor.before['mean']:.3f} -> {anchor.after['mean']:.3f} "
        f"({_change(drop)}, tolerance {tolerance:.3f}; {used} since the original model)"
    )
    problem = "forgetting on the source anchor set" if drop > tolerance else None
    if problem is None and cumulative > budget:
        problem = "the model has drifted too far from the original over its versions"
    return numbers, problem


def _reason(problem: str | None, force: bool, numbers: str) -> str:
    """The sentence for the user: accepted, forced against the guard, or rejected and why."""
    if problem is None:
        return f"accepted: {numbers}"
    if force:
        return f"forced by the user although the guard would reject it ({problem}): {numbers}"
    return f"rejected: {problem}; {numbers}"


_SMALL_SETS = (
    ("held-out slices", "the case's other slices got worse (over-fitted to the corrections)"),
    ("your earlier cases", "your earlier cases' corrected slices got worse (forgetting what you taught it)"),
)


def _small_sets(held_out: SetScores | None, memory: SetScores | None, tolerance: float) -> tuple[str, str | None]:
    """The held-out and memory sets' part of the sentence, and the first one's complaint if it fell too far."""
    bound = max(tolerance, HELD_OUT_MIN_TOLERANCE)
    numbers, problem = "", None
    for scores, (title, complaint) in zip((held_out, memory), _SMALL_SETS):
        if scores is None:
            continue
        fall = round(scores.before["mean"] - scores.after["mean"], 6)
        numbers += (f"; {title} {scores.before['mean']:.3f} -> {scores.after['mean']:.3f} "
                    f"({_change(fall)}, tolerance {bound:.3f})")
        if problem is None and fall > bound:
            problem = complaint
    return numbers, problem


def _region_failure(
    anchor: SetScores, tolerance: float, original: Mapping[str, float] | None, budget: float
) -> tuple[str, str, str] | None:
    """(region, problem, numbers) for the region whose anchor Dice fell furthest past a bound, else None.

    A region fails when its drop against the parent exceeds ``tolerance`` or its
    drop against the original exceeds ``budget``; of several, the one furthest
    past its bound is named.
    """
    worst: tuple[float, str, str, str] | None = None
    for region, name in REGION_TITLES.items():
        if region not in anchor.before or region not in anchor.after:
            continue
        before, after = float(anchor.before[region]), float(anchor.after[region])
        step = round(before - after, 6)
        excess = step - tolerance
        problem = f"forgetting of the {name} ({region}) on the source anchor set"
        if original is not None and region in original:
            since = round(float(original[region]) - after, 6)
            if since - budget > max(excess, 0.0):
                excess = since - budget
                problem = f"the {name} ({region}) has drifted too far from the original over its versions"
        if excess > 0 and (worst is None or excess > worst[0]):
            numbers = f"{region} {before:.3f} -> {after:.3f} ({_change(step)})"
            if original is not None and region in original and problem.endswith("versions"):
                numbers += f", {float(original[region]):.3f} in the original"
            worst = (excess, region, problem, numbers)
    return None if worst is None else worst[1:]


def _shrink_failure(anchor: SetScores, max_shrink: float | None) -> tuple[str, str, str] | None:
    """(region, problem, numbers) for the region whose voxels marked on the anchor shrank most past ``max_shrink``.

    Why beside the Dice: adapted on a case without enhancing tumour, the model marks less of it
    everywhere. On the anchor the parent over-called it, so its Dice there *rises* while the
    real next cases lose half their enhancing tumour (docs/results/anchor-blind-spot); the
    volume marked falls in both. Regions marked on fewer than ``MIN_MARKED_VOXELS`` are not judged.
    """
    if max_shrink is None:
        return None
    worst: tuple[float, str, str, str] | None = None
    for region, name in REGION_TITLES.items():
        before, after = anchor.before.get(marked_key(region)), anchor.after.get(marked_key(region))
        if before is None or after is None or before < MIN_MARKED_VOXELS:
            continue
        share = 1.0 - after / before
        if share > max_shrink and (worst is None or share > worst[0]):
            problem = (f"the model marks {share:.0%} less {name} ({region}) on the source anchor set "
                       f"(at most {max_shrink:.0%})")
            worst = (share, region, problem, f"{region} marked {int(before):,} -> {int(after):,} voxels")
    return None if worst is None else worst[1:]


def _change(drop: float) -> str:
    """A score's change in words a reader takes in at once: "down 0.045", "up 0.196", "unchanged"."""
    if abs(drop) < 0.0005:
        return "unchanged"
    return f"down {drop:.3f}" if drop > 0 else f"up {-drop:.3f}"


@dataclass(frozen=True)
class Lineage:
    """The original model a version descends from, and that model's anchor Dice (the budget's reference).

    Args:
        root: the original model's version id (a shipped model's name), or None when unknown.
        root_anchor: its mean anchor Dice on the anchor set ``anchor_key``; None when
            the parent is the original (its score before is then the reference).
        anchor_key: which anchor set the score is on (see :func:`anchor_key`).
        root_regions: the original's anchor Dice per region ("WT", "TC", "ET"), for the
            per-region budget; None when unknown (versions made before it was kept).
    """

    root: str | None
    root_anchor: float | None
    anchor_key: str
    root_regions: Mapping[str, float] | None = None

    @classmethod
    def of_original(cls, root: str | None, scores: Mapping[str, float], anchor: EvalSet) -> Lineage:
        """The lineage of a model whose original is ``root``, scored ``scores`` (``eval_sets.score_set``) on ``anchor``."""
        return cls(root, float(scores["mean"]), anchor_key(anchor), region_scores(scores))
