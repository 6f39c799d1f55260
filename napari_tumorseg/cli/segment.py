"""``tumorseg segment``: one case in, its tumour mask out, in the input's geometry and label convention."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..io.case import MODALITIES
from ._types import add_keep_uncertain_argument, add_mirror_argument, positive_int, uncertain_option
from .prepare import add_prepare_arguments, options_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment a case; writes the mask as NIfTI on the input's grid",
        description=__doc__,
    )
    parser.add_argument("case", type=Path, help="a case folder (BraTS, DICOM) or a NIfTI file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="MASK.nii.gz",
                        help="where to write the mask: .nii/.nii.gz, or .dcm for a DICOM SEG (cases read from DICOM)")
    parser.add_argument(
        "--model",
        help="a model version id (`tumorseg models list`), a .safetensors checkpoint, or your own model: an .onnx "
        "or TorchScript file with its .json description, or a MONAI bundle folder; default: the active version",
    )
    parser.add_argument("--trust-model", action="store_true",
                        help="allow a TorchScript model, which runs code stored in its file (only for files you trust)")
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
    add_mirror_argument(parser)
    add_keep_uncertain_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def load_segmenter(
    model: str | None, device: str, batch_size: int | None = None, trust: bool = False, mirror: str | None = None,
    **cleanup: float,
):
    """A Segmenter for a version id, a checkpoint file, an imported model, or the active version.

    ``mirror`` (see inference/mirroring.py) and ``cleanup`` (the Segmenter's ``uncertain_max_ml`` and
    ``uncertain_mean``, see inference/postprocess.py) apply to our own networks; an imported model runs as it is.
    """
    from ..inference.segmenter import Segmenter
    from ..models.external import model_kind
    from ..models.registry import ModelRegistry

    if model is not None and model_kind(model) is not None:
        from ..inference.external import ImportedSegmenter
        from ..models.external import load_imported

        imported = load_imported(model, trust=trust)
        return ImportedSegmenter(imported, device=device), imported.label
    if model is not None and Path(model).suffix in (".safetensors", ".pt", ".pth"):
        return (Segmenter.from_checkpoint(model, device=device, batch_size=batch_size, mirror=mirror, **cleanup),
                Path(model).stem)
    loaded, version = ModelRegistry().load(model)
    segmenter = Segmenter(
        loaded.model, config=loaded.config, preprocessing=loaded.preprocessing, device=device, batch_size=batch_size,
        mirror=mirror, **cleanup,
    )
    return segmenter, version.id


def run(args: argparse.Namespace) -> int:
    from ..errors import CaseError
    from ..io import read_sources
    from ..io.atomic import check_writable
    from ..io.dicom_seg import is_dicom_seg_path
    from ..io.nifti import require_nifti_suffix
    from ..prepare.detect import detect
    from ._progress import run_with_progress

    # Refuse a bad output before minutes of work, not after.
    seg = is_dicom_seg_path(args.output)
    if not seg:
        require_nifti_suffix(args.output)
    check_writable(args.output, overwrite=args.overwrite)
    order = tuple(m.strip() for m in args.order.split(",")) if args.order else None
    sources = read_sources(args.case, order=order)
    options = options_from(args)
    findings = detect(sources, reference=args.reference, check_alignment=options.check_alignment)
    if findings.needs_preparation and args.no_prepare:
        raise CaseError(None, findings.summary())
    if not findings.needs_preparation and args.grid != "reference":
        raise CaseError(args.case, "--grid applies to a scan that is prepared; this one needs no preparation")
    case = None if findings.needs_preparation else sources.assemble()
    if seg and not sources.dicom_series:  # refused now, not after the segmentation
        raise CaseError(args.case, "a DICOM SEG needs a case read from DICOM series; export NIfTI for this case")
    segmenter, model_id = load_segmenter(
        args.model, args.device, args.batch_size, trust=args.trust_model, mirror=args.mirror, **uncertain_option(args)
    )
    preparation = None
    if case is None:
        from ..prepare.pipeline import prepare_sources

        prepared = run_with_progress(prepare_sources(sources, options), quiet=args.quiet, unit="step")
        preparation, case = prepared.preparation, prepared.stripped()
    for warning in (missing_sequences_warning(case), getattr(segmenter, "spacing_warning", lambda _: "")(case)):
        if warning:
            print(f"tumorseg: warning: {warning}", file=sys.stderr)
    result = run_with_progress(segmenter.run(case), quiet=args.quiet, unit="slice")
    written, labels = _write(args, result.labels, case, preparation, seg)
    if preparation is not None:
        print(f"prepared: {'; '.join(preparation.steps) or 'nothing to do'}", file=sys.stderr)
    print(f"{written}: {model_id} on {result.device}, {result.slices_run} slices in {result.seconds:.1f} s, {labels}",
          file=sys.stderr)
    if result.uncertain_removed:
        from ..inference.postprocess import uncertain_rule_text

        print(f"left out {result.uncertain_removed} small uncertain tumour component(s) ({uncertain_rule_text()}); "
              "--keep-uncertain keeps them", file=sys.stderr)
    return 0


def missing_sequences_warning(case) -> str:
    """A line naming the sequences a case lacks ("" when it has all four).

    The models segment any non-empty subset, but each region is read mainly from some sequences (oedema on
    FLAIR and T2, enhancement on T1c): a mask from fewer sequences is less accurate, and the user should know.
    """
    from ..io.case import DISPLAY_NAMES, MODALITIES

    missing = [DISPLAY_NAMES[m] for m in MODALITIES if m not in case.images]
    if not missing:
        return ""
    present = [DISPLAY_NAMES[m] for m in MODALITIES if m in case.images]
    return (f"{case.name} has no {', '.join(missing)}: segmenting from {', '.join(present)} only (oedema is read "
            "mainly from FLAIR and T2, enhancement from T1c), so expect a less accurate mask")


def _write(args: argparse.Namespace, labels, case, preparation, seg: bool) -> tuple[Path, str]:
    """Write the mask where and how the user asked; returns the file and a few words on its labels."""
    from ..io import write_mask
    from ..io.dicom_seg import write_dicom_seg
    from ..io.labels import LabelConvention

    if seg:
        if preparation is not None:  # back onto the referenced series' own grid
            from ..prepare.export import write_dicom_seg_on_series

            written = write_dicom_seg_on_series(labels, preparation, case, args.output, overwrite=args.overwrite)
        else:
            written = write_dicom_seg(labels, case, args.output, overwrite=args.overwrite)
        return written, "DICOM SEG, segments 1 NCR, 2 ED, 3 ET"
    convention = case.label_convention if args.convention == "input" else LabelConvention(args.convention)
    if preparation is None:
        written = write_mask(labels, case.geometry, args.output, convention=convention, overwrite=args.overwrite)
    else:
        from ..prepare.export import write_mask_on_grid

        written = write_mask_on_grid(labels, preparation, args.output, grid=args.grid, convention=convention,
                                     overwrite=args.overwrite)
    return written, f"{convention.value} labels"
