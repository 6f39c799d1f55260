"""``tumorseg view``: the main job — napari with a case, the model's segmentation and the workflow.

Without a display (CI, a server) run it under Xvfb with ``--screenshot PATH``:
it shows the same window, writes a PNG of it and exits.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "view",
        help="open napari with a case (default: the synthetic sample) and the tumour-segmentation workflow",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("case", nargs="?", type=Path, help="a case folder or NIfTI file (default: a synthetic case)")
    parser.add_argument(
        "--sample",
        choices=("glioma", "metastasis"),
        default="glioma",
        help="which synthetic case to show when no CASE is given (default: glioma)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic case (default: 0)")
    parser.add_argument(
        "--no-segment", action="store_true", help="do not run the model on the case when it opens"
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="write a screenshot of the window to PNG and exit (for machines without a display)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import read_case
    from ..synth import make_case

    # Read before napari starts, so bad input fails with one line and no window.
    case = read_case(args.case) if args.case else make_case(args.sample, args.seed)

    from .._qt.app import launch

    return launch(case, segment=not args.no_segment, screenshot=args.screenshot)
