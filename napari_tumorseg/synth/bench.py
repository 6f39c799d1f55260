"""How long one synthetic case takes: ``python -m napari_tumorseg.synth.bench`` or ``tumorseg synth --bench``.

Each domain is timed over several seeds on one thread (OpenMP, MKL,
OpenBLAS and torch all limited to one), after a warm-up case that loads the
anatomy resource and imports torch. Wall-clock and CPU seconds are both
reported: on a shared machine the CPU time is the steadier figure of what
one core needs. Every generator version is timed in the same run, the
versions taking turns case by case, so a busy spell of a shared machine
weighs on each alike and each version's cost reads against the
oldest's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def benchmark(seeds: int = 5, shape: tuple[int, int, int] = (155, 240, 240)) -> dict:
    """Time case generation in this process (set the thread variables before numpy loads).

    Args:
        seeds: cases per domain (seeds 0 .. seeds-1).
        shape: the grid.

    Returns:
        A JSON-ready dict: per domain, mean and max seconds (wall and CPU) of
        the default version; under ``"versions"`` the same for every version,
        and each version's CPU time over the oldest's.
    """
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _timed(seeds, shape)
    finally:
        torch.set_num_threads(previous_threads)


def _stats(wall: list[float], cpu: list[float]) -> dict:
    import numpy as np

    return {"wall_mean_s": round(float(np.mean(wall)), 3), "wall_max_s": round(float(np.max(wall)), 3),
            "cpu_mean_s": round(float(np.mean(cpu)), 3), "cpu_max_s": round(float(np.max(cpu)), 3)}


def _timed(seeds: int, shape: tuple[int, int, int]) -> dict:
    from ..machine import describe_machine
    from .anatomy import load_anatomy
    from .generate import GENERATOR_VERSION, GENERATOR_VERSIONS, make_case

    start = time.perf_counter()
    load_anatomy(shape)
    for version in GENERATOR_VERSIONS:  # warm-up: first torch call, caches
        make_case("glioma", 10_000, shape=shape, version=version)
    result: dict = {"shape": list(shape), "seeds_per_domain": seeds, "threads": 1,
                    "warm_up_seconds": round(time.perf_counter() - start, 3), "default_version": GENERATOR_VERSION}
    times = {(v, d): ([], []) for v in GENERATOR_VERSIONS for d in ("glioma", "metastasis")}
    for domain in ("glioma", "metastasis"):
        for seed in range(seeds):
            turn = GENERATOR_VERSIONS if seed % 2 == 0 else GENERATOR_VERSIONS[::-1]
            for version in turn:
                w0, c0 = time.perf_counter(), time.process_time()
                make_case(domain, seed, shape=shape, version=version)
                times[version, domain][0].append(time.perf_counter() - w0)
                times[version, domain][1].append(time.process_time() - c0)
    versions = {v: {d: _stats(*times[v, d]) for d in ("glioma", "metastasis")} for v in GENERATOR_VERSIONS}
    oldest = GENERATOR_VERSIONS[0]
    for v, by_domain in versions.items():
        for d, stats in by_domain.items():
            stats["cpu_over_version_" + oldest] = round(stats["cpu_mean_s"] / versions[oldest][d]["cpu_mean_s"], 2)
    result.update(versions[GENERATOR_VERSION], versions=versions, machine=describe_machine())
    return result


def run_isolated(seeds: int = 5, shape: tuple[int, int, int] = (155, 240, 240)) -> dict:
    """:func:`benchmark` in a fresh process whose thread pools are limited to one thread.

    Thread limits only bind if set before numpy and torch start, which in the
    calling process has already happened.
    """
    env = dict(os.environ, **{name: "1" for name in THREAD_VARIABLES})
    command = [sys.executable, "-m", __name__, "--seeds", str(seeds), "--shape", ",".join(str(n) for n in shape)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"the synthetic-data benchmark failed:\n{completed.stderr.strip()}")
    return json.loads(completed.stdout)


def main(argv: list[str] | None = None) -> int:
    """Entry point: print the benchmark as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shape", default="155,240,240")
    args = parser.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split(","))
    print(json.dumps(benchmark(args.seeds, shape), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
