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
from collections.abc import Sequence

from .. import __version__
from ..errors import TumorsegError
from ..jobs import Cancelled

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    try:
        return int(args.func(args) or 0)
    except Cancelled as error:
        print(f"tumorseg: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TumorsegError as error:
        # The user's mistake, not ours: one line, no traceback.
        print(f"tumorseg: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
