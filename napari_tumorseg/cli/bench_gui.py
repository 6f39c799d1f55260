"""``tumorseg bench-gui``: how responsive the viewer stays while the widget segments, adapts and runs each prompt.

Needs a display; on a server run ``xvfb-run -a tumorseg bench-gui``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-gui",
        help="GUI event-loop delay (p50/p99/max) while segmenting, adapting and prompting in the real widget (JSON)",
        description=__doc__,
    )
    parser.add_argument("--domain", choices=("glioma", "metastasis"), default="metastasis")
    parser.add_argument("--seed", type=int, default=20000, help="synthetic case seed (default: %(default)s)")
    parser.add_argument("--corrected", type=int, default=5, help="slices corrected before adapting")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--prompts", type=int, default=3, metavar="N",
                        help="run each correction prompt (remove, undo, grow, fill, propagate, redo) N times "
                             "after adapting, 0 for none (default: %(default)s)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.atomic import check_writable
    from .view import require_display

    if args.output:
        check_writable(args.output, overwrite=args.overwrite, make_folder=True)
    require_display("bench-gui")
    from .._qt.responsiveness import main

    return main(
        output=args.output, overwrite=args.overwrite,
        domain=args.domain, seed=args.seed, corrected=args.corrected, threads=args.threads,
        prompts=args.prompts,
    )
