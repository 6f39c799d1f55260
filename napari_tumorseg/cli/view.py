"""``tumorseg view``: the main job — napari with a case, the model's segmentation and the workflow.

Without a display (CI, a server) run it under Xvfb with ``--screenshot PATH``:
it shows the same window, writes a PNG of it and exits.
"""

from __future__ import annotations

import argparse
import os
import sys
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
        "--single", action="store_true",
        help="one sequence at a time (default: all four side by side, the segmentation over each)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="write a screenshot of the window to PNG and exit (for machines without a display)",
    )
    parser.set_defaults(func=run)


def require_display(command: str) -> None:
    """Refuse, in one line, to start Qt where there is no display (Qt would abort the process)."""
    from ..errors import TumorsegError

    if not sys.platform.startswith("linux") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs"):
        return
    if not os.environ.get("DISPLAY"):
        example = f"xvfb-run -a tumorseg {command}" + (" --screenshot out.png" if command == "view" else "")
        raise TumorsegError(
            f"tumorseg {command} needs a display and none is set (DISPLAY is empty); run it under Xvfb: `{example}`"
        )


def run(args: argparse.Namespace) -> int:
    from ..io import read_case
    from ..synth import make_case

    # Read before napari starts, so bad input fails with one line and no window.
    case = read_case(args.case) if args.case else make_case(args.sample, args.seed)
    if args.screenshot is not None:
        from ..io.atomic import check_writable

        check_writable(args.screenshot, overwrite=True, make_folder=True)
    require_display("view")

    from .._qt.app import launch

    return launch(case, segment=not args.no_segment, screenshot=args.screenshot, four_up=not args.single)
