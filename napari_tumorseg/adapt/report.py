"""The adaptation report: what was learned from what, how well, and what happened to the version.

Plain data, JSON-serialisable with :meth:`AdaptationReport.to_json`; kept as
``report.json`` beside the version's weights and written by ``tumorseg adapt --report``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .guard import SetScores


def _json_safe(value: Any) -> Any:
    """NaN and infinities become None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@dataclass
class AdaptationReport:
    """Everything about one adaptation run.

    Args:
        method: "naive", "passive", "active" or "dycnn".
        parent_id: the version adapted from (None when the model came from elsewhere).
        version_id: the new version's id (None when no registry was used).
        status: "active", "candidate" (kept, not activated) or "rejected".
        activated: whether the new version became the active one.
        forced: activated by the user against the guard.
        reason: the guard's sentence.
        anchor_drop: before - after of the anchor set's mean Dice.
        tolerance: the largest drop the guard accepts.
        hyperparameters: the AdaptConfig.
        corrections_hash: SHA-256 of the corrections.
        corrections: per case, its name and corrected slice indices.
        replay: {"used": bool, ...} and the replay set's size when used.
        anchor: where the anchor set comes from (seeds, slices).
        dice: set name -> Dice before/after (corrections, held_out, anchor).
        losses: the training loss of every step.
        task_order: the slices in the order they were used (meta-tune) or the batches (dycnn).
        details: method-specific facts (task Dice and the good/bad split, temperature).
        timings: seconds per phase and in total.
        created: ISO 8601 time.
        lineage: the original model the version descends from, its anchor Dice, the
            cumulative drop since it and the budget.
        label_free: the label-free check (see ``labelfree``), or None when no unlabelled slices were given.
        device: where the adaptation ran.
    """

    method: str
    parent_id: str | None
    version_id: str | None
    status: str
    activated: bool
    forced: bool
    reason: str
    anchor_drop: float
    tolerance: float
    hyperparameters: dict[str, Any]
    corrections_hash: str
    corrections: list[dict[str, Any]]
    replay: dict[str, Any]
    anchor: dict[str, Any]
    dice: dict[str, SetScores]
    losses: list[float] = field(default_factory=list)
    task_order: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""
    lineage: dict[str, Any] = field(default_factory=dict)
    label_free: dict[str, Any] | None = None
    device: str = "cpu"

    @property
    def where(self) -> str:
        """The device and, when the method said, the arithmetic: "cpu (bf16)"."""
        arithmetic = self.details.get("precision")
        return f"{self.device} ({arithmetic})" if arithmetic else self.device

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dice"] = {name: scores.to_dict() for name, scores in self.dice.items()}
        return _json_safe(data)

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def metrics(self) -> dict[str, Any]:
        """The compact numbers kept in the version's metadata (the registry listing)."""
        out: dict[str, Any] = {"anchor_drop": self.anchor_drop, "tolerance": self.tolerance}
        for name, scores in self.dice.items():
            out[name] = {"before": scores.before.get("mean"), "after": scores.after.get("mean")}
        if self.lineage:
            out["lineage"] = dict(self.lineage)
        if self.label_free is not None:
            out["label_free"] = {k: self.label_free.get(k)
                                 for k in ("agreement", "viewed_agreement", "tumour_ml", "region_ml")}
        return _json_safe(out)

    def summary_lines(self) -> list[str]:
        """A few lines for a terminal or a notification."""
        lines = [f"{self.method} on {self.where}: {self.reason}"]
        for name, scores in self.dice.items():
            after = scores.after.get("mean", float("nan"))
            lines.append(f"  {name:<12} Dice {scores.before['mean']:.3f} -> {after:.3f} ({scores.slices} slices)")
        kept = absent_class_line(self.details)
        if kept:
            lines.append("  " + kept)
        if self.label_free is not None:  # last: the check a radiologist reads before accepting the version
            lines.append("  " + label_free_line(self.label_free))
        return lines


def absent_class_line(details: dict[str, Any]) -> str:
    """What the bias correction of the classes the corrections lack did ("" when it did nothing)."""
    shifts = details.get("absent_bias_shift") or {}
    if not shifts:
        return ""
    moved = ", ".join(f"{name} {shift:+.2f}" for name, shift in shifts.items())
    return (f"kept {', '.join(shifts)} as the previous version marks it: no corrected slice holds it, so its "
            f"output was moved back ({moved} logits; docs/results/keep-absent)")


def label_free_line(check: dict[str, Any]) -> str:
    """The label-free check in one line (terminal and card)."""
    volume = check.get("tumour_ml") or {}
    viewed = check.get("viewed_agreement")
    seen = f", on the {check.get('viewed')} you looked at {viewed:.3f}" if viewed is not None else ""
    regions = check.get("region_ml") or {}
    parts = ", ".join(f"{region} {regions[region].get('before', 0):.2f} -> {regions[region].get('after', 0):.2f}"
                      for region in ("TC", "ET") if region in regions)
    text = (
        f"without labels: agreement before/after {check.get('agreement', float('nan')):.3f} on "
        f"{check.get('slices')} uncorrected slices{seen}; predicted tumour there "
        f"{volume.get('before', 0):.1f} -> {volume.get('after', 0):.1f} ml" + (f" ({parts})" if parts else "")
    )
    return text + (f" (warning: {check['warning']})" if check.get("warning") else "")


def budget_line(lineage: dict[str, Any]) -> str:
    """How much of the cumulative anchor budget the version has used ("" when unknown)."""
    used, budget = lineage.get("cumulative_drop"), lineage.get("budget")
    if not isinstance(used, (int, float)) or not isinstance(budget, (int, float)):
        return ""
    return f"{max(used, 0.0):.3f} of {budget:.3f} used since {lineage.get('root') or 'the original'}"
