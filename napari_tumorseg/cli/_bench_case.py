"""The volume ``tumorseg bench`` times, with and without ``--peer``: chosen from the arguments."""

from __future__ import annotations

import argparse


def bench_case(args: argparse.Namespace, real_default: bool) -> tuple[object, str]:
    """The case to time and its description: --case, --phantom, the real BraTS glioma (if asked), or synthetic."""
    from ..inference.benchmark import benchmark_case, phantom_case

    if args.case is not None:
        from ..io.reader import read_case

        return read_case(args.case), f"{args.case} (given with --case)"
    if args.phantom:
        return phantom_case(args.shape, args.seed), f"ellipsoid phantom (seed {args.seed})"
    if real_default:
        from ..evaluation.realdata import BENCH_CASE, real_case_dir

        folder = real_case_dir(BENCH_CASE)
        if folder is not None:
            from ..io.reader import read_case

            return read_case(folder), f"real BraTS 2023 glioma {BENCH_CASE} ({folder})"
    return benchmark_case(args.shape, args.seed)
