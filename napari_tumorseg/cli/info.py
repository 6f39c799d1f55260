"""``tumorseg info PATH [--json]``: what a case holds — modalities, grid, orientation, labels.

Reads the case exactly as the napari reader would, so an error here is the
error the user would see there; bad input exits with status 2 and one line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    parser = subparsers.add_parser(
        "info",
        help="describe a case: modalities found and missing, shape, spacing, orientation, labels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, help="a case folder (BraTS or DICOM) or a NIfTI file")
    parser.add_argument(
        "--order",
        metavar="M1,M2,...",
        help="for a 4D NIfTI: the modality of each volume, e.g. flair,t1,t1c,t2",
    )
    parser.add_argument(
        "--modality", help="for a single 3D NIfTI whose name does not say it: flair, t1, t1c or t2"
    )
    parser.add_argument(
        "--seg", type=Path, help="a reference mask (for a folder: instead of the one found there)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the case and print its description.

    Args:
        args: the parsed arguments of ``register``.
    """
    from ..io import read_case

    order = [item.strip() for item in args.order.split(",") if item.strip()] if args.order else None
    # Each repair (NaN voxels set to 0...) shows as one "tumorseg: warning:" line (see cli.main).
    case = read_case(args.path, order=order, modality=args.modality, seg=args.seg)
    summary = describe(case)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_text(summary))
    return 0


def describe(case: Any) -> dict[str, Any]:
    """A JSON-ready summary of a Case.

    Args:
        case: a ``napari_tumorseg.io.Case``.
    """
    import numpy as np

    from ..io.labels import CLASS_ABBREVIATIONS

    geometry = case.geometry
    label_voxels = None
    if case.label is not None:
        counts = np.bincount(case.label.ravel(), minlength=len(CLASS_ABBREVIATIONS))
        label_voxels = {name: int(counts[value]) for value, name in sorted(CLASS_ABBREVIATIONS.items())}
    return {
        "name": case.name,
        "modalities": list(case.modalities),
        "missing_modalities": list(case.missing_modalities),
        "files": {role: str(path) for role, path in case.sources.items()},
        "shape": list(geometry.source_shape),
        "spacing_mm": [round(value, 6) for value in geometry.source_spacing],
        "orientation": geometry.source_axcodes,
        "canonical_shape": list(geometry.canonical_shape),
        "affine": [[round(value, 6) for value in row] for row in geometry.source_affine.tolist()],
        "reference_mask": case.label is not None,
        "label_convention": case.label_convention.value,
        "label_voxels": label_voxels,
    }


def format_text(summary: dict[str, Any]) -> str:
    """The summary as aligned lines for a terminal.

    Args:
        summary: the output of :func:`describe`.
    """
    from ..io.case import DISPLAY_NAMES

    def names(keys: list[str]) -> str:
        return ", ".join(DISPLAY_NAMES[key] for key in keys) or "none"

    shape = " x ".join(str(size) for size in summary["shape"])
    spacing = " x ".join(f"{value:g}" for value in summary["spacing_mm"])
    if summary["reference_mask"]:
        voxels = summary["label_voxels"]
        counts = ", ".join(f"{name} {count}" for name, count in voxels.items() if name != "BG")
        mask = f"present ({summary['files'].get('seg', '')}); voxels {counts}"
    else:
        mask = "absent"
    lines = [
        ("case", summary["name"]),
        ("modalities", names(summary["modalities"])),
        ("missing", names(summary["missing_modalities"])),
        ("shape", f"{shape} voxels (source axes)"),
        ("spacing", f"{spacing} mm"),
        ("orientation", summary["orientation"]),
        ("labels", f"{summary['label_convention']} convention"),
        ("reference mask", mask),
    ]
    lines.append(("files", ""))
    lines += [(f"  {role}", path) for role, path in summary["files"].items()]
    width = max(len(key) for key, _ in lines)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in lines)
