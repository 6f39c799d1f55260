"""``tumorseg bench --peer segresnet``: our models against MONAI's SegResNet, same run (see ``bench``'s help)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

WARM_TARGET_SECONDS = 5.0  # issue target: one BraTS volume, warm, 2 CPU cores
PEER_RATIO_TARGET = 0.5  # ... and at most half of the peer's time
BRATS_SHAPE = [155, 240, 240]


def _ours(args: argparse.Namespace) -> list[str]:
    """Checkpoints or random architectures to time: --model, else --arch, else every shipped model."""
    from ..errors import ModelError

    if args.model is not None:
        from ..models.checkpoint import read_checkpoint_info

        read_checkpoint_info(args.model)  # a ModelError now, not in the worker
        return [str(args.model)]
    if args.arch:
        return list(args.arch)
    from ..resources import resources_root

    try:
        shipped = sorted((resources_root() / "models").glob("*.safetensors"))
    except FileNotFoundError:
        shipped = []
    if not shipped:
        raise ModelError("no shipped models to time; give --model or --arch")
    return [str(path) for path in shipped]


def _device(args: argparse.Namespace) -> str:
    from ..errors import TumorsegError
    from ..inference.devices import choose_device

    requested = [d for d in args.device if d != "auto"]
    if len(requested) > 1:
        raise TumorsegError("--peer compares on one device; give at most one --device")
    if not requested:
        return "cpu"  # the targets are CPU targets; name a GPU explicitly to time one
    choose_device(requested[0])  # ModelError (exit 2) for a device this machine lacks
    return requested[0]


def table_lines(report: dict[str, Any]) -> list[str]:
    """The comparison as a table, with the load average and the targets."""
    versus, case = report["versus"], report["case"]
    lines = [f"# {case['source']}; {'x'.join(map(str, case['shape']))}, {len(case['modalities'])} modalities",
             f"# {report['machine']['cpu']}, {report['machine']['cpu_cores']} cores; device {versus['device']}, "
             f"{versus['threads']} torch threads for every model; 1 cold run, then {versus['repeats']} warm rounds "
             f"interleaved; load average {versus['load_average_before']} before, {versus['load_average_after']} after",
             f"{'model':<34} {'cold s':>7} {'warm min':>9} {'median':>7} {'max':>7} {'CPU s':>7}  ours / peer",
             ]
    for entry in versus["contestants"]:
        ratio = entry.get("versus_peer")
        against = (f"{ratio['median_of_paired']:.2f} (paired rounds), {ratio['of_medians']:.2f} (medians)"
                   if ratio else "1")
        lines.append(f"{entry['name']:<34} {entry['cold_seconds']:>7.2f} {entry['warm_min_seconds']:>9.2f} "
                     f"{entry['warm_median_seconds']:>7.2f} {entry['warm_max_seconds']:>7.2f} "
                     f"{entry['warm_cpu_min_seconds']:>7.2f}  {against}")
    return lines + verdict_lines(report)


def verdict_lines(report: dict[str, Any]) -> list[str]:
    """Whether each of our models meets the issue's two targets (judged on a BraTS-size volume on the CPU)."""
    versus = report["versus"]
    if report["case"]["shape"] != BRATS_SHAPE or versus["device"] != "cpu":
        return ["targets (<= 5 s warm, <= half the peer) apply to a 155x240x240 volume on the CPU: not judged here"]
    lines = []
    for entry in versus["contestants"]:
        if "versus_peer" not in entry:
            continue
        warm, ratio = entry["warm_median_seconds"], entry["versus_peer"]["median_of_paired"]
        lines.append(f"target {entry['name']}: warm median {warm:.2f} s "
                     f"({'met' if warm <= WARM_TARGET_SECONDS else 'NOT met'}: <= {WARM_TARGET_SECONDS:g} s); "
                     f"{ratio:.2f} of the peer ({'met' if ratio <= PEER_RATIO_TARGET else 'NOT met'}: "
                     f"<= {PEER_RATIO_TARGET:g}) on {versus['threads']} threads")
    return lines


def run_versus(args: argparse.Namespace) -> int:
    """Time our models and the peer on one case in one worker process; print the table, write the JSON."""
    from ..errors import TumorsegError
    from ..inference.benchmark import save_case_arrays
    from ..inference.peer import monai_available
    from ..inference.versus import VersusSpec, run_versus_worker
    from ..io.atomic import atomic_write_text
    from ..machine import describe_machine
    from ._bench_case import bench_case

    if not monai_available():
        raise TumorsegError("--peer segresnet needs MONAI: pip install 'napari-tumorseg[bench]'")
    ours, device = _ours(args), _device(args)
    case, source = bench_case(args, real_default=True)
    report: dict[str, Any] = {
        "command": "tumorseg bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "tumorseg bench",
        "machine": describe_machine(),
        "case": {"source": source, "shape": list(case.shape), "modalities": list(case.modalities)},
    }
    with tempfile.TemporaryDirectory(prefix="tumorseg-bench-") as folder:
        case_file = Path(folder) / "case.npz"
        save_case_arrays(case, case_file)
        del case
        spec = VersusSpec(case_file=str(case_file), ours=ours, peer=args.peer, device=device, threads=args.threads,
                          repeats=args.repeats, seed=args.seed, peer_roi=list(args.peer_roi) if args.peer_roi else None,
                          batch_size=args.batch_size, mirrors=args.mirror)
        report["versus"] = run_versus_worker(spec)
    if "error" in report["versus"]:
        print(f"tumorseg bench: {report['versus']['error']}", file=sys.stderr)
    else:
        print("\n".join(table_lines(report)))
    if args.output:
        atomic_write_text(args.output, json.dumps(report, indent=2) + "\n", overwrite=args.overwrite, make_folder=True)
    return 1 if "error" in report["versus"] else 0
