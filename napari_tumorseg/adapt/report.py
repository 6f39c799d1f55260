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
        return _json_safe(out)

    def summary_lines(self) -> list[str]:
        """A few lines for a terminal or a notification."""
        lines = [f"{self.method}: {self.reason}"]
        for name, scores in self.dice.items():
            after = scores.after.get("mean", float("nan"))
            lines.append(f"  {name:<12} Dice {scores.before['mean']:.3f} -> {after:.3f} ({scores.slices} slices)")
        return lines
