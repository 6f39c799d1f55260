"""From the effort experiment's records to curves, paired tests and the issue's targets.

A run's figure after a round is an array ``(patients, seeds)``; curves give
its mean and spread per number of corrected slices (``common.summarize``).
Paired tests (two-sided Wilcoxon signed-rank, each patient the mean of its
seeds: the patient is the unit) compare two runs on the same patients,
after the last round and over the whole curve (the mean over rounds 1..R,
an area under the curve). Several comparisons are made: read each p-value
with that in mind.

"Suggestions reach random's Dice with 30 % fewer slices": for each patient,
random's rest-of-volume WT Dice after the last round (mean over seeds) is
the bar; the slices the suggestions need is the first round whose mean WT
reaches it (never: None). Reported per patient, and on the curves averaged
over patients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .common import paired_test, summarize
from .effort import EffortConfig

METRICS: dict[str, Any] = {
    "WT": lambda r: r["dice"]["WT"],
    "TC": lambda r: r["dice"]["TC"],
    "ET": lambda r: r["dice"]["ET"],
    "lesion_sensitivity": lambda r: r["lesion_sensitivity"],
    "fp_voxels": lambda r: r["fp_voxels"],
    "fp_lesions": lambda r: r["fp_lesions"],
    "slices_needing_edits": lambda r: r["slices_needing_edits"],
    "final_WT": lambda r: r["final_dice"]["WT"],
}
# (a, b, why): the comparisons the issue asks for, where both runs were made.
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("suggest/active", "random/active", "suggestions against random slices"),
    ("dice/active", "suggest/active", "the truth's order against the suggestions"),
    ("suggest/active", "paste", "what learning adds to pasting the corrections"),
    ("suggest/active", "suggest/naive", "active meta-tune against naive fine-tune, matched passes"),
    ("suggest/active", "suggest/active-best", "worst-first against its best-first control"),
    ("suggest/active", "suggest/passive", "worst-first against random order"),
    ("suggest/dycnn", "suggest/active", "Dy-CNN continual against active meta-tune (another base network)"),
)
TESTED_METRICS = ("WT", "slices_needing_edits", "fp_voxels")
FEWER_SLICES = 0.3


def metric_array(records: Sequence[dict], run: str, round_index: int, metric: str, cases: Sequence[str],
                 seeds: Sequence[int]) -> np.ndarray:
    """``(cases, seeds)`` of one figure after one round (NaN where not run)."""
    values = {(r["case"], r["seed"]): METRICS[metric](r["rounds"][round_index]) for r in records
              if r["run"] == run and round_index < len(r["rounds"])}
    return np.array([[values.get((c, s), np.nan) for s in seeds] for c in cases], dtype=np.float64)


def curve_array(records: Sequence[dict], run: str, metric: str, cases: Sequence[str], seeds: Sequence[int],
                rounds: int) -> np.ndarray:
    """``(rounds + 1, cases, seeds)``: the figure after every round (round 0: before any correction)."""
    return np.stack([metric_array(records, run, i, metric, cases, seeds) for i in range(rounds + 1)])


def _patient_means(array: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.nanmean(array, axis=-1)


def slices_needed(curve: Sequence[float], slices: Sequence[int], bar: float) -> int | None:
    """The first number of slices at which ``curve`` reaches ``bar`` (None: never)."""
    for value, count in zip(curve, slices):
        if np.isfinite(value) and value >= bar - 1e-9:
            return int(count)
    return None


def analyse_protocol(records: Sequence[dict], config: EffortConfig, runs: Sequence[str],
                     seeds: Sequence[int]) -> dict[str, Any]:
    """Curves, paired tests, the suggestions-against-random target, acceptance and costs of a set of records."""
    cases = sorted({r["case"] for r in records})
    slices = [i * config.per_round for i in range(config.rounds + 1)]
    curves: dict[str, Any] = {}
    arrays: dict[tuple[str, str], np.ndarray] = {}
    for run in runs:
        curves[run] = {}
        for metric in METRICS:
            array = curve_array(records, run, metric, cases, seeds, config.rounds)
            arrays[(run, metric)] = array
            curves[run][metric] = [summarize(array[i]) for i in range(config.rounds + 1)]
    comparisons = []
    for a, b, why in COMPARISONS:
        if a not in runs or b not in runs:
            continue
        for metric in TESTED_METRICS:
            last_a, last_b = _patient_means(arrays[(a, metric)][-1]), _patient_means(arrays[(b, metric)][-1])
            auc_a = _patient_means(arrays[(a, metric)][1:].mean(axis=0))
            auc_b = _patient_means(arrays[(b, metric)][1:].mean(axis=0))
            comparisons.append({"a": a, "b": b, "why": why, "metric": metric,
                                "after_last_round": paired_test(last_a, last_b), "curve_mean": paired_test(auc_a, auc_b)})
    return {
        "cases": cases,
        "slices": slices,
        "curves": curves,
        "comparisons": comparisons,
        "suggest_vs_random": _suggest_vs_random(arrays, cases, slices, runs),
        "acceptance": _acceptance(records, runs),
        "costs": _costs(records, runs),
    }


def _suggest_vs_random(arrays: dict, cases: Sequence[str], slices: Sequence[int], runs: Sequence[str]) -> dict | None:
    if "suggest/active" not in runs or "random/active" not in runs:
        return None
    suggest = _patient_means(arrays[("suggest/active", "WT")])  # (rounds + 1, cases)
    random = _patient_means(arrays[("random/active", "WT")])
    most = slices[-1]
    per_case = []
    for index, case in enumerate(cases):
        bar = float(random[-1, index])
        needed = slices_needed(suggest[:, index], slices, bar)
        per_case.append({"case": case, "random_at_most": round(bar, 5), "suggest_needs": needed,
                         "suggest_at_most": round(float(suggest[-1, index]), 5)})
    pooled_bar = float(np.nanmean(random[-1]))
    pooled_needed = slices_needed(np.nanmean(suggest, axis=1), slices, pooled_bar)
    within = [p for p in per_case if p["suggest_needs"] is not None and p["suggest_needs"] <= (1 - FEWER_SLICES) * most]
    needed = [p["suggest_needs"] for p in per_case if p["suggest_needs"] is not None]
    return {
        "most_slices": most,
        "target_slices": (1 - FEWER_SLICES) * most,
        "per_case": per_case,
        "cases_reaching_with_30pct_fewer": len(within),
        "cases": len(per_case),
        "median_slices_needed": float(np.median(needed)) if len(needed) == len(per_case) and needed else None,
        "pooled": {"random_at_most": round(pooled_bar, 5), "suggest_needs": pooled_needed},
    }


def _acceptance(records: Sequence[dict], runs: Sequence[str]) -> dict[str, Any]:
    """Versions the guard accepted, and for the rejected ones the rest WT they would have given (change)."""
    out = {}
    for run in runs:
        decided = [r2["accepted"] for r in records if r["run"] == run for r2 in r["rounds"][1:]
                   if r2.get("accepted") is not None]
        cost = [r2["rejected_rest"]["dice"]["WT"] - r2["dice"]["WT"] for r in records if r["run"] == run
                for r2 in r["rounds"][1:] if r2.get("rejected_rest")]
        out[run] = {"rounds": len(decided), "accepted": int(sum(decided)),
                    "rejected_wt_change": round(float(np.mean(cost)), 5) if cost else None} if decided else None
    return out


def _costs(records: Sequence[dict], runs: Sequence[str]) -> dict[str, Any]:
    out = {}
    for run in runs:
        rounds = [r2 for r in records if r["run"] == run for r2 in r["rounds"][1:]]
        out[run] = {key: (round(float(np.mean(values)), 3) if values else None)
                    for key in ("adapt_s", "segment_s", "passes")
                    for values in [[r2[key] for r2 in rounds if r2.get(key) is not None]]}
    return out


def analyse(results: dict[str, Any], config: EffortConfig) -> dict[str, Any]:
    """The synthetic part's analysis and, when run, the real case's."""
    synthetic = analyse_protocol(results["synthetic"]["records"], config, config.runs, config.repeat_seeds())
    real = results.get("real") or {}
    out: dict[str, Any] = {"synthetic": synthetic}
    if real.get("available"):
        runs = config.real_runs or config.runs
        out["real"] = analyse_protocol(real["protocol"], config, runs, config.repeat_seeds(config.real_seeds))
        out["real"]["targets"] = _targets(real)
    return out


def _targets(real: dict[str, Any]) -> dict[str, Any]:
    """Per rule: rest WT after the target slices (accepted or not), and the unlabelled cases before/after."""
    out: dict[str, Any] = {}
    for rule in sorted({t["rule"] for t in real["targets"]}):
        rows = [t for t in real["targets"] if t["rule"] == rule]
        wt = [t["rest"]["dice"]["WT"] for t in rows]
        baseline = [t["baseline_rest"]["dice"]["WT"] for t in rows]
        used = [t["rest"]["dice"]["WT"] if t["status"] != "rejected" else t["baseline_rest"]["dice"]["WT"]
                for t in rows]
        out[rule] = {
            "seeds": len(rows),
            "rest_WT_before": round(float(np.mean(baseline)), 5),
            "rest_WT_after": round(float(np.mean(wt)), 5),
            "rest_WT_after_min": round(float(np.min(wt)), 5),
            "rest_WT_with_guard": round(float(np.mean(used)), 5),
            "accepted": sum(t["status"] != "rejected" for t in rows),
            "unlabelled": {name: {key: round(float(np.mean([t["unlabelled"][name][key] for t in rows])), 4)
                                  for key in rows[0]["unlabelled"][name]}
                           for name in rows[0]["unlabelled"]},
        }
    return out
