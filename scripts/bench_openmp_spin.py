"""How long torch's OpenMP threads spin before they sleep: ``tumorseg bench-adapt`` at several spin counts.

The package sets ``OMP_WAIT_POLICY=PASSIVE`` and ``GOMP_SPINCOUNT=1000`` before torch
loads (see ``napari_tumorseg/__init__.py``). This runs the adaptation benchmark in a
fresh process per run, interleaving the spin counts so that a change in the machine's
load hits them alike, idle or beside ``--busy`` processes that each keep one core busy
(the shared machine the passive policy was chosen for). Prints one line per run and a
summary; ``--output`` writes the runs as JSON.

    python scripts/bench_openmp_spin.py --spins 0,1000,10000 --repeats 3 [--busy 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BURNER = "while True: pass"


def one_run(spin: str, threads: int) -> dict:
    """One ``tumorseg bench-adapt`` in a fresh process with GOMP_SPINCOUNT=spin; its timings."""
    env = {**os.environ, "GOMP_SPINCOUNT": spin}
    command = [sys.executable, "-m", "napari_tumorseg", "bench-adapt", "--threads", str(threads)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    return {"spin": spin, "wall_s": result["timings"]["adapt_and_guard_s"],
            "cpu_s": result["timings"]["adapt_and_guard_cpu_s"], "phases": result["phases"],
            "step": result["guard"].split(" of the way")[0], "load_before": result["machine"]["load_average_before"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spins", default="0,1000,10000", help="GOMP_SPINCOUNT values, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs per spin count")
    parser.add_argument("--busy", type=int, default=0, help="processes keeping a core busy during the runs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the benchmark")
    parser.add_argument("--output", type=Path, help="write the runs here as JSON")
    args = parser.parse_args()
    spins = args.spins.split(",")
    burners = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(args.busy)]
    runs = []
    try:
        for _ in range(args.repeats):
            for spin in spins:
                runs.append(one_run(spin, args.threads))
                print(json.dumps(runs[-1]), flush=True)
    finally:
        for burner in burners:
            burner.kill()
    print(f"busy processes: {args.busy}; threads: {args.threads}; adapt_and_guard_s (wall), median [min-max]:")
    for spin in spins:
        walls = [r["wall_s"] for r in runs if r["spin"] == spin]
        cpus = [r["cpu_s"] for r in runs if r["spin"] == spin]
        print(f"  GOMP_SPINCOUNT={spin:>6}: {statistics.median(walls):6.1f} s [{min(walls):.1f}-{max(walls):.1f}], "
              f"CPU {statistics.median(cpus):.1f} s")
    if args.output:
        args.output.write_text(json.dumps({"busy": args.busy, "threads": args.threads, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
