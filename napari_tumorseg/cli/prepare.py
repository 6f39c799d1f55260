"""``tumorseg prepare``: a scan straight from the scanner made ready for the tumour model.

    tumorseg prepare RAW_CASE -o PREPARED_FOLDER [--reference t1c] [--keep-skull]

The sequences are co-registered onto the reference (T1c unless told;
rigid, mutual information) and resampled onto its grid, or onto a 1 mm grid
over it when its voxels are far from 1 mm; the brain is extracted by the
brain-mask network when the head still has its skull. Written, atomically:
the prepared case in BraTS 2020 layout (skull-stripped unless
``--keep-skull``), ``brain_mask.nii.gz``, and ``prepare.json`` (what was
found, each sequence's transform and registration quality, grids, timings).
Nothing is replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..io.case import MODALITIES
from ._types import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("prepare", help="co-register the sequences, extract the brain, bring thick slices to "
                              "1 mm; writes the prepared case", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("case", type=Path, help="a case folder (BraTS names, DICOM series) or a NIfTI file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FOLDER", help="the prepared case's folder")
    add_prepare_arguments(p)
    p.add_argument("--keep-skull", action="store_true", help="write the images with the head (default: stripped)")
    p.add_argument("--order", help="for a 4D NIfTI: the modality of each volume, e.g. flair,t1,t1c,t2")
    p.add_argument("--overwrite", action="store_true", help="replace existing files in the folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    """The options ``prepare`` and ``segment`` share."""
    p.add_argument("--reference", choices=MODALITIES, help="the sequence the others are registered onto "
                   "(default: t1c, else the one with the smallest voxels)")
    p.add_argument("--brain", choices=("auto", "network", "none"), default="auto",
                   help="brain extraction: auto (when the head has its skull), network (always) or none")
    p.add_argument("--brain-net", type=Path, help="a brain-mask network file (default: the shipped one)")
    p.add_argument("--no-alignment-check", action="store_true",
                   help="trust that sequences on one grid are aligned (skip the quick registration check)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for registration and the networks")


def options_from(args: argparse.Namespace):
    from ..prepare.pipeline import PrepareOptions

    return PrepareOptions(reference=args.reference, check_alignment=not args.no_alignment_check, brain=args.brain,
                          brain_net=None if args.brain_net is None else str(args.brain_net), threads=args.threads)


def command_line(args: argparse.Namespace, name: str, positional: tuple[str, ...] = ()) -> str:
    """The command rebuilt from its parsed arguments (the same whether it ran from a shell or from Python)."""
    parts = ["tumorseg", name, *(str(getattr(args, p)) for p in positional)]
    for key, value in sorted(vars(args).items()):
        if key in (*positional, "func", "command") or value in (None, False):
            continue
        flag = "--" + key.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return shlex.join(parts)


def check_folder(folder: Path, name: str, modalities: list[str], has_seg: bool, overwrite: bool) -> None:
    """Refuse an output folder that cannot take the prepared case, before any work."""
    from ..errors import WriteError
    from ..io.atomic import check_writable
    from ..io.naming import case_file_name
    from ..prepare.export import BRAIN_MASK_NAME, REPORT_NAME

    if folder.exists() and not folder.is_dir():
        raise WriteError(folder, "cannot write: a file has that name")
    roles = [*modalities, *(["seg"] if has_seg else [])]
    for target in [*(folder / case_file_name(name, role, "brats2020") for role in roles),
                   folder / BRAIN_MASK_NAME, folder / REPORT_NAME]:
        check_writable(target, overwrite=overwrite, make_folder=True)


def run(args: argparse.Namespace) -> int:
    from ..io.reader import read_sources
    from ..prepare.export import describe_preparation, report, write_prepared
    from ..prepare.pipeline import prepare_sources
    from ._progress import run_with_progress

    _threads(args.threads)
    order = tuple(m.strip() for m in args.order.split(",")) if args.order else None
    sources = read_sources(args.case, order=order)
    check_folder(args.output, sources.name, list(sources.volumes), sources.seg is not None, args.overwrite)
    prepared = run_with_progress(prepare_sources(sources, options_from(args)), quiet=args.quiet, unit="step")
    write_prepared(prepared, args.output, report=report(prepared, command=command_line(args, "prepare", ("case",))),
                   keep_skull=args.keep_skull, overwrite=args.overwrite)
    print(describe_preparation(prepared.preparation), file=sys.stderr)
    print(args.output)
    return 0


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)
