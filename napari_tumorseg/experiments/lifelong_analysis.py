"""Forgetting measures of the lifelong runs, and their summaries over seeds.

Notation: ``R[b][m]`` is the Dice on the test set of modality m after batch
b (b = 1..N), for a region (WT is the primary one: with T2 or FLAIR alone the
enhancing tumour, which shows on T1c, is barely visible).

- ``final``: R[N][t2], R[N][flair] and their average.
- ``backward_transfer`` (Lopez-Paz & Ranzato 2017): the mean over batches
  b < N of R[N][m_b] - R[b][m_b], m_b the modality batch b trained on;
  negative means what a batch taught was later lost.
- ``drop_on_switch``: the mean over batches b >= 2 of R[b-1][o_b] - R[b][o_b],
  o_b the modality batch b did not train on: how much the other modality's
  Dice falls while the network learns this one (positive = forgetting).
- ``curve_average``: the mean over batches of the average of both test sets
  (the area under the learning curve: faster and steadier learning is higher).

The joint setting has no modality per batch; only ``final`` and
``curve_average`` apply to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .common import paired_test, summarize
from .lifelong import STREAM_MODALITIES, LifelongConfig

REGIONS: tuple[str, ...] = ("WT", "TC", "ET", "mean")
PRIMARY_REGION = "WT"
MEASURES: tuple[str, ...] = ("final_t2", "final_flair", "final_average", "backward_transfer", "drop_on_switch",
                             "curve_average")


def other_modality(modality: str) -> str:
    return STREAM_MODALITIES[1 - STREAM_MODALITIES.index(modality)]


def run_measures(curve: Sequence[dict[str, Any]], region: str) -> dict[str, float | None]:
    """The measures of one run's curve for one region (None where they do not apply).

    Args:
        curve: per batch, ``modality`` trained ("t2", "flair" or "mixed") and the Dice of
            ``t2`` and ``flair`` test sets by region.
        region: "WT", "TC", "ET" or "mean".
    """
    last = curve[-1]
    out: dict[str, float | None] = {
        "final_t2": last["t2"][region],
        "final_flair": last["flair"][region],
        "final_average": (last["t2"][region] + last["flair"][region]) / 2,
        "curve_average": float(np.mean([(b["t2"][region] + b["flair"][region]) / 2 for b in curve])),
        "backward_transfer": None,
        "drop_on_switch": None,
    }
    if all(b["modality"] in STREAM_MODALITIES for b in curve):
        if len(curve) > 1:
            out["backward_transfer"] = float(np.mean(
                [last[b["modality"]][region] - b[b["modality"]][region] for b in curve[:-1]]))
            out["drop_on_switch"] = float(np.mean(
                [curve[i - 1][other_modality(curve[i]["modality"])][region]
                 - curve[i][other_modality(curve[i]["modality"])][region] for i in range(1, len(curve))]))
    return out


def _over_seeds(values: Sequence[float | None]) -> dict[str, Any]:
    finite = [np.nan if v is None else float(v) for v in values]
    stats = summarize(np.asarray(finite, dtype=np.float64)[None, :])
    return {"mean": stats["mean"], "std": stats["std_seeds"], "n": stats["n_seeds"], "values": finite}


def analyse(raw: dict[str, Any], config: LifelongConfig) -> dict[str, Any]:
    """Measures per run, their mean ± std over seeds per (setting, arch), Dy-CNN vs U-Net paired over seeds.

    Args:
        raw: what ``run_lifelong`` returned.
        config: the experiment's settings.
    """
    seeds = sorted({r["seed"] for r in raw["runs"]})
    measures = {(r["setting"], r["arch"], r["seed"]): {reg: run_measures(r["curve"], reg) for reg in REGIONS}
                for r in raw["runs"]}
    summary: dict[str, Any] = {}
    for setting in config.settings:
        summary[setting] = {}
        for arch in config.archs:
            summary[setting][arch] = {
                region: {m: _over_seeds([measures[(setting, arch, s)][region][m] for s in seeds]) for m in MEASURES}
                for region in REGIONS}
    comparisons = []
    if {"unet", "dycnn"} <= set(config.archs):
        for setting in config.settings:
            for measure in ("final_average", "backward_transfer", "drop_on_switch", "curve_average"):
                dy = [measures[(setting, "dycnn", s)][PRIMARY_REGION][measure] for s in seeds]
                static = [measures[(setting, "unet", s)][PRIMARY_REGION][measure] for s in seeds]
                if any(v is None for v in dy + static):
                    continue
                comparisons.append({"setting": setting, "measure": measure, "region": PRIMARY_REGION,
                                    "a": "dycnn", "b": "unet", **paired_test(dy, static)})
    per_run = [{"setting": s, "arch": a, "seed": seed, **{reg: measures[(s, a, seed)][reg] for reg in REGIONS}}
               for (s, a, seed) in measures]
    return {"summary": summary, "comparisons": comparisons, "per_run": per_run, "primary_region": PRIMARY_REGION}
