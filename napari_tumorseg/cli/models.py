"""``tumorseg models list|activate|rollback|delete``: the model versions on this machine.

    tumorseg models list [--json]                 # DICE: before->after; budget: anchor Dice lost since the original / allowed
    tumorseg models activate VERSION [--force]    # --force for a version the guard rejected
    tumorseg models rollback                      # activate the active version's parent
    tumorseg models delete VERSION                # not the active one, not a shipped model

Versions live in the user's data folder (``TUMORSEG_HOME`` overrides it); the
shipped pretrained models are listed read-only.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand and its actions.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    parser = subparsers.add_parser(
        "models",
        help="list, activate, roll back or delete model versions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every version, the active one marked")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)
    activate = actions.add_parser("activate", help="make a version the active model")
    activate.add_argument("version")
    activate.add_argument("--force", action="store_true", help="also a version the forgetting guard rejected")
    activate.set_defaults(func=run_activate)
    rollback = actions.add_parser("rollback", help="activate the parent of the active version")
    rollback.set_defaults(func=run_rollback)
    delete = actions.add_parser("delete", help="delete a version (not the active one, not a shipped model)")
    delete.add_argument("version")
    delete.set_defaults(func=run_delete)


def _registry() -> Any:
    from ..models.registry import ModelRegistry

    return ModelRegistry()


def _dice_change(version: Any) -> str:
    """A short Dice summary: before -> after for adapted versions, the model card's ET Dice for shipped ones."""
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    parts = []
    for name, key in (("corr", "corrections"), ("anchor", "anchor")):
        scores = metrics.get(key)
        try:
            parts.append(f"{name} {float(scores['before']):.2f}->{float(scores['after']):.2f}")  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            continue  # absent, or not numbers: a version file is the user's to edit
    lineage = metrics.get("lineage")
    try:
        used, budget = float(lineage["cumulative_drop"]), float(lineage["budget"])  # type: ignore[index]
        parts.append(f"budget {max(used, 0.0):.3f}/{budget:.3f}")
    except (KeyError, TypeError, ValueError):
        pass
    for key, value in metrics.items():
        # Model cards: {"synthetic-glioma": {"ET": {"dice": {"mean": ...}}}, ...}
        try:
            parts.append(f"{key.removeprefix('synthetic-')} ET {float(value['ET']['dice']['mean']):.2f}")
        except (KeyError, TypeError, ValueError):
            continue
    return ", ".join(parts)


def run_list(args: argparse.Namespace) -> int:
    """Print the versions.

    Args:
        args: the parsed arguments of ``register``.
    """
    registry = _registry()
    versions = registry.list()
    if args.json:
        print(json.dumps({"root": str(registry.root), "versions": [v.to_dict() for v in versions]}, indent=2))
        return 0
    if not versions:
        print(f"no model versions in {registry.root} and no shipped pretrained model")
        return 0
    print(f"{'':2}{'VERSION':<26}{'STATUS':<12}{'ARCH':<7}{'METHOD':<9}{'PARENT':<26}DICE")
    for version in versions:
        mark = "* " if version.active else "  "
        detail = version.error if version.error else _dice_change(version)
        print(
            f"{mark}{version.id:<26}{version.status:<12}{version.arch or '-':<7}{version.method or '-':<9}"
            f"{version.parent or '-':<26}{detail}"
        )
    return 0


def run_activate(args: argparse.Namespace) -> int:
    """Activate a version.

    Args:
        args: the parsed arguments of ``register``.
    """
    version = _registry().activate(args.version, force=args.force)
    print(f"active: {version.id}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    """Activate the active version's parent.

    Args:
        args: the parsed arguments of ``register``.
    """
    version = _registry().rollback()
    print(f"active: {version.id}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete a version.

    Args:
        args: the parsed arguments of ``register``.
    """
    _registry().delete(args.version)
    print(f"deleted: {args.version}")
    return 0
