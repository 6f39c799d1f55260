"""Timing and memory of the Segmenter on one BraTS-size case (used by ``tumorseg bench``).

Each (architecture, device) is measured in a fresh Python process, so "cold"
is honest (first segmentation after the model is built: one-time allocations,
oneDNN/cuDNN kernel selection) and the peak resident memory belongs to that
run alone (interpreter, torch, the case, the model, the segmentation).

The worker entry point: ``python -m napari_tumorseg.inference.benchmark SPEC.json``
where SPEC names the case file (.npz written by :func:`save_case_arrays`) and
the settings; it prints one JSON object.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.case import MODALITIES, Case, Geometry

# Voxel axes already (S, P, L): a saved canonical array is the case itself.
_CANONICAL_AFFINE = np.array([[0, 0, -1, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


@dataclass(frozen=True)
class BenchSpec:
    """What one worker measures."""

    case_file: str
    arch: str
    device: str
    model: str | None = None
    batch_size: int | None = None
    threads: int | None = None
    repeats: int = 3
    seed: int = 0
    mirror: str | None = None  # None: the Segmenter's default


def phantom_case(shape: tuple[int, int, int] = (155, 240, 240), seed: int = 0) -> Case:
    """A brain-shaped ellipsoid phantom with a tumour-like blob, when no synthetic generator is available."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    cz, cy, cx = shape[0] * 0.5, shape[1] * 0.5, shape[2] * 0.5
    radii = (shape[0] * 0.42, shape[1] * 0.36, shape[2] * 0.29)
    brain = ((z - cz) / radii[0]) ** 2 + ((y - cy) / radii[1]) ** 2 + ((x - cx) / radii[2]) ** 2 <= 1
    lesion = ((z - cz) / 12) ** 2 + ((y - cy * 0.8) / 15) ** 2 + ((x - cx * 1.2) / 14) ** 2 <= 1
    images = {}
    for index, key in enumerate(MODALITIES):
        volume = rng.normal(300 + 80 * index, 40, shape).astype(np.float32)
        volume[lesion] *= 1.6 if key in ("flair", "t2", "t1c") else 0.7
        images[key] = np.where(brain, volume, 0).astype(np.float32)
    return Case(f"phantom_{seed:05d}", images, Geometry(_CANONICAL_AFFINE, shape))


def benchmark_case(shape: tuple[int, int, int], seed: int) -> tuple[Case, str]:
    """A synthetic glioma from ``napari_tumorseg.synth`` when it is installed, else the phantom."""
    try:
        from ..synth.generate import make_case
    except ImportError:
        return phantom_case(shape, seed), f"ellipsoid phantom (seed {seed})"
    return make_case("glioma", seed, shape=shape), f"synthetic glioma (napari_tumorseg.synth, seed {seed})"


def save_case_arrays(case: Case, path: Path) -> None:
    """The canonical images and the voxel spacing (speck removal measures volumes in mm³)."""
    spacing = np.asarray(case.geometry.spacing, dtype=np.float64)
    np.savez(path, _spacing=spacing, **{key: case.images[key] for key in case.modalities})


def load_case_arrays(path: str | Path) -> Case:
    with np.load(path) as data:
        images = {key: data[key] for key in data.files if key in MODALITIES}
        spacing = data["_spacing"] if "_spacing" in data.files else np.ones(3)
    shape = next(iter(images.values())).shape
    # Column i of the affine is voxel axis i (already S, P, L): scaling it sets that axis's spacing.
    affine = _CANONICAL_AFFINE.copy()
    affine[:3, :3] *= spacing[None, :]
    return Case(Path(path).stem, images, Geometry(affine, shape))


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def measure(spec: BenchSpec) -> dict[str, Any]:
    """Run one benchmark in this process (meant to be a fresh one)."""
    started = time.perf_counter()
    import torch

    import_seconds = time.perf_counter() - started
    if spec.threads:
        torch.set_num_threads(spec.threads)
    from ..models import build_model
    from .segmenter import Segmenter

    case = load_case_arrays(spec.case_file)
    began = time.perf_counter()
    if spec.model:
        segmenter = Segmenter.from_checkpoint(
            spec.model, device=spec.device, batch_size=spec.batch_size, mirror=spec.mirror
        )
    else:
        torch.manual_seed(spec.seed)
        segmenter = Segmenter(build_model(spec.arch), device=spec.device, batch_size=spec.batch_size, mirror=spec.mirror)
    load_seconds = time.perf_counter() - began
    cuda = segmenter.device.type == "cuda"

    cpu_times: list[float] = []

    def timed(fn) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if cuda:
            torch.cuda.synchronize()
        cpu_times.append(time.process_time() - c0)
        return time.perf_counter() - t0

    results = []
    cold = timed(lambda: results.append(segmenter.segment(case)))
    warm = [timed(lambda: segmenter.segment(case)) for _ in range(max(spec.repeats, 1))]
    warm_cpu = cpu_times[1:]
    middle = case.shape[0] // 2
    slice_seconds = min(timed(lambda: segmenter.segment_slice(case, middle)) for _ in range(3))
    plan = segmenter.plan(case)
    return {
        "arch": segmenter.config.arch,
        "model": spec.model or "random initialisation",
        "device": str(segmenter.device),
        "threads": torch.get_num_threads(),
        "batch_size": segmenter.batch_size,
        "mirror": segmenter.mirror,
        "parameters": sum(p.numel() for p in segmenter.model.parameters()),
        "brain_box": {
            "start": list(plan.crop.start),
            "stop": list(plan.crop.stop),
            "padded_hw": list(plan.crop.padded_hw),
        },
        "slices_run": results[0].slices_run,
        "import_torch_seconds": round(import_seconds, 3),
        "model_load_seconds": round(load_seconds, 3),
        "cold_seconds": round(cold, 3),
        "warm_seconds": round(statistics.median(warm), 3),
        "warm_min_seconds": round(min(warm), 3),
        "warm_runs": [round(w, 3) for w in warm],
        # CPU time of all threads per warm run: on a busy machine, wall time measures the
        # other jobs too, while CPU time / threads stays close to the wall time of an idle one.
        "warm_cpu_seconds_min": round(min(warm_cpu), 3),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "slice_seconds": round(slice_seconds, 4),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


def run_worker(spec: BenchSpec, timeout: float = 1800) -> dict[str, Any]:
    """:func:`measure` in a fresh interpreter; returns its JSON (or an "error" entry)."""
    command = [sys.executable, "-m", __name__, json.dumps(asdict(spec))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"arch": spec.arch, "device": spec.device, "error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # the worker process
    print(json.dumps(measure(BenchSpec(**json.loads(sys.argv[1])))))
