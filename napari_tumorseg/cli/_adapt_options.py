"""The adaptation settings ``tumorseg adapt``, ``bench-adapt`` and ``experiment effort`` share, declared once.

Each option is the ``AdaptConfig`` field of the same name, so one table declares the options, reads them
back (``given``) and names them in a recorded command line (``SHARED``). Defaults shown in the help are read
from ``AdaptConfig`` where the field has one, so the help cannot drift from what runs.
"""

from __future__ import annotations

import argparse
from typing import Any

# (field, what it sets, where its default was decided); the default itself is read from AdaptConfig.
_TABLE: tuple[tuple[str, str, str | None], ...] = (
    ("steps", "optimisation or meta steps", None),
    ("lr", "learning rate / meta step beta", None),
    ("inner_lr", "meta-tune inner step alpha", None),
    ("tolerance", "largest anchor Dice drop the guard accepts against the parent; the held-out slices may drop "
     "by max(this, 0.05)", None),
    ("budget", "largest anchor Dice drop the guard accepts against the original model, over all versions since it",
     None),
    ("max_shrink", "also refuse (step back from) a version that marks this share less of a region on the anchor "
     "set than its parent, e.g. 0.1", "docs/results/anchor-blind-spot"),
    ("replay", "synthetic glioma slices replayed against forgetting; 0: off", None),
    ("replay_by_case", "draw each step's replayed slices from one case, one batch through the network",
     "docs/results/replay-by-case"),
    ("layers", "the parameters adapted: all, or decoder (the encoder keeps its trained features)",
     "docs/results/decoder-only"),
    ("replay_distill", "also pull the replayed synthetic slices towards the parent version's softmax, with this "
     "weight; 0: labels only", "docs/results/replay-distill"),
    ("replay_faint", "replay a faintly enhancing synthetic glioma in place of the second brightly enhancing one",
     "docs/results/faint-replay"),
    ("keep_absent", "after adapting, move the output bias of each tumour class no corrected slice holds, so the "
     "new version marks as much of it on the anchor set as its parent", "docs/results/keep-absent"),
    ("keep_absent_faint", "with --keep-absent, also keep what the parent marks on phantoms whose tumour enhances "
     "faintly (the larger shift of the two)", "docs/results/keep-absent-faint"),
)
# Set per method (``adapt.config._METHOD_DEFAULTS``), so the help names no one value.
_PER_METHOD = ("steps", "lr", "inner_lr")

SHARED: tuple[str, ...] = tuple(field for field, _, _ in _TABLE)
# The options given as --NAME / --no-NAME (a recorded command line writes their "no" too).
NEGATABLE: tuple[str, ...] = ("replay_by_case", "replay_faint", "keep_absent", "keep_absent_faint")


def _argument(field: str) -> dict[str, Any]:
    """argparse's keywords for ``field``, help aside."""
    from ..adapt.config import LAYERS

    if field in NEGATABLE:
        return {"action": argparse.BooleanOptionalAction, "default": None}
    if field == "layers":
        return {"choices": LAYERS}
    if field == "steps":
        from ._types import positive_int

        return {"type": positive_int}
    if field == "replay":
        return {"type": int, "metavar": "N"}
    if field == "max_shrink":
        return {"type": float, "metavar": "SHARE"}
    if field == "replay_distill":
        return {"type": float, "metavar": "W"}
    return {"type": float}


def add_shared_options(parser: argparse.ArgumentParser, *, every_method: bool = False) -> None:
    """Add the shared adaptation options to ``parser``.

    Args:
        parser: a subcommand's parser.
        every_method: the options set every method of an experiment run (the help says so, and that the
            default is the plugin's).
    """
    from ..adapt.config import AdaptConfig

    defaults = AdaptConfig()
    for field, what, decided in _TABLE:
        shown = "the method's" if field in _PER_METHOD else _shown(getattr(defaults, field))
        if decided:
            shown = f"{shown}; {decided}"
        if every_method:
            what = f"{what}, in every method"
            shown = "each method's, as in the plugin" if field in _PER_METHOD else f"the plugin's, {shown}"
        # argparse formats help with %: a literal percent sign must be doubled.
        help_text = f"{what} (default: {shown})".replace("%", "%%")
        parser.add_argument("--" + field.replace("_", "-"), help=help_text, **_argument(field))


def _shown(value: Any) -> str:
    """A default as the help says it: on / off, a number, a name."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "on"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The shared options the user set (the rest keep the method's or the plugin's default)."""
    return {field: getattr(args, field) for field in SHARED if getattr(args, field) is not None}
