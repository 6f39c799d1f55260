"""Adapt a segmenter from a few corrected slices, guard against forgetting, keep every version.

Importing this package is cheap (no torch); the names below load their
module on first use.

    corrections = Corrections.of(case_corrections(case, labels, [70, 75, 80], model_config=loaded.config))
    outcome = drive(run_adaptation(
        loaded.model, corrections, default_config("active"),
        anchor=anchor_set(loaded.config), registry=ModelRegistry(), parent_id=version.id))
    outcome.report.to_json()

Methods (each a long job of ``napari_tumorseg.jobs``: a generator of Progress
that checks a cancel flag): ``naive_finetune``, ``meta_tune`` (passive /
active MAML, paper 000), ``dycnn_continual`` (paper 004). ``run_adaptation``
wraps any of them with scoring before and after, the forgetting guard and the
model registry (``napari_tumorseg.models.registry``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "AdaptConfig": "config",
    "METHODS": "config",
    "default_config": "config",
    "CaseCorrections": "corrections",
    "Corrections": "corrections",
    "case_corrections": "corrections",
    "naive_finetune": "naive",
    "meta_tune": "maml",
    "meta_gradient": "maml",
    "dycnn_continual": "continual",
    "EvalSet": "eval_sets",
    "GuardDecision": "guard",
    "decide": "guard",
    "anchor_set": "anchors",
    "anchor_set_steps": "anchors",
    "replay_pools": "anchors",
    "replay_pools_steps": "anchors",
    "AdaptationReport": "report",
    "AdaptationOutcome": "run",
    "run_adaptation": "run",
    "adapt_loaded_model": "loaded",
    "CorrectionMemory": "memory",
    "label_free_check": "labelfree",
    "benchmark_adaptation": "bench",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
