"""``tumorseg bench-prepare``: the Prepare step against a known truth (the validation behind the README's figures).

    tumorseg bench-prepare --synthetic glioma:10000,glioma:10001,metastasis:20000 --real ../shared/real -o out/prepare.json

Synthetic raw heads (skull and scalp, every sequence moved differently, FLAIR
on 5 mm slices) and the real development cases (every sequence moved by a
known motion, FLAIR resliced at 5 mm) are prepared from NIfTI files; the
command reports the registration error over the brain (mean and worst, mm;
for a real case against its files' alignment and against the motion applied
after its own alignment, since a real case's sequences need not be aligned),
the brain mask's Dice against the phantom's brain, the tumour Dice after
preparation against the clean case's, and the seconds (wall and CPU) from
reading the files to the prepared case, with the machine and its load. The
JSON is written after every case ("complete": false until the last).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._types import add_mirror_argument, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench-prepare", help="validate the Prepare step on synthetic raw heads and moved real "
                              "cases", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synthetic", default="glioma:10000,glioma:10001,metastasis:20000",
                   help="DOMAIN:SEED,... synthetic raw heads (default %(default)s); '' for none")
    p.add_argument("--real", type=Path, help="a folder of real co-registered cases (default: ../shared/real if present)")
    p.add_argument("--no-real", action="store_true", help="skip the real cases")
    p.add_argument("--model", help="tumour model: a version id or checkpoint (default: the shipped glioma-unet)")
    p.add_argument("--brain-net", type=Path, help="a brain-mask network file (default: the shipped one)")
    p.add_argument("--image-interpolation", choices=("bspline", "linear"), default="bspline",
                   help="how the sequences are resampled onto the working grid (default %(default)s)")
    p.add_argument("--no-segment", action="store_true", help="registration and brain only, no tumour Dice")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    add_mirror_argument(p)
    p.add_argument("-o", "--output", type=Path, help="write the results as JSON")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _synthetic(text: str) -> list[tuple[str, int]]:
    from ..errors import TumorsegError

    out = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        domain, _, seed = item.partition(":")
        if domain not in ("glioma", "metastasis") or not seed.isdigit():
            raise TumorsegError(f"--synthetic: expected DOMAIN:SEED (glioma or metastasis), got {item!r}")
        out.append((domain, int(seed)))
    return out


def run(args: argparse.Namespace) -> int:
    from ..evaluation.realdata import real_data_dir
    from ..io.atomic import atomic_write_json, check_writable
    from ..machine import describe_machine
    from ..prepare.pipeline import PrepareOptions
    from ..prepare.validate import run_validation
    from ..resources import resource_path
    from ._progress import run_with_progress
    from .prepare import command_line
    from .segment import load_segmenter

    if args.output is not None:
        check_writable(args.output, overwrite=args.overwrite)
    synthetic = _synthetic(args.synthetic)
    root = None if args.no_real else (args.real or real_data_dir())
    real = sorted(p for p in root.iterdir() if p.is_dir()) if root is not None and root.is_dir() else []
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    segmenter, model_id = None, None
    if not args.no_segment:
        model = args.model or str(resource_path("models", "glioma-unet.safetensors"))
        segmenter, model_id = load_segmenter(model, "cpu", mirror=args.mirror)
    options = PrepareOptions(brain_net=None if args.brain_net is None else str(args.brain_net),
                             image_interpolation=args.image_interpolation)
    header = {"command": command_line(args, "bench-prepare"), "model": model_id, "machine_before": describe_machine()}
    written = [False]

    def save(results: dict, complete: bool) -> None:
        # After every case, so an interrupted run keeps what it measured ("complete": false until the end).
        if args.output is not None:
            atomic_write_json(args.output, {**results, **header, "machine_after": describe_machine(),
                                            "complete": complete}, overwrite=args.overwrite or written[0])
            written[0] = True

    def after_case(report, _line) -> None:
        if report.data is not None:
            save(report.data, complete=False)

    results = run_with_progress(run_validation(synthetic, real, segmenter, options=options), quiet=args.quiet,
                                unit="case", also=after_case)
    save(results, True)
    print(json.dumps(results["summary"], indent=2))
    for part in ("synthetic", "real"):
        for row in results[part]:
            print(f"{part} {row['case']}: " + json.dumps({k: v for k, v in row.items() if k != 'case'}), file=sys.stderr)
    return 0
