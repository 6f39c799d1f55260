"""``tumorseg bench``: seconds per BraTS-size volume, cold and warm, and peak memory, as JSON.

    tumorseg bench                              # both architectures, CPU (and GPU if present)
    tumorseg bench --arch unet --device cpu --repeats 5 -o bench.json
    tumorseg bench --model my_model.safetensors  # a saved model instead of random weights
    tumorseg bench --peer segresnet --threads 2 -o versus.json   # the shipped models against MONAI's SegResNet

``--peer segresnet`` times MONAI's SegResNet as the BraTS bundle runs it
(``brats_mri_segmentation``: 3D SegResNet, sliding window 240x240x160,
overlap 0.5; random weights, nothing downloaded; needs the ``bench`` extra)
beside our models (the shipped ones unless ``--model``/``--arch`` say
otherwise) in one process: same volume, same torch threads, each run once
cold, then ``--repeats`` interleaved warm rounds. It prints a table (and
``-o`` writes the JSON) with min/median/max, our time over the peer's round
by round, and the targets: at most 5 s warm and at most half the peer's
time. The volume is the real BraTS glioma of the development set when this
machine has it (``$TUMORSEG_REAL_DATA`` or ``../shared/real``), else ``--case``
or a synthetic glioma.

The test volume is a synthetic glioma on the 155x240x240 BraTS grid (an
ellipsoid phantom if the synthetic generator is not installed). Each
(architecture, device) runs in a fresh process: "cold" is its first
segmentation after the model is built, "warm" the median of the next runs,
"peak_rss_mb" the whole process's peak resident memory, "slice_seconds" one
axial slice (``Segmenter.segment_slice``). On a machine busy with other work,
wall times count that work too: "warm_cpu_seconds_min" (CPU time of all
threads) and "load_average" say how much. Speed depends on the brain's box,
since only it is run: the JSON reports it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from ..inference.mirroring import DEFAULT_MIRROR, MIRROR_CHOICES
from ._bench_case import bench_case
from ._types import grid_shape, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    parser = subparsers.add_parser(
        "bench",
        help="time segmentation of a BraTS-size volume (cold, warm, peak memory) on CPU and GPU",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--arch", nargs="+", choices=["unet", "dycnn"],
        help="architectures with random weights (default: both; with --peer, the shipped models); ignored with --model",
    )
    parser.add_argument("--model", type=Path, help="a checkpoint (.safetensors) to time instead")
    parser.add_argument(
        "--device", nargs="+", default=["auto"],
        help="cpu, cuda, mps, or auto = the CPU and, when present, the GPU (default)",
    )
    parser.add_argument("--batch-size", type=positive_int, help="slices per batch (default: the Segmenter's per device)")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="warm runs after the cold one (default 3)")
    parser.add_argument("--shape", type=grid_shape, default=(155, 240, 240), help="Z,Y,X grid (default 155,240,240)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic case and random weights")
    parser.add_argument(
        "--phantom", action="store_true", help="time an ellipsoid phantom instead of a synthetic glioma"
    )
    parser.add_argument("--case", type=Path, help="time this case (folder or file) instead of a synthetic one")
    parser.add_argument(
        "--mirror", nargs="+", choices=MIRROR_CHOICES,
        help="flip averaging to time, each in turn (default: the Segmenter's default, " + DEFAULT_MIRROR + ")",
    )
    parser.add_argument("--peer", choices=["segresnet"], help="also time MONAI's SegResNet (BraTS bundle) in the same run")
    parser.add_argument("--peer-roi", type=grid_shape, help="the peer's sliding window X,Y,Z (default the bundle's 240,240,160)")
    parser.add_argument("-o", "--output", type=Path, help="also write the JSON to this file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.set_defaults(func=run)


def _devices(requested: list[str]) -> list[str]:
    import torch

    devices: list[str] = []
    for name in requested:
        if name == "auto":
            devices.append("cpu")
            if torch.cuda.is_available():
                devices.append("cuda")
            elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                devices.append("mps")
        else:
            from ..inference.devices import choose_device

            choose_device(name)  # a ModelError (exit 2) for a device this machine lacks
            devices.append(name)
    return list(dict.fromkeys(devices))


def run(args: argparse.Namespace) -> int:
    """Build the case once, measure every (architecture, device) in its own process, print JSON.

    Args:
        args: the parsed arguments of ``register``.
    """
    from ..inference.benchmark import BenchSpec, run_worker, save_case_arrays
    from ..io.atomic import atomic_write_text, check_writable
    from ..machine import describe_machine

    if args.output:
        check_writable(args.output, overwrite=args.overwrite, make_folder=True)  # before minutes of timing
    if args.peer:
        from ._bench_peer import run_versus

        return run_versus(args)
    if args.model is not None:
        from ..models.checkpoint import read_checkpoint_info

        archs = [read_checkpoint_info(args.model).config.arch]  # ModelError now, not in a worker
    else:
        archs = args.arch or ["unet", "dycnn"]
    devices = _devices(args.device)
    case, source = bench_case(args, real_default=False)
    report = {
        "command": "tumorseg bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "tumorseg bench",
        "machine": describe_machine(),
        "case": {"source": source, "shape": list(case.shape), "modalities": list(case.modalities)},
        "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="tumorseg-bench-") as folder:
        case_file = Path(folder) / "case.npz"
        save_case_arrays(case, case_file)
        del case
        for arch, device, mirror in [(a, d, m) for a in archs for d in devices for m in args.mirror or [None]]:
            spec = BenchSpec(
                case_file=str(case_file), arch=arch, device=device,
                model=str(args.model) if args.model else None, batch_size=args.batch_size,
                threads=args.threads, repeats=args.repeats, seed=args.seed, mirror=mirror,
            )
            shown = f" mirror {mirror}" if mirror else ""
            print(f"tumorseg bench: {arch} on {device}{shown} ...", file=sys.stderr, flush=True)
            report["results"].append(run_worker(spec))
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        atomic_write_text(args.output, text + "\n", overwrite=args.overwrite, make_folder=True)
    return 1 if any("error" in r for r in report["results"]) else 0
