"""Run an experiment end to end and write its folder: results.json, results.md and the PNG figures.

Both are long jobs (see ``napari_tumorseg.jobs``): generators of Progress
that return the results document, so the CLI drives them with a progress bar
and the tests drive them with tiny settings. Nothing but a journal of
finished units is written until the experiment has finished; a
rerun after a cancel or a crash resumes from that journal.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..io.atomic import atomic_write_text
from ..jobs import Progress
from ..machine import describe_machine
from .common import json_ready, write_json
from .journal import Journal, model_digest
from .lifelong import LifelongConfig, run_lifelong
from .meta_tune import MetaTuneConfig, run_meta_tune

JOURNAL_NAME = ".meta-tune-journal.jsonl"
LIFELONG_JOURNAL_NAME = ".lifelong-journal.jsonl"
EFFORT_JOURNAL_NAME = ".effort-journal.jsonl"


def meta_tune_experiment(
    model: nn.Module,
    config: MetaTuneConfig,
    out: Path,
    *,
    model_description: str,
    command: str,
    device: Any = "cpu",
    cache_dir: Path | None = None,
    anchor_cache: Path | None | bool = True,
    cancel: Any = None,
    resume: bool = True,
    keep_journal: bool = False,
) -> Generator[Progress, None, dict[str, Any]]:
    """The meta-tune experiment; writes ``out``/results.json, results.md, dice_vs_k.png, forgetting_vs_gain.png.

    Args:
        model: the pretrained glioma network.
        config: the experiment's settings.
        out: the output folder.
        model_description: where the model came from (file, card, or the stand-in), for the report.
        command: the command line that reproduces the run.
        device: where to adapt and score.
        cache_dir: prepared-patient cache (None: none).
        anchor_cache: the anchor set's cache (see ``adapt.anchors``).
        cancel: a threading.Event or a callable returning True to stop.
        resume: keep a journal of finished adaptations in ``out`` and reuse a matching one left by
            an interrupted run (deleted once the results are written).
        keep_journal: keep the journal after the results are written (to merge runs that did
            different parts of one experiment, e.g. the k sweep in another process).
    """
    from .meta_tune_analysis import analyse
    from .plots import meta_tune_plots
    from .report import meta_tune_markdown

    started = time.perf_counter()
    machine = describe_machine(device)
    model = model.to(device).eval()
    journal = Journal(Path(out) / JOURNAL_NAME if resume else None, _unit_identity(model, config, device))
    raw = yield from run_meta_tune(model, config, cache_dir=cache_dir, anchor_cache=anchor_cache, cancel=cancel,
                                   journal=journal)
    mean_seconds = {}
    for method in config.methods[1:]:
        seconds = [r["seconds"] for r in raw["records"] if r["method"] == method]
        mean_seconds[method] = round(float(np.mean(seconds)), 3) if seconds else None
    wall = round(time.perf_counter() - started, 1)
    timings = {**raw.pop("timings"), "mean_seconds": mean_seconds, "wall_time_s": wall}
    results = {
        "experiment": "meta-tune",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "model": {"description": model_description, "config": model.config.to_dict()},
        "config": config.to_dict(),
        **raw,
        "timings": timings,
    }
    results["model"]["sha256_of_weights"] = model_digest(model)
    results["analysis"] = analyse(results, config)
    _write(out, results, meta_tune_markdown(results), meta_tune_plots)
    if not keep_journal:
        journal.discard()
    return results


def _unit_identity(model: nn.Module, config: MetaTuneConfig, device: Any) -> dict[str, Any]:
    """What decides the result of one adaptation unit (not which units run: patients, seeds, ks, methods)."""
    import torch

    from ..synth.generate import GENERATOR_VERSION

    fields = ("shape", "eval_slices", "held_out", "held_out_slices", "adapt_overrides", "anchor_per_case", "replay")
    return {"model": model_digest(model), "generator": GENERATOR_VERSION, "device": str(device),
            "threads": torch.get_num_threads(), **{f: json_ready(getattr(config, f)) for f in fields}}


def lifelong_experiment(
    config: LifelongConfig,
    out: Path,
    *,
    command: str,
    device: Any = "cpu",
    cache_dir: Path | None = None,
    cancel: Any = None,
    resume: bool = True,
) -> Generator[Progress, None, dict[str, Any]]:
    """The lifelong experiment; writes ``out``/results.json, results.md and the figure PNGs.

    Args:
        config: the experiment's settings.
        out: the output folder.
        command: the command line that reproduces the run.
        device: where to train.
        cache_dir: training/test slice cache (None: none).
        cancel: a threading.Event or a callable returning True to stop.
        resume: keep a journal of finished runs in ``out`` and reuse a matching one (see ``journal``).
    """
    from .lifelong_analysis import analyse
    from .plots import lifelong_plots
    from .report import lifelong_markdown

    started = time.perf_counter()
    machine = describe_machine(device)
    journal = Journal(Path(out) / LIFELONG_JOURNAL_NAME if resume else None, _lifelong_identity(config, device))
    raw = yield from run_lifelong(config, device=device, cache_dir=cache_dir, cancel=cancel, journal=journal)
    timings = {**raw.pop("timings"), "wall_time_s": round(time.perf_counter() - started, 1)}
    results = {
        "experiment": "lifelong",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "config": config.to_dict(),
        **raw,
        "timings": timings,
    }
    results["analysis"] = analyse(results, config)
    _write(out, results, lifelong_markdown(results), lifelong_plots)
    journal.discard()
    return results


def _lifelong_identity(config: LifelongConfig, device: Any) -> dict[str, Any]:
    """What decides the result of one lifelong run (not which runs: seeds, settings, networks)."""
    import torch

    from ..synth.generate import GENERATOR_VERSION

    selecting = {"seeds", "seed", "settings", "archs", "workers"}
    fields = {k: json_ready(v) for k, v in config.to_dict().items() if k not in selecting}
    return {"generator": GENERATOR_VERSION, "device": str(device), "threads": torch.get_num_threads(), **fields}


def effort_experiment(
    bases: dict[str, Any],
    config: Any,
    out: Path,
    *,
    command: str,
    device: Any = "cpu",
    anchor_cache: Path | None | bool = True,
    cancel: Any = None,
    resume: bool = True,
) -> Generator[Progress, None, dict[str, Any]]:
    """The radiologist's-curve experiment; writes ``out``/results.json, results.md, curves.png (curves_real.png).

    Args:
        bases: "unet" (and "dycnn") -> ``effort.BaseModel`` (network, preprocessing, description).
        config: the ``effort.EffortConfig``.
        out: the output folder.
        command: the command line that reproduces the run.
        device: where to adapt and segment.
        anchor_cache: the source sets' cache (see ``adapt.anchors``).
        cancel: a threading.Event or a callable returning True to stop.
        resume: keep a journal of finished units in ``out`` and reuse a matching one (see ``journal``).
    """
    from ..inference.postprocess import default_cleanup
    from .effort import prepare_sources, run_effort
    from .effort_analysis import analyse
    from .effort_real import run_real
    from .effort_report import effort_markdown, effort_plots

    started = time.perf_counter()
    machine = describe_machine(device)
    for base in bases.values():
        base.model = base.model.to(device).eval()
    prepare_sources(bases, config, anchor_cache)
    journal = Journal(Path(out) / EFFORT_JOURNAL_NAME if resume else None, _effort_identity(bases, config, device))
    synthetic = yield from run_effort(bases, config, device=device, cancel=cancel, journal=journal)
    real = (yield from run_real(bases, config, device=device, cancel=cancel, journal=journal)) if config.real else None
    results = {
        "experiment": "effort",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "models": {arch: {"description": b.description, "config": b.model.config.to_dict(),
                          "sha256_of_weights": model_digest(b.model), "anchor_mean_dice": b.anchor_mean}
                   for arch, b in bases.items()},
        "config": config.to_dict(),
        "cleanup": default_cleanup(),  # the masks scored: effort.segment runs the Segmenter's default clean-up
        "adapt_configs": {m: config.adapt_config(m, config.seed).to_dict() for m in _methods(config)},
        "synthetic": synthetic,
        "real": real,
        "timings": {"wall_time_s": round(time.perf_counter() - started, 1)},
        "runs_from_journal": synthetic["units_from_journal"],
    }
    results["analysis"] = analyse(results, config)
    _write(out, results, effort_markdown(results), effort_plots)
    journal.discard()
    return results


def sequence_experiment(
    model: nn.Module, preprocessing: Any, config: Any, out: Path, *, model_description: str, command: str,
    device: Any = "cpu", anchor_cache: Path | None | bool = True, cancel: Any = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """The memory's measurement (see ``sequence``); writes ``out``/results.json, results.md, sequence.png."""
    from .sequence import analyse_sequence, run_sequence, sequence_markdown, sequence_plots

    started = time.perf_counter()
    machine = describe_machine(device)
    model = model.to(device).eval()
    raw = yield from run_sequence(model, preprocessing, config, anchor_cache=anchor_cache, cancel=cancel)
    results = {
        "experiment": "sequence",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "model": {"description": model_description, "sha256_of_weights": model_digest(model)},
        "config": config.to_dict(),
        **raw,
        "timings": {"wall_time_s": round(time.perf_counter() - started, 1)},
    }
    results["analysis"] = analyse_sequence(raw, config)
    _write(out, results, sequence_markdown(results), sequence_plots)
    return results


