"""``tumorseg bench-prompts``: seconds per correction (click, fill, propagate, stroke, undo) on a BraTS-size case.

    tumorseg bench-prompts --threads 2                 # a synthetic metastasis, the active model
    tumorseg bench-prompts --case CASE --repeats 10 -o prompts.json

The case is segmented first (untimed) with the model; each action is then
timed as the dock runs it: the prompt's computation (in the dock, off the
GUI thread) and the review state applying it (labels, corrections file, undo
step: on the GUI thread), each repeat undone before the next. The target:
every action done in at most 0.5 s on 2 CPU cores. The JSON has every
figure and the machine it ran on, load average included.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._types import grid_shape, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-prompts",
        help="time each correction prompt, stroke and undo on a BraTS-size case (target 0.5 s)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--case", type=Path, help="a case folder or file (default: synthetic metastasis 20001)")
    parser.add_argument("--shape", type=grid_shape, default=(155, 240, 240), help="Z,Y,X of the synthetic case")
    parser.add_argument("--model", help="a model version id or checkpoint (default: the active version)")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="runs of each action (default 5)")
    parser.add_argument("--reach", type=positive_int, default=3, help="slices on each side to propagate to")
    parser.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.atomic import atomic_write_json, check_writable
    from ..machine import describe_machine
    from ..workflow.bench_prompts import bench_prompts, format_table
    from .segment import load_segmenter

    if args.output is not None:
        check_writable(args.output, overwrite=args.overwrite)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.case is not None:
        from ..io import read_case

        case = read_case(args.case)
    else:
        from ..synth import make_case

        case = make_case("metastasis", 20001, shape=args.shape)
    segmenter, model_id = load_segmenter(args.model, "cpu")
    figures = bench_prompts(case, segmenter, repeats=args.repeats, reach=args.reach)
    figures.update(model=model_id, command=" ".join(["tumorseg", *sys.argv[1:]]), machine=describe_machine("cpu"))
    print(f"{case.name} {'x'.join(map(str, case.shape))}, {model_id}, {figures['lesions']} lesion(s), "
          f"load average {figures['machine']['load_average']}")
    print(format_table(figures))
    if args.output is not None:
        atomic_write_json(args.output, figures, overwrite=args.overwrite, make_folder=True)
    return 0
