"""Adapting a loaded model as the GUI and ``tumorseg adapt`` do: source sets, device, lineage, memory.

``adapt_loaded_model`` wraps one :func:`run.run_adaptation` with what lives
around it:

- the source anchor and replay sets (synthetic glioma, built once and cached);
- the device: the segmenter's (a GPU adapts in about a second); out of
  memory there, the run starts again on the CPU with a one-line warning —
  nothing was written yet, so starting again is safe;
- the lineage: the original model the parent descends from and its anchor
  Dice, for the guard's cumulative budget;
- the memory of the user's past corrections (``memory``): the other cases'
  corrections are replayed, and this run's cases are added to it once the
  version is stored. A crash in between only means the memory misses this
  case until its next adaptation: the corrections themselves are in the
  session folder.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Generator
from typing import Any

from ..jobs import CancelFlag, Progress
from ..models.registry import PRETRAINED, ModelRegistry
from .config import AdaptConfig
from .continual import require_dycnn
from .corrections import Corrections
from .eval_sets import EvalSet, anchor_key, score_set
from .guard import Lineage
from .run import AdaptationOutcome, run_adaptation
from .sampling import SlicePool


def adapt_loaded_model(
    loaded: Any,
    corrections: Corrections,
    config: AdaptConfig,
    *,
    registry: ModelRegistry | None,
    parent_id: str | None,
    anchor_shape: tuple[int, int, int] | None = None,
    force: bool = False,
    auto_activate: bool = True,
    cancel: CancelFlag = None,
    device: str | None = "cpu",
    memory: Any = True,
) -> Generator[Progress, None, AdaptationOutcome]:
    """Build (or reuse) the source sets, then :func:`run_adaptation` on ``device``, with memory and lineage.

    What "Adapt model" and ``tumorseg adapt`` both do. The source sets are
    synthetic glioma slices, cached after the first build, which takes a while:
    it reports progress and can be cancelled like the rest.

    Args:
        loaded: a ``models.checkpoint`` loaded model (its ``model``, ``config`` and ``preprocessing``), on the CPU.
        anchor_shape: grid of the synthetic source cases (default: BraTS size; tests use a small one).
        device: where to adapt: "auto" (CUDA, MPS, else the CPU), "cpu", "cuda", "cuda:N", "mps"
            (the segmenter's choice). Out of memory there, the run starts again on the CPU.
        memory: the memory of past corrections: True for the one beside ``registry``, a
            ``CorrectionMemory``, or None / False for none.
        corrections, config, registry, parent_id, force, auto_activate, cancel: as :func:`run_adaptation`.
    """
    from ..inference.devices import choose_device
    from .anchors import anchor_set_steps, calibration_sets_steps, replay_pools_steps

    if config.method == "dycnn":
        require_dycnn(loaded.model)  # fail before the source sets are built
    target = choose_device(device)
    anchor = yield from anchor_set_steps(loaded.config, loaded.preprocessing, shape=anchor_shape, cancel=cancel)
    replay = yield from replay_pools_steps(
        config.replay, loaded.config, loaded.preprocessing, shape=anchor_shape, cancel=cancel, faint=config.replay_faint
    )
    calibration = yield from calibration_sets_steps(
        config, loaded.config, loaded.preprocessing, shape=anchor_shape, cancel=cancel)
    store = _memory_of(memory, registry)
    memory_pools = _memory_pools(store, corrections, loaded.config.context, config)
    lineage = lineage_of(registry, parent_id, anchor)

    def run_on(where: Any) -> Generator[Progress, None, AdaptationOutcome]:
        model = loaded.model if where.type == "cpu" else copy.deepcopy(loaded.model).to(where)
        return run_adaptation(
            model, corrections, config, anchor=anchor, replay_pools=replay, registry=registry,
            parent_id=parent_id, preprocessing=loaded.preprocessing, force=force, auto_activate=auto_activate,
            cancel=cancel, memory_pools=memory_pools, lineage=lineage, calibration=calibration,
        )

    try:
        outcome = yield from run_on(target)
    except Exception as error:
        if target.type == "cpu" or not is_out_of_memory(error):
            raise
        _release(target)
        warnings.warn(f"out of memory on {target} while adapting; adapting on the CPU instead", RuntimeWarning,
                      stacklevel=2)
        outcome = yield from run_on(_cpu())
        outcome.report.device = f"cpu (out of memory on {target})"
    if store is not None:
        _remember(store, corrections, loaded.config.context)
    return outcome


def is_out_of_memory(error: BaseException) -> bool:
    """A device (or host) allocation failure, whatever the backend calls it."""
    import torch

    kinds = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError) if t)
    return isinstance(error, kinds) or (isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def _cpu() -> Any:
    import torch

    return torch.device("cpu")


def _release(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()


def _memory_of(memory: Any, registry: ModelRegistry | None) -> Any:
    from .memory import CorrectionMemory

    if memory is True:
        return CorrectionMemory.beside(registry.root) if registry is not None else None
    return memory or None


def _memory_pools(store: Any, corrections: Corrections, context: int, config: AdaptConfig) -> list[SlicePool]:
    """The other cases' kept corrections for this network's input layout (none when memory is off)."""
    from .memory import layout_of

    if store is None or config.memory_per_step <= 0:
        return []
    layout = layout_of(corrections.cases[0].inputs, context)
    return store.pools(layout, exclude={case.case_key for case in corrections.cases})


def _remember(store: Any, corrections: Corrections, context: int) -> None:
    """Add this run's cases to the memory; a failure to write costs a warning, never the version."""
    from ..errors import WriteError

    for case in corrections.cases:
        try:
            store.put(case, context)
        except (OSError, WriteError) as error:
            warnings.warn(f"could not keep the corrections of {case.case_name} for replay: {error}",
                          RuntimeWarning, stacklevel=3)


def lineage_of(registry: ModelRegistry | None, parent_id: str | None, anchor: EvalSet) -> Lineage:
    """The original model ``parent_id`` descends from, and its anchor Dice, mean and per region (the budget).

    A shipped model (or a version without lineage) is its own original: the
    run then compares with the parent's score before. Otherwise the parent's
    recorded lineage gives the original and its score; when that score was on
    another anchor set, the original is loaded and scored again.
    """
    key = anchor_key(anchor)
    if registry is None or parent_id is None:
        return Lineage(parent_id, None, key)
    try:
        parent = registry.get(parent_id)
    except Exception:  # noqa: BLE001 - an unknown or corrupt parent: compare with the parent alone
        return Lineage(parent_id, None, key)
    info = parent.metrics.get("lineage") if isinstance(parent.metrics, dict) else None
    if parent.status == PRETRAINED or not isinstance(info, dict) or not info.get("root"):
        return Lineage(parent_id, None, key)
    root = str(info["root"])
    value, regions = info.get("root_anchor"), info.get("root_anchor_regions")
    if info.get("anchor_key") == key and isinstance(value, (int, float)):
        if isinstance(regions, dict) and all(isinstance(v, (int, float)) for v in regions.values()):
            return Lineage(root, float(value), key, {str(k): float(v) for k, v in regions.items()})
        return Lineage(root, float(value), key)  # kept before the per-region budget: the mean's alone
    try:
        original, _ = registry.load(root)
        return Lineage.of_original(root, score_set(original.model, anchor), anchor)
    except Exception:  # noqa: BLE001 - the original is gone: the parent's score is the best reference left
        return Lineage(parent_id, None, key)