def ranking_experiment(
    base: Any, seeds: list[int], out: Path, *, ks: tuple[int, ...], seed_range: str, command: str,
    device: Any = "cpu", shape: Any = None, real: bool = True, cancel: Any = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """The rankings' coverage of the first prediction (see ``ranking``); writes results.json, results.md, rankings.png.

    Args:
        base: the ``effort.BaseModel`` whose first prediction is ranked.
        seeds: the synthetic metastasis patients.
        out: the output folder.
        ks: the numbers of slices picked.
        seed_range: which seed range the patients are from, in words (tuning or reported).
        command: the command line that reproduces the run.
        device: where to segment.
        shape: the synthetic grid (None: the generator's).
        real: also the real labelled case, where present.
        cancel: a threading.Event or a callable returning True to stop.
    """
    from .ranking import ranking_check
    from .ranking_report import ranking_markdown, ranking_plots

    started = time.perf_counter()
    machine = describe_machine(device)
    base.model = base.model.to(device).eval()
    raw = yield from ranking_check(base, seeds, ks, shape=shape, device=device, real=real, cancel=cancel)
    results = {
        "experiment": "ranking",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "model": {"description": base.description, "sha256_of_weights": model_digest(base.model)},
        "seeds": [int(s) for s in seeds],
        "seed_range": seed_range,
        **raw,
        "timings": {"wall_time_s": round(time.perf_counter() - started, 1)},
    }
    _write(out, results, ranking_markdown(results), ranking_plots)
    return results


def _methods(config: Any) -> list[str]:
    from .effort import parse_run

    return sorted({parse_run(r)[1] for r in (*config.runs, *(config.real_runs or ())) if parse_run(r)[1]})


def _effort_identity(bases: dict[str, Any], config: Any, device: Any) -> dict[str, Any]:
    """What decides one unit's result (not which units run: patients, seeds, runs)."""
    import torch

    from ..synth.generate import GENERATOR_VERSION
    from .effort import METHOD_SPECS

    from ..inference.postprocess import default_cleanup

    fields = ("rounds", "per_round", "shape", "anchor_per_case", "flip", "adapt_overrides", "target_slices")
    return {"models": {arch: model_digest(b.model) for arch, b in bases.items()}, "generator": GENERATOR_VERSION,
            "device": str(device), "threads": torch.get_num_threads(), "cleanup": default_cleanup(),
            "adapt": {m: config.adapt_config(m, 0).to_dict() for m in METHOD_SPECS},
            **{f: json_ready(getattr(config, f)) for f in fields}}


def _write(out: Path, results: dict[str, Any], markdown: str, plots: Any) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots(results, out)
    atomic_write_text(out / "results.md", markdown, overwrite=True, make_folder=True)
    write_json(out / "results.json", results)  # last: its presence says the folder is complete


def render(out: Path) -> list[Path]:
    """Redraw results.md and the figures of a finished experiment folder from its results.json.

    The numbers are not recomputed: this only re-renders what the run recorded
    (e.g. after a change to the report's layout).

    Args:
        out: a folder an experiment wrote.
    """
    import json

    from .effort_report import effort_markdown, effort_plots
    from .plots import lifelong_plots, meta_tune_plots
    from .report import lifelong_markdown, meta_tune_markdown

    out = Path(out)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    if results.get("experiment") == "effort":
        markdown, plots = effort_markdown(results), effort_plots
    elif results.get("experiment") == "sequence":
        from .sequence import sequence_markdown, sequence_plots

        markdown, plots = sequence_markdown(results), sequence_plots
    elif results.get("experiment") == "ranking":
        from .ranking_report import ranking_markdown, ranking_plots

        markdown, plots = ranking_markdown(results), ranking_plots
    elif results.get("experiment") == "meta-tune":
        markdown, plots = meta_tune_markdown(results), meta_tune_plots
    elif results.get("experiment") == "lifelong":
        markdown, plots = lifelong_markdown(results), lifelong_plots
    else:
        raise ValueError(f"{out / 'results.json'}: not the results of a known experiment")
    paths = plots(results, out)
    atomic_write_text(out / "results.md", markdown, overwrite=True, make_folder=True)
    return [*paths, out / "results.md"]

