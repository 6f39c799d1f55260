"""The ``tumorseg`` command: one subcommand per module in this package.

Each module ``napari_tumorseg/cli/<name>.py`` defines ``register(subparsers)``,
which adds its subparser and sets ``func`` to a callable taking the parsed
arguments and returning an exit status. Subcommand modules keep heavy imports
(torch, SimpleITK, napari) inside their functions so ``tumorseg --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import TumorsegError
from ..jobs import Cancelled

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (argparse adds the whole usage), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tumorseg",
        description="Brain-tumour segmentation that adapts from a few corrections.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return _run(args)
    finally:
        warnings.showwarning = shown


_PACKAGE = Path(__file__).resolve().parent.parent


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Our warnings as one line each; third-party libraries' notes (torch, nibabel) are not the user's concern."""
    if Path(filename).resolve().is_relative_to(_PACKAGE) or category.__module__.startswith("napari_tumorseg"):
        print(f"tumorseg: warning: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    """Run the subcommand; the user's mistakes become one line and exit status 2."""
    try:
        return int(args.func(args) or 0)
    except Cancelled as error:
        print(f"tumorseg: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TumorsegError as error:
        # The user's mistake, not ours: one line, no traceback.
        print(f"tumorseg: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("tumorseg: error: out of memory; close other programs, or use a smaller --batch-size", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tumorseg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `tumorseg info --json | head`: the reader left; that is not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
