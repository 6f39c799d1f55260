"""Argument types shared by the subcommands: a bad value is one line from argparse (exit 2), before any work."""

from __future__ import annotations

import argparse
import math

# A synthetic grid larger than this would take gigabytes to make (BraTS is 155 x 240 x 240, 8.9 M voxels).
MAX_GRID_SIDE = 512
MAX_GRID_VOXELS = 1 << 24
MIN_GRID_SIDE = 8


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, threads, steps, repeats)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def grid_shape(text: str) -> tuple[int, int, int]:
    """``Z,Y,X`` (or ``ZxYxX``) of a synthetic grid, each side 8..512, at most 16.8 M voxels."""
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected Z,Y,X (e.g. 155,240,240), got {text!r}")
    if min(values) < MIN_GRID_SIDE or max(values) > MAX_GRID_SIDE:
        raise argparse.ArgumentTypeError(
            f"each side of the grid must be {MIN_GRID_SIDE}..{MAX_GRID_SIDE} voxels, got {text!r}"
        )
    if math.prod(values) > MAX_GRID_VOXELS:
        raise argparse.ArgumentTypeError(
            f"grid {text!r} has {math.prod(values):,} voxels; at most {MAX_GRID_VOXELS:,} (BraTS has 8,928,000)"
        )
    return values  # type: ignore[return-value]


def seed_range(text: str) -> str:
    """``A:B`` (or one seed): checked here, kept as text for the command line it reproduces."""
    from ..training.data import seed_range as parse

    try:
        parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_mirror_argument(parser: argparse.ArgumentParser) -> None:
    """``--mirror``: the flips whose softmax the segmenter averages (inference/mirroring.py)."""
    from ..inference.mirroring import MIRROR_CHOICES

    parser.add_argument(
        "--mirror", choices=MIRROR_CHOICES, default=None,
        help="average the network over in-plane flips: lr, ap, all (4 passes), none; "
             "default auto = all on a GPU, none on the CPU",
    )


def add_keep_uncertain_argument(parser: argparse.ArgumentParser) -> None:
    """``--keep-uncertain``: keep the small uncertain tumour components the clean-up removes (postprocess.py)."""
    from ..inference.postprocess import uncertain_rule_text

    parser.add_argument(
        "--keep-uncertain", action="store_true",
        help=f"keep the small tumour components the network is unsure of ({uncertain_rule_text()}; left out by default)",
    )


def uncertain_option(args: argparse.Namespace) -> dict[str, float]:
    """The Segmenter's keyword for ``--keep-uncertain`` (none: the default clean-up)."""
    return {"uncertain_max_ml": 0.0} if getattr(args, "keep_uncertain", False) else {}
