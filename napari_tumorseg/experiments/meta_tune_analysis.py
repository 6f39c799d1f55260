"""From the meta-tune experiment's raw records to summaries, paired tests and the table of paper 000.

Each adapted model has Dice per set ("own", "held_out", "anchor") and region
(WT, TC, ET). For a (k, method, set, region) the values form an array
``(patients, seeds)`` (the baseline has one column: it has no random draws),
summarised by ``common.summarize``. The change against the baseline, per
patient, is the gain ("own", "held_out") or the forgetting ("anchor").

Paired tests compare each active variant with naive and with passive on the
same patients (each patient's mean over seeds), two-sided Wilcoxon
signed-rank. Many tests are reported (ks x sets x regions); the one the
paper's claim rests on is ``k = main_k``, "own", ET; read the others with the
number of comparisons in mind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .common import paired_test, summarize
from .meta_tune import SETS, MetaTuneConfig

REGIONS_REPORTED: tuple[str, ...] = ("ET", "WT", "TC")
# Paper 000, table (b): enhancing-tumour Dice (± std) on brain metastasis; baseline is on BraTS (glioma).
PAPER_TABLE_B: dict[str, dict[str, float | None]] = {
    "baseline": {"mean": 0.66, "std": None},
    "naive": {"mean": 0.33, "std": 0.3413},
    "passive": {"mean": 0.41, "std": 0.2752},
    "active": {"mean": 0.45, "std": 0.2317},
}
COMPARATORS: tuple[str, ...] = ("naive", "passive")


def _patients(records: Sequence[dict]) -> list[int]:
    return sorted({r["patient"] for r in records if r["method"] == "baseline"})


def metric_array(
    records: Sequence[dict], method: str, k: int, set_name: str, region: str, patients: Sequence[int],
    seeds: Sequence[int],
) -> np.ndarray:
    """``(patients, seeds)`` Dice of a method (``(patients, 1)`` for the baseline); NaN where not run."""
    if method == "baseline":
        by_patient = {r["patient"]: r[set_name][region] for r in records if r["method"] == "baseline"}
        return np.array([[by_patient.get(p, np.nan)] for p in patients], dtype=np.float64)
    values = {(r["patient"], r["seed"]): r[set_name][region] for r in records if r["method"] == method and r["k"] == k}
    return np.array([[values.get((p, s), np.nan) for s in seeds] for p in patients], dtype=np.float64)


def analyse(raw: dict[str, Any], config: MetaTuneConfig) -> dict[str, Any]:
    """Summaries, changes against the baseline, paired tests, table (b) and costs.

    Args:
        raw: what ``run_meta_tune`` returned.
        config: the experiment's settings.
    """
    records = raw["records"]
    all_patients = _patients(records)
    summary: dict[str, Any] = {}
    change: dict[str, Any] = {}
    tests: list[dict[str, Any]] = []
    for k in config.ks:
        patients = all_patients[: config.patients_for(k)]
        seeds = config.seeds_for(k)
        summary[str(k)], change[str(k)] = {}, {}
        for method in config.methods:
            summary[str(k)][method], change[str(k)][method] = {}, {}
            for set_name in SETS:
                summary[str(k)][method][set_name], change[str(k)][method][set_name] = {}, {}
                for region in (*REGIONS_REPORTED, "mean"):
                    values = metric_array(records, method, k, set_name, region, patients, seeds)
                    base = metric_array(records, "baseline", k, set_name, region, patients, seeds)
                    summary[str(k)][method][set_name][region] = summarize(values)
                    change[str(k)][method][set_name][region] = summarize(values - base)
        for active in [m for m in config.methods if m.startswith("active")]:
            for other in [m for m in COMPARATORS if m in config.methods]:
                for set_name in SETS:
                    for region in ("ET", "WT"):
                        a = metric_array(records, active, k, set_name, region, patients, seeds)
                        b = metric_array(records, other, k, set_name, region, patients, seeds)
                        result = paired_test(np.nanmean(a, axis=1), np.nanmean(b, axis=1))
                        tests.append({"k": k, "a": active, "b": other, "set": set_name, "region": region,
                                      "primary": k == config.main_k and set_name == "own" and region == "ET",
                                      **result})
    return {
        "summary": summary,
        "change": change,
        "tests": tests,
        "table_b": table_b(summary[str(config.main_k)], config),
        "costs": _costs(records, config),
    }


def table_b(main: dict[str, Any], config: MetaTuneConfig) -> list[dict[str, Any]]:
    """Rows of the paper's table (b) at ``main_k``: ET Dice on metastasis (own and held-out), anchor ET, paper value."""
    rows = []
    for method in config.methods:
        rows.append({
            "method": method,
            "own_ET": main[method]["own"]["ET"],
            "held_out_ET": main[method]["held_out"]["ET"],
            "anchor_ET": main[method]["anchor"]["ET"],
            "own_WT": main[method]["own"]["WT"],
            "paper_ET": PAPER_TABLE_B.get(method.removesuffix("-fo") if method != "passive-fo" else "passive"),
        })
    return rows


def _costs(records: Sequence[dict], config: MetaTuneConfig) -> dict[str, Any]:
    """Optimisation steps (the budget each method was given) and runs of each method; times are in "timings"."""
    return {
        method: {
            "steps": config.adapt_config(method, config.seed).steps,
            "runs": sum(1 for r in records if r["method"] == method),
        }
        for method in config.methods[1:]
    }
