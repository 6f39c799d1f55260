"""``tumorseg synth``: write synthetic glioma or metastasis cases as BraTS folders.

    tumorseg synth --domain glioma --n 20 --seed 1000 --out data/glioma_test
    tumorseg synth --domain metastasis --n 5 --seed 0 --out data/mets --missing-prob 0.2
    tumorseg synth --bench                      # seconds per case, one core, as JSON
    tumorseg synth --realism ../shared/real --out docs/images   # phantoms beside real cases

Case ``k`` gets seed ``SEED + k`` and the folder ``OUT/<domain>_<seed:05d>/``
with ``<name>_flair/_t1/_t1ce/_t2/_seg.nii.gz`` (BraTS 2020 layout; ET = 4 on
disk). The same domain and seed always give the same case. The anatomy is the
ICBM152 2009a template (see resources/anatomy/LICENSE.txt).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._types import grid_shape

DOMAIN_CHOICES = ("glioma", "metastasis")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1), got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic glioma or metastasis cases (BraTS 2020 folders), or time the generator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--domain", choices=DOMAIN_CHOICES, help="tumour type of the cases")
    parser.add_argument("--n", type=int, default=1, help="number of cases (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first case (default 0)")
    parser.add_argument("--out", type=Path, help="parent folder of the case folders")
    parser.add_argument(
        "--size", "--shape", dest="shape", type=grid_shape, default=(155, 240, 240),
        help="Z,Y,X grid over the BraTS field of view (default 155,240,240 = 1 mm)",
    )
    parser.add_argument(
        "--missing-prob", type=_probability, default=0.0,
        help="chance that each modality is left out of a case, never all four (default 0)",
    )
    parser.add_argument("--layout", choices=("brats2020", "brats2023"), default="brats2020", help="file naming")
    parser.add_argument("--overwrite", action="store_true", help="replace existing case files")
    parser.add_argument(
        "--bench", action="store_true",
        help="instead of writing cases, time the generator on one core and print JSON",
    )
    parser.add_argument("--bench-seeds", type=int, default=5, help="cases per domain for --bench (default 5)")
    # synth.GENERATOR_VERSIONS, spelled out: importing the generator would slow every --help
    parser.add_argument("--generator-version", choices=("1", "2", "3", "4", "5", "6", "7"), default=None,
                        help="generator version (default: the newest)")
    parser.add_argument("--realism", type=Path, metavar="REAL",
                        help="a folder of real cases: write realism-slices.png and realism-histograms.png to --out")
    parser.set_defaults(func=run, _parser=parser)


def run(args: argparse.Namespace) -> int:
    """Write the cases (or run the benchmark); returns the exit status."""
    if args.bench:
        from ..synth.bench import run_isolated

        print(json.dumps(run_isolated(args.bench_seeds, args.shape), indent=2))
        return 0
    if args.realism is not None:
        return _realism(args)
    if args.domain is None or args.out is None:
        args._parser.error("--domain and --out are required (or --bench)")
    if args.n < 1 or args.seed < 0:
        args._parser.error("--n must be at least 1 and --seed non-negative")

    from ..synth.export import write_synthetic_cases
    from ._progress import run_with_progress

    seeds = range(args.seed, args.seed + args.n)
    job = write_synthetic_cases(
        args.domain, seeds, args.out,
        shape=args.shape, missing_prob=args.missing_prob, layout=args.layout, overwrite=args.overwrite,
        **({"version": args.generator_version} if args.generator_version else {}),
    )
    # Each folder on stdout as soon as it is written, so a pipeline can start on the first case.
    run_with_progress(job, unit="case", postfix=lambda report: {},
                      also=lambda report, line: print(report.data, flush=True))
    return 0


def _realism(args: argparse.Namespace) -> int:
    """Phantoms beside the real cases of a folder (each sub-folder a case, or the folder one case)."""
    from ..errors import CaseError
    from ..io.reader import read_case
    from ..synth.realism import realism_figures

    if args.out is None:
        args._parser.error("--realism needs --out (the folder for the figures)")
    folders = sorted(p for p in args.realism.iterdir() if p.is_dir()) if args.realism.is_dir() else []
    cases = []
    for folder in folders or [args.realism]:
        try:
            cases.append(read_case(folder))
        except CaseError:
            continue  # not a case folder (e.g. a folder of algorithm outputs)
    if not cases:
        print(f"tumorseg: error: {args.realism}: no readable case", file=sys.stderr)
        return 2
    for path in realism_figures(cases, args.out):
        print(path)
    return 0
