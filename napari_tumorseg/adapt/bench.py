"""The speed benchmark of adaptation: 5 corrected slices, adapted and guarded, timed.

The setting of the speed target: a BraTS-size synthetic metastasis case, the
reference mask as the "corrections" on ``slices`` tumour slices, the current
model (the active version, else a freshly built base-16 U-Net: the time does
not depend on the weights), the default hyper-parameters of the method, the
guard on the anchor set and on held-out slices of the case, and the new
version written to a throw-away registry (the user's is never touched).

The anchor set is built once and cached (see ``anchors``); the figure that
counts is the warm one, ``adapt_and_guard_s``; the cold build is reported
separately as ``anchor_build_s``.

``repeats`` runs the same adaptation again in the same process. On a GPU the
first run pays for every kernel and convolution shape it meets for the first
time (CUDA loads kernels lazily; cuDNN picks an algorithm per shape), as the
first "Adapt model" of a session does; the later runs are what each
adaptation after it costs. Each run is listed in ``runs``; the top-level
figures are the first run's.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from torch import nn

from .config import AdaptConfig, default_config

BENCH_CASE_SEED = 7001  # a metastasis seed no training or evaluation command uses


def _default_model(method: str) -> tuple[nn.Module, str]:
    """The active version (for dycnn: the active or a shipped Dy-CNN), else a new base-16 network."""
    import torch

    from ..models import build_model
    from ..models.registry import CORRUPT, ModelRegistry

    registry = ModelRegistry()
    wanted = "dycnn" if method == "dycnn" else None
    candidates = [v for v in registry.list() if v.status != CORRUPT and (wanted is None or v.arch == wanted)]
    candidates.sort(key=lambda v: not v.active)
    if candidates:
        return registry.load(candidates[0].id)[0].model, f"version {candidates[0].id}"
    torch.manual_seed(0)
    arch = wanted or "unet"
    return build_model(arch, base_width=16, **({"temperature": 1.0} if arch == "dycnn" else {})), f"new base-16 {arch}"


def benchmark_adaptation(
    method: str = "active",
    *,
    model: nn.Module | None = None,
    slices: int = 5,
    threads: int | None = 2,
    shape: tuple[int, int, int] | None = None,
    cache_dir: Any = True,
    config: AdaptConfig | None = None,
    device: str | None = "cpu",
    repeats: int = 1,
    **overrides: Any,
) -> dict[str, Any]:
    """Time one adaptation run end to end; returns a JSON-ready dict.

    Args:
        method: the adaptation method.
        model: the network to adapt (default: the registry's active version;
            for dycnn the active or a shipped Dy-CNN; else a new base-16 network).
        slices: corrected slices.
        threads: torch threads (None leaves torch's setting).
        shape: the synthetic grid (default: BraTS 1 mm, 155x240x240).
        cache_dir: the anchor cache folder (True: the user's cache).
        config: the full hyper-parameters (default: the method's, with ``overrides``).
        device: where to adapt ("auto", "cpu", "cuda", ...), as ``tumorseg adapt --device``.
        repeats: adaptations timed one after the other in this process (the first is the cold one).
        overrides: AdaptConfig fields (steps, crop, first_order, replay...).
    """
    import torch

    from ..machine import describe_machine, load_average
    from .anchors import anchor_set, calibration_sets, replay_pools
    from .training import warm_up_optimizers

    if threads:
        torch.set_num_threads(int(threads))
    load_before = load_average()
    config = config or default_config(method, **overrides)
    method = config.method
    source = "given"
    if model is None:
        model, source = _default_model(method)
    timings: dict[str, float] = {}
    picks, corrections = _bench_corrections(model, config, slices, shape, timings)

    tick = time.perf_counter()
    anchor = anchor_set(model.config, shape=shape, cache_dir=cache_dir)
    replay = replay_pools(config.replay, model.config, shape=shape, cache_dir=cache_dir, faint=config.replay_faint)
    calibration = calibration_sets(config, model.config, shape=shape, cache_dir=cache_dir)
    timings["anchor_build_s"] = time.perf_counter() - tick

    # Once per process, as the dock does when it is built: not part of an adaptation the user waits for.
    tick = time.perf_counter()
    warm_up_optimizers()
    timings["torch_optimizer_import_s"] = time.perf_counter() - tick
    target, report, runs = _repeated_adaptations(model, corrections, config, (anchor, replay, calibration), device,
                                                 repeats)
    timings.update({k: v for k, v in runs[0].items() if k != "phases"})
    return {
        # Other work on the machine slows every figure here; the load before and after says how busy it was.
        "machine": {**describe_machine(), "load_average_before": load_before},
        "model": {"source": source, "arch": model.config.arch, "base_width": model.config.base_width},
        "method": method,
        "device": str(target),
        "precision": report.details.get("precision"),  # "auto" resolved: the arithmetic the passes ran in
        "corrected_slices": len(picks),
        "slice_size": list(corrections.cases[0].inputs.shape[2:]),
        "held_out_slices": len(corrections.cases[0].reference_indices),
        "anchor_slices": anchor.num_slices,
        "hyperparameters": config.to_dict(),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "phases": report.timings,
        "dice": {name: scores.to_dict() for name, scores in report.dice.items()},
        "guard": report.reason,
        "label_free": report.label_free,
        "passes": report.details.get("passes"),
        "runs": runs,
    }


def _bench_corrections(model: nn.Module, config: AdaptConfig, slices: int, shape: tuple[int, int, int] | None,
                       timings: dict[str, float]) -> tuple[list[int], Any]:
    """The benchmark's case (a synthetic metastasis) and its corrections: ``slices`` tumour slices given the truth."""
    from ..synth.generate import make_case
    from .corrections import Corrections, case_corrections, slices_with_tumour
    from .labelfree import DEFAULT_UNLABELLED

    tick = time.perf_counter()
    case = make_case("metastasis", BENCH_CASE_SEED, **({"shape": shape} if shape else {}))
    timings["make_case_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    assert case.label is not None
    picks = slices_with_tumour(case.label, limit=slices)
    corrections = Corrections.of(
        case_corrections(case, case.label, picks, model_config=model.config, reference_slices=config.reference_slices,
                         unlabelled_slices=DEFAULT_UNLABELLED)
    )
    timings["prepare_corrections_s"] = time.perf_counter() - tick
    return picks, corrections


def _repeated_adaptations(model: nn.Module, corrections: Any, config: AdaptConfig, sources: tuple[Any, Any, Any],
                          device: str | None, repeats: int) -> tuple[Any, Any, list[dict[str, Any]]]:
    """``repeats`` timed adaptations one after another: the device, the first one's report, and each one's figures.

    ``sources``: the anchor set, the replay pools and the absent-class correction's calibration sets.
    """
    runs = []
    for index in range(max(1, repeats)):
        timings: dict[str, float] = {}
        target, outcome = _timed_adaptation(model, corrections, config, sources, device, timings)
        runs.append({**{k: round(v, 3) for k, v in timings.items()}, "phases": outcome.report.timings})
        if index == 0:
            first = outcome.report
    return target, first, runs


def _timed_adaptation(model: nn.Module, corrections: Any, config: AdaptConfig, sources: tuple[Any, Any, Any],
                      device: str | None, timings: dict[str, float]) -> tuple[Any, Any]:
    """One adaptation on ``device`` into a throw-away registry; its wall and CPU seconds go into ``timings``."""
    import torch

    from ..inference.devices import choose_device
    from ..jobs import drive
    from ..models.registry import ModelRegistry
    from .run import run_adaptation
    from .training import model_device

    anchor, replay, calibration = sources
    target = choose_device(device)
    if target.type != "cpu" and model_device(model) != target:
        import copy

        model = copy.deepcopy(model).to(target)
        warm_up(model, corrections)
    with tempfile.TemporaryDirectory(prefix="tumorseg-bench-") as folder:
        registry = ModelRegistry(folder, pretrained_dirs=[])
        tick, cpu_tick = time.perf_counter(), time.process_time()
        outcome = drive(
            run_adaptation(model, corrections, config, anchor=anchor, replay_pools=replay, registry=registry,
                           calibration=calibration)
        )
        if target.type == "cuda":
            torch.cuda.synchronize()
        timings["adapt_and_guard_s"] = time.perf_counter() - tick
        # CPU seconds of this process: on a busy machine the wall time above mostly measures the
        # other work; with one thread this is close to what the run takes on an idle core.
        timings["adapt_and_guard_cpu_s"] = time.process_time() - cpu_tick
    return target, outcome


def warm_up(model: nn.Module, corrections: Any) -> None:
    """One forward and backward on the device first: CUDA's kernels load lazily (a second or more)."""
    import torch

    from ..models.losses import dice_ce_loss
    from .training import model_device

    case = corrections.cases[0]
    device = model_device(model)
    inputs = torch.from_numpy(case.inputs[:1]).to(device)
    labels = torch.from_numpy(case.labels[:1].astype("int64")).to(device)
    model.requires_grad_(True)  # our copy: a loaded model may come with gradients off
    model.zero_grad(set_to_none=True)
    dice_ce_loss(model(inputs), labels).backward()
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
