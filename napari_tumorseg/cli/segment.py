"""``tumorseg segment``: one case in, its tumour mask out, in the input's geometry and label convention."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..io.case import MODALITIES
from ._types import positive_int
from .prepare import add_prepare_arguments, options_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment a case; writes the mask as NIfTI on the input's grid",
        description=__doc__,
    )
    parser.add_argument("case", type=Path, help="a case folder (BraTS, DICOM) or a NIfTI file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="MASK.nii.gz", help="where to write the mask")
    parser.add_argument(
        "--model",
        help="a model version id (`tumorseg models list`) or a .safetensors checkpoint; default: the active version",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="slices per batch (default: by device)")
    parser.add_argument(
        "--convention",
        choices=("input", "brats2020", "brats2023"),
        default="input",
        help="label numbering of the mask (default: the case's reference, else BraTS 2020)",
    )
    parser.add_argument("--order", help="for a 4D NIfTI: the modality of each volume, e.g. flair,t1,t1c,t2")
    parser.add_argument("--no-prepare", action="store_true",
                        help="never prepare: a scan that needs it (skull, sequences apart, thick slices) is refused")
    parser.add_argument("--grid", default="reference", choices=("reference", *MODALITIES),
                        help="for a prepared scan: the grid the mask is written on (default: the reference's)")
    add_prepare_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def load_segmenter(model: str | None, device: str, batch_size: int | None = None):
    """A Segmenter for a version id, a checkpoint file, or the active version."""
    from ..models.registry import ModelRegistry
    from ..inference.segmenter import Segmenter

    if model is not None and Path(model).suffix in (".safetensors", ".pt", ".pth"):
        return Segmenter.from_checkpoint(model, device=device, batch_size=batch_size), Path(model).stem
    loaded, version = ModelRegistry().load(model)
    segmenter = Segmenter(
        loaded.model, config=loaded.config, preprocessing=loaded.preprocessing, device=device, batch_size=batch_size
    )
    return segmenter, version.id


def run(args: argparse.Namespace) -> int:
    from ..errors import CaseError
    from ..io import read_sources, write_mask
    from ..io.atomic import check_writable
    from ..io.labels import LabelConvention
    from ..io.nifti import require_nifti_suffix
    from ..prepare.detect import detect
    from ._progress import run_with_progress

    # Refuse a bad output before minutes of work, not after.
    require_nifti_suffix(args.output)
    check_writable(args.output, overwrite=args.overwrite)
    order = tuple(m.strip() for m in args.order.split(",")) if args.order else None
    sources = read_sources(args.case, order=order)
    options = options_from(args)
    findings = detect(sources, reference=args.reference, check_alignment=options.check_alignment)
    if findings.needs_preparation and args.no_prepare:
        raise CaseError(None, findings.summary())
    segmenter, model_id = load_segmenter(args.model, args.device, args.batch_size)
    preparation = None
    if findings.needs_preparation:
        from ..prepare.pipeline import prepare_sources

        prepared = run_with_progress(prepare_sources(sources, options), quiet=args.quiet, unit="step")
        preparation, case = prepared.preparation, prepared.stripped()
    else:
        if args.grid != "reference":
            raise CaseError(args.case, "--grid applies to a scan that is prepared; this one needs no preparation")
        case = sources.assemble()
    result = run_with_progress(segmenter.run(case), quiet=args.quiet, unit="slice")
    convention = case.label_convention if args.convention == "input" else LabelConvention(args.convention)
    if preparation is None:
        written = write_mask(result.labels, case.geometry, args.output, convention=convention, overwrite=args.overwrite)
    else:
        from ..prepare.export import write_mask_on_grid

        written = write_mask_on_grid(result.labels, preparation, args.output, grid=args.grid, convention=convention,
                                     overwrite=args.overwrite)
        print(f"prepared: {'; '.join(preparation.steps) or 'nothing to do'}", file=sys.stderr)
    print(
        f"{written}: {model_id} on {result.device}, {result.slices_run} slices in {result.seconds:.1f} s, "
        f"{convention.value} labels",
        file=sys.stderr,
    )
    return 0
