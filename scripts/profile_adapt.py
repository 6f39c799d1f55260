"""Where a warm adaptation's time goes, op by op: the evidence for the next speed lever (issue 13).

On the H200 an adaptation takes 1.8-2.0 s warm against a 1 s target, with CPU seconds equal to wall
seconds (docs/results/gpu-checks): the host launching kernels, not the GPU computing. This profiles
one warm ``tumorseg bench-adapt`` run (after a cold and an unprofiled warm one) (the same case, corrections and defaults) with torch.profiler
and writes the ops ranked by the host's own time, their call counts, and, on a GPU, the kernels'
summed device time against the run's wall time: how much of a step is launch overhead, how many
launches an adaptation makes, and which parts (optimiser, losses, norms, convolutions) make them.

    python scripts/profile_adapt.py --device cuda --out out/gpu-checks/profile-adapt.txt
    python scripts/profile_adapt.py --device cpu --shape 40,64,64 --out out/profile-adapt.txt   # a smoke test
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from napari_tumorseg.adapt.anchors import anchor_set, replay_pools
from napari_tumorseg.adapt.bench import _bench_corrections, _default_model, _timed_adaptation
from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.training import warm_up_optimizers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shape", type=lambda s: tuple(int(v) for v in s.split(",")), default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=45)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = default_config("active")
    model, source = _default_model("active")
    timings: dict[str, float] = {}
    _, corrections = _bench_corrections(model, config, 5, args.shape, timings)
    anchor = anchor_set(model.config, shape=args.shape)
    replay = replay_pools(config.replay, model.config, shape=args.shape)
    warm_up_optimizers()
    cold: dict[str, float] = {}
    _timed_adaptation(model, corrections, config, (anchor, replay, []), args.device, cold)  # kernels loaded, shapes seen
    plain: dict[str, float] = {}
    _timed_adaptation(model, corrections, config, (anchor, replay, []), args.device, plain)  # warm, not profiled
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    warm: dict[str, float] = {}
    started = time.perf_counter()
    with profile(activities=activities) as profiler:
        _timed_adaptation(model, corrections, config, (anchor, replay, []), args.device, warm)
    wall = time.perf_counter() - started
    events = profiler.key_averages()
    device_us = sum(getattr(e, "self_device_time_total", 0.0) for e in events)
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    header = [f"model: {source}; device {args.device}; shape {args.shape or 'BraTS 1 mm'}",
              f"cold run {cold['adapt_and_guard_s']:.3f} s; warm run {plain['adapt_and_guard_s']:.3f} s "
              f"(CPU {plain['adapt_and_guard_cpu_s']:.3f} s); the same under the profiler {wall:.3f} s",
              f"kernels' own device time {device_us / 1e6:.3f} s; kernel launches {launches}", ""]
    table = events.table(sort_by="self_cpu_time_total", row_limit=args.rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header) + table + "\n")
    print("\n".join(header))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
