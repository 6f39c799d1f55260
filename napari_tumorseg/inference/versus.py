"""Our segmenters against a peer (MONAI's SegResNet), timed in one process, interleaved, warm.

Why one process and interleaved rounds: the requirement is relative ("at most
half the peer's time, same machine, same volume, same thread count, same
run"), and the development machine is shared, so its speed drifts while a
benchmark runs. Here both models see the same case arrays, the same
``torch.set_num_threads`` and the same OpenMP settings; each is run once cold,
then ``repeats`` rounds in which every model runs once, the order reversed
every other round (A B, B A, ...), so a slow spell hits both. The ratio is
taken round by round (ours / peer in the same round) and its median reported
beside the ratio of the medians. Timing whole processes from outside would
add start-up, torch's import and the model's load, which are not inference.

Worker entry point: ``python -m napari_tumorseg.inference.versus SPEC_JSON``
prints one JSON object on its last line (progress goes to stderr).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .benchmark import _peak_rss_mb, load_case_arrays

RANDOM_ARCHS = ("unet", "dycnn")


@dataclass(frozen=True)
class VersusSpec:
    """What one comparison measures.

    Args:
        case_file: the .npz written by ``benchmark.save_case_arrays``.
        ours: checkpoint files, or "unet"/"dycnn" for that network with random weights.
        peer: the peer's name (see ``peer.PEERS``).
        device: torch device for every model.
        threads: torch threads (None: torch's default), the same for every model.
        repeats: warm rounds after the cold one.
        seed: seed of random weights.
        peer_roi: the peer's sliding window (None: its bundle's).
        batch_size: our slices per batch (None: the Segmenter's default).
        mirrors: each of ours is timed once per mirror setting listed
            (``mirroring.MIRROR_CHOICES``; None: the Segmenter's default only).
    """

    case_file: str
    ours: list[str] = field(default_factory=lambda: ["unet"])
    peer: str = "segresnet"
    device: str = "cpu"
    threads: int | None = None
    repeats: int = 3
    seed: int = 0
    peer_roi: list[int] | None = None
    batch_size: int | None = None
    mirrors: list[str] | None = None


def _load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _our_segmenter(item: str, spec: VersusSpec, mirror: str | None) -> tuple[str, Any, dict[str, Any]]:
    import torch

    from ..models import build_model
    from .segmenter import Segmenter

    if item in RANDOM_ARCHS:
        torch.manual_seed(spec.seed)
        segmenter = Segmenter(build_model(item), device=spec.device, batch_size=spec.batch_size, mirror=mirror)
        name, model = f"{item} (random weights)", "random initialisation"
    else:
        segmenter = Segmenter.from_checkpoint(item, device=spec.device, batch_size=spec.batch_size, mirror=mirror)
        name, model = Path(item).stem, item
    if mirror is not None:
        name += f" mirror {mirror}"
    info = {"role": "ours", "model": model, "arch": segmenter.config.arch, "mirror": segmenter.mirror,
            "parameters": sum(p.numel() for p in segmenter.model.parameters()), "batch_size": segmenter.batch_size}
    return name, segmenter, info


def _stats(walls: list[float], cpus: list[float]) -> dict[str, Any]:
    return {
        "warm_runs": [round(w, 3) for w in walls],
        "warm_min_seconds": round(min(walls), 3),
        "warm_median_seconds": round(statistics.median(walls), 3),
        "warm_max_seconds": round(max(walls), 3),
        "warm_cpu_runs": [round(c, 3) for c in cpus],
        "warm_cpu_min_seconds": round(min(cpus), 3),
    }


def _ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    paired = [a / b for a, b in zip(ours["warm_runs"], peer["warm_runs"])]
    return {
        "paired_runs": [round(r, 4) for r in paired],
        "median_of_paired": round(statistics.median(paired), 4),
        "of_medians": round(ours["warm_median_seconds"] / peer["warm_median_seconds"], 4),
        "of_minima": round(ours["warm_min_seconds"] / peer["warm_min_seconds"], 4),
    }


def _say(text: str) -> None:
    print(f"tumorseg bench: {text}", file=sys.stderr, flush=True)


def measure_versus(spec: VersusSpec) -> dict[str, Any]:
    """Build every model, time each cold, then ``repeats`` interleaved warm rounds (see the module notes)."""
    import torch

    from .peer import SegResNetPeer

    if spec.threads:
        torch.set_num_threads(spec.threads)
    case = load_case_arrays(spec.case_file)
    load_before = _load_average()
    runners: dict[str, Callable[[], Any]] = {}
    described: dict[str, dict[str, Any]] = {}
    cold: dict[str, tuple[float, float]] = {}
    for item, mirror in [(item, mirror) for item in spec.ours for mirror in spec.mirrors or [None]]:
        name, segmenter, info = _our_segmenter(item, spec, mirror)
        runners[name], described[name] = (lambda s=segmenter: s.segment(case)), info
        cold[name] = _timed(runners[name])
        _say(f"{name}: cold {cold[name][0]:.2f} s")
    rss_ours = _peak_rss_mb()
    peer = SegResNetPeer(spec.peer_roi, seed=spec.seed, device=spec.device)
    runners[peer.name], described[peer.name] = (lambda: peer.segment(case)), {"role": "peer", **peer.describe()}
    cold[peer.name] = _timed(runners[peer.name])
    _say(f"{peer.name}: cold {cold[peer.name][0]:.2f} s")
    walls: dict[str, list[float]] = {name: [] for name in runners}
    cpus: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for round_index in range(max(spec.repeats, 1)):
        for name in order if round_index % 2 == 0 else order[::-1]:
            wall, cpu = _timed(runners[name])
            walls[name].append(wall), cpus[name].append(cpu)
            _say(f"round {round_index + 1}: {name} {wall:.2f} s")
    contestants = []
    for name in order:
        entry = {"name": name, **described[name], "cold_seconds": round(cold[name][0], 3)}
        contestants.append({**entry, **_stats(walls[name], cpus[name])})
    peer_entry = contestants[-1]
    for entry in contestants[:-1]:
        entry["versus_peer"] = _ratios(entry, peer_entry)
    return {
        "device": spec.device, "threads": torch.get_num_threads(), "repeats": max(spec.repeats, 1),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "case_shape": list(case.shape),
        "load_average_before": load_before, "load_average_after": _load_average(),
        "peak_rss_mb_ours": round(rss_ours, 1), "peak_rss_mb_with_peer": round(_peak_rss_mb(), 1),
        "contestants": contestants,
    }


def run_versus_worker(spec: VersusSpec, timeout: float = 3600) -> dict[str, Any]:
    """:func:`measure_versus` in a fresh interpreter (its progress shows on stderr); its JSON, or an "error"."""
    command = [sys.executable, "-m", __name__, json.dumps(asdict(spec))]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"the benchmark process failed (exit status {done.returncode}; its messages are above)"}
    return json.loads(lines[-1])


if __name__ == "__main__":  # the worker process
    print(json.dumps(measure_versus(VersusSpec(**json.loads(sys.argv[1])))))
