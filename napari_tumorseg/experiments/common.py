"""What both experiments share: seed ranges, statistics, torch's threads, and result files.

Seeds. Every synthetic case is ``make_case(domain, seed)``; the experiments
take their cases from ranges that no other command uses (training, validation,
evaluation, the adaptation's anchor and replay sets, the adaptation
benchmark), so no experiment ever scores a case a model was trained on.
:func:`check_seeds` enforces it and the tests check :data:`RESERVED_SEEDS`
against the modules that own those ranges.

Statistics. A metric of a method is an array ``(patients, seeds)``:
:func:`summarize` gives its mean, the standard deviation over patients (of
each patient's mean over seeds) and over seeds (of each seed's mean over
patients); :func:`paired_test` is the two-sided Wilcoxon signed-rank test of
two methods on the same patients (each patient's mean over seeds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Seeds other commands own (domain -> ranges), copied here because the CLI that
# defines some of them sits above this layer; tests/test_experiments_common.py
# checks the copy against cli/train.py, adapt/anchors.py and adapt/bench.py.
RESERVED_SEEDS: dict[str, tuple[range, ...]] = {
    # `tumorseg train` draws training seeds from the low range (default 0:64) and
    # validates on 9000:9002; anchor 5001-5004 and replay 6001-6032 lie inside it.
    "glioma": (range(0, 10000), range(10000, 10020)),
    # held-out evaluation of `tumorseg evaluate`; 7001 is the adaptation benchmark's case.
    "metastasis": (range(20000, 20020), range(7001, 7002)),
}

# The experiments' own ranges (first seed of each; cases that do not qualify are skipped).
META_TUNE_PATIENT_SEEDS = 30000  # metastasis patients whose corrections adapt the model
META_TUNE_HELD_OUT_SEEDS = 31000  # metastasis patients never adapted on
LIFELONG_TRAIN_SEEDS = 40000  # glioma patients of the lifelong stream
LIFELONG_TEST_SEEDS = 41000  # glioma patients of its T2-only and FLAIR-only test sets
STAND_IN_PRETRAIN_SEEDS = 42000  # glioma cases that pretrain the --quick stand-in model
# The radiologist's-curve experiment (``effort``): the adaptation defaults were tuned on the first
# range and are reported on the second, which no default or earlier experiment has seen.
EFFORT_TUNE_SEEDS = 33000  # metastasis patients the defaults were tuned on
EFFORT_PATIENT_SEEDS = 34000  # metastasis patients the effort experiment reports on
SEQUENCE_SEEDS = 35000  # metastasis patients adapted on one after another (the memory's measurement)
# scripts/absent_class_sweep.py: the adaptation loss's absent-class weight was chosen on the glioma and
# metastasis cases of the first range and checked on the second (glioma seeds from +500 are the next cases).
ABSENT_CLASS_TUNE_SEEDS = 36000
ABSENT_CLASS_CHECK_SEEDS = 37000


def check_seeds(groups: Mapping[str, tuple[str, Sequence[int]]]) -> None:
    """Raise ValueError if two groups share a (domain, seed) or a group uses a reserved seed.

    Args:
        groups: name -> (domain, seeds), e.g. ``{"patients": ("metastasis", [30000, ...])}``.
    """
    owner: dict[tuple[str, int], str] = {}
    for name, (domain, seeds) in groups.items():
        for seed in seeds:
            if any(seed in r for r in RESERVED_SEEDS.get(domain, ())):
                raise ValueError(f"{name}: {domain} seed {seed} is reserved for training or evaluation")
            key = (domain, int(seed))
            if key in owner:
                raise ValueError(f"{domain} seed {seed} is in both {owner[key]} and {name}")
            owner[key] = name


# --- statistics -------------------------------------------------------------------------------


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def summarize(values: np.ndarray | Sequence[Sequence[float]]) -> dict[str, Any]:
    """Mean and spread of a metric measured per (patient, seed).

    Args:
        values: ``(patients, seeds)``; NaN marks a missing measurement.

    Returns:
        ``mean`` (over everything), ``std_patients`` (sample std, ddof 1, of
        the patients' means over seeds), ``std_seeds`` (sample std of the
        seeds' means over patients), ``n_patients``, ``n_seeds``; a spread of
        a single value is None.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    per_patient = _nanmean(array, axis=1)
    per_seed = _nanmean(array, axis=0)
    return {
        "mean": _finite_or_none(float(np.nanmean(array))) if np.isfinite(array).any() else None,
        "std_patients": _sample_std(per_patient),
        "std_seeds": _sample_std(per_seed),
        "n_patients": int(np.isfinite(per_patient).sum()),
        "n_seeds": int(np.isfinite(per_seed).sum()),
    }


def _nanmean(array: np.ndarray, axis: int) -> np.ndarray:
    counts = np.isfinite(array).sum(axis=axis)
    sums = np.where(np.isfinite(array), array, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _sample_std(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else None


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank test of paired measurements ``a`` against ``b``.

    Pairs with a NaN are dropped. Zero differences are dropped before ranking
    (Wilcoxon's original treatment); when every difference is zero there is
    nothing to test and the p-value is 1.

    Args:
        a: one value per patient for the first method.
        b: the same patients, second method.

    Returns:
        ``n`` pairs, ``mean_difference`` and ``median_difference`` (a - b),
        ``a_better`` / ``b_better`` counts, ``statistic``, ``p_value`` and ``test``.
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    difference = x[keep] - y[keep]
    result: dict[str, Any] = {
        "test": "Wilcoxon signed-rank, two-sided, zero differences dropped",
        "n": int(difference.size),
        "mean_difference": _finite_or_none(float(difference.mean())) if difference.size else None,
        "median_difference": _finite_or_none(float(np.median(difference))) if difference.size else None,
        "a_better": int((difference > 0).sum()),
        "b_better": int((difference < 0).sum()),
        "statistic": None,
        "p_value": None,
    }
    if difference.size == 0:
        return result
    if not np.any(difference != 0):
        result["p_value"] = 1.0
        return result
    test = wilcoxon(difference, zero_method="wilcox", alternative="two-sided")
    result["statistic"] = _finite_or_none(float(test.statistic))
    result["p_value"] = _finite_or_none(float(test.pvalue))
    return result


# --- threads, device --------------------------------------------------------------------


def setup_torch(threads: int | None, device: str = "auto") -> Any:
    """Set torch's CPU threads (default: the usable cores, at most 8) and choose the device.

    Fewer threads than cores would leave the CPU idle; more than 8 gain little
    for networks this small and make results depend on a bigger reduction tree.

    Args:
        threads: torch CPU threads, or None for the default.
        device: "auto" (CUDA, then MPS, then the CPU), "cpu", "cuda", ...

    Returns:
        The torch.device the experiment runs on.
    """
    import torch

    from ..inference.devices import choose_device

    from ..machine import usable_cores

    torch.set_num_threads(int(threads) if threads else min(usable_cores(), 8))
    return choose_device(device)


# --- result files ---------------------------------------------------------------------------


def json_ready(value: Any) -> Any:
    """Numbers, arrays and tuples as plain JSON; NaN and infinities as null (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite_or_none(float(value))
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented, strictly valid JSON (see :func:`json_ready`), written atomically."""
    from ..io.atomic import atomic_write_text

    text = json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text, overwrite=True, make_folder=True)


def without_timings(results: Any) -> Any:
    """A copy of a results document without the fields that depend on the clock or the machine.

    Two runs with the same settings, interrupted or not, must agree on
    everything else (the determinism tests compare these).
    """
    volatile = {"timings", "machine", "seconds", "wall_time_s", "created",
                # how much came from a journal: differs between a resumed and an uninterrupted run
                "adaptations_from_journal", "runs_from_journal"}
    if isinstance(results, Mapping):
        return {k: without_timings(v) for k, v in results.items() if k not in volatile}
    if isinstance(results, list):
        return [without_timings(v) for v in results]
    return results


def format_mean_std(summary: Mapping[str, Any], digits: int = 3, spread: str = "std_patients") -> str:
    """``0.452 ± 0.231`` from a :func:`summarize` dict (``n/a`` where there is no value)."""
    mean = summary.get("mean")
    if mean is None:
        return "n/a"
    std = summary.get(spread)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_p(p: float | None) -> str:
    """A p-value for a table: 3 significant digits, or ``<0.001``."""
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def seed_list(base: int, count: int) -> list[int]:
    """``count`` consecutive seeds from ``base`` (the experiments' repeat seeds)."""
    return [int(base) + i for i in range(int(count))]
