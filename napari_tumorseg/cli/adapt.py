"""``tumorseg adapt``: learn from a few corrected slices; ``tumorseg bench-adapt``: time it.

    tumorseg adapt --method active --case CASE --corrected MASK.nii.gz --slices 70,75,80
    tumorseg adapt --case A --corrected A_fixed.nii.gz --slices 40,44 --case B --corrected SESSION_FOLDER

``--case``/``--corrected``/``--slices`` may be repeated, one group per case
(the Dy-CNN continual method takes the cases as batches arriving in that
order). ``--corrected`` is a mask on the case's grid (NIfTI, BraTS 2020 or
2023 labels; with ``--slices``) or a folder holding ``corrections.npz`` as the
napari plugin saves it (the slices are inside). Slice indices are axial, in
the canonical inferior-to-superior order napari's slider shows.

Adapts where ``--device`` says (default auto: the GPU when there is one,
as ``tumorseg segment`` does); out of memory there, it adapts on the CPU
with a one-line warning. The corrections of each case are kept beside the
model registry and replayed when another case is adapted (``--memory 0``
turns that off). Prints the new version's id on stdout (progress and the
before/after summary go to stderr) and writes the report with ``--report``. Exit status 0 when the
new version is active, 3 when the guard rejected it (kept, not active), 2 on
bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._adapt_options import add_shared_options, given
from ._types import positive_int

EXIT_REJECTED = 3


def _slice_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"slices must be comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one slice index")
    return values


def _add_hyperparameters(parser: argparse.ArgumentParser) -> None:
    from ..adapt.config import DEFAULT_METHOD, METHODS, PRECISIONS

    parser.add_argument(
        "--method", choices=METHODS, default=DEFAULT_METHOD, help="adaptation method (default: %(default)s)"
    )
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--first-order", action="store_true", help="meta-tune with first-order MAML (the default)")
    order.add_argument("--second-order", action="store_true",
                       help="meta-tune with exact second-order MAML (slower; collapsed in 5 %% of runs, see README)")
    parser.add_argument("--crop", type=int, help="train on random crops of this side (default: whole slices)")
    parser.add_argument("--seed", type=int, help="seed of task order, crops and flips")
    parser.add_argument("--memory", type=int, metavar="N", help="replay N slices of earlier cases' corrections at "
                        "every step (default 2; 0: off)")
    add_shared_options(parser)
    parser.add_argument("--device", default="auto", help="where to adapt: auto (CUDA, then MPS, then CPU), cpu, "
                        "cuda, cuda:1, mps")
    parser.add_argument("--precision", choices=PRECISIONS, help="arithmetic of the adaptation passes: fp32, bf16 "
                        "(mixed precision), or auto (the default: bf16 where the CPU has native bfloat16 units)")
    # torch's default (every core): on an idle 2-core machine two threads adapt 1.6x faster than one.
    # On a machine busy with other jobs, --threads 1 avoids OpenMP threads waiting on each other.
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's, one per core; "
                        "1 on a busy machine)")


def _config(args: argparse.Namespace) -> Any:
    from ..adapt.config import default_config

    return default_config(
        args.method,
        first_order=False if args.second_order else (args.first_order or None),
        crop=args.crop,
        seed=args.seed,
        memory_per_step=args.memory,
        precision=args.precision,
        **given(args),
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``adapt`` and ``bench-adapt`` subcommands.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    parser = subparsers.add_parser(
        "adapt",
        help="adapt the active model to corrected slices; prints the new version's id",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--case", type=Path, action="append", required=True, help="a case folder or NIfTI file")
    parser.add_argument(
        "--corrected",
        type=Path,
        action="append",
        required=True,
        help="corrected mask (NIfTI) or a folder with corrections.npz, one per --case",
    )
    parser.add_argument(
        "--slices",
        type=_slice_list,
        action="append",
        default=[],
        help="corrected axial slices of a NIfTI mask, e.g. 70,75,80, one per --case",
    )
    parser.add_argument(
        "--model",
        help="the version to adapt (id from `tumorseg models list`) or a checkpoint file; default: the active one",
    )
    parser.add_argument("--force", action="store_true", help="activate the new version even if the guard rejects it")
    parser.add_argument("--no-activate", action="store_true", help="keep the new version as a candidate")
    parser.add_argument("--report", type=Path, help="write the adaptation report here (JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --report file")
    parser.add_argument("--anchor-shape", type=_slice_list, help=argparse.SUPPRESS)  # tests: small synthetic anchors
    _add_hyperparameters(parser)
    parser.set_defaults(func=run)

    bench = subparsers.add_parser(
        "bench-adapt",
        help="time adapting 5 corrected slices and guarding the result (JSON)",
        description="Seconds to adapt and guard a model on corrected slices of a BraTS-size synthetic metastasis case.",
    )
    bench.add_argument("--slices", type=positive_int, default=5, help="corrected slices (default: %(default)s)")
    bench.add_argument("--model", help="a version id or checkpoint file (default: active, else a new base-16 U-Net)")
    bench.add_argument("--output", type=Path, help="also write the JSON here")
    bench.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    bench.add_argument("--repeats", type=positive_int, default=1,
                       help="adaptations timed one after another in this process; on a GPU the first pays for "
                            "loading its kernels, the later ones are what each next adaptation costs (default 1)")
    _add_hyperparameters(bench)
    bench.set_defaults(func=run_bench)


def _load_model(registry: Any, spec: str | None) -> tuple[Any, str | None]:
    """(LoadedCheckpoint, parent version id) for a version id, a checkpoint path, or the active version."""
    from ..models.checkpoint import load_checkpoint
    from ..models.external import KINDS, NOT_ADAPTABLE, model_kind

    kind = model_kind(spec) if spec is not None else None
    if kind is not None:
        from ..errors import ModelError

        raise ModelError(f"{spec}: cannot be adapted: {NOT_ADAPTABLE.format(kind=KINDS[kind])}")
    if spec is not None and Path(spec).suffix in (".safetensors", ".pt", ".pth"):
        return load_checkpoint(spec), None
    loaded, version = registry.load(spec)
    return loaded, version.id


def _read_corrected(case: Any, path: Path, slices: list[int] | None) -> tuple[Any, list[int]]:
    """The corrected labels on the case's canonical grid, and the corrected slice indices."""
    import numpy as np

    from ..errors import CaseError

    if path.is_dir():
        from ..workflow.session import CORRECTIONS_FILE, read_corrections

        store = path / CORRECTIONS_FILE
        try:
            indices, stored = read_corrections(store, case.shape)
        except FileNotFoundError:
            raise CaseError(path, f"holds no {CORRECTIONS_FILE}; give a corrected mask or a session folder") from None
        if not indices:
            raise CaseError(store, "holds no corrected slice")
        volume = np.zeros(case.shape, np.uint8)
        volume[indices] = stored
        chosen = slices or indices
        missing = sorted(set(chosen) - set(indices))
        if missing:
            raise CaseError(store, f"slices {missing} were not corrected")
        return volume, chosen
    from ..io.nifti import read_nifti_label

    labels, _, geometry = read_nifti_label(path)
    if not geometry.same_grid(case.geometry):
        raise CaseError(path, "the corrected mask is not on the case's voxel grid")
    if not slices:
        raise CaseError(path, "give --slices for a corrected mask: which axial slices were corrected")
    outside = sorted(z for z in slices if not 0 <= z < case.shape[0])
    if outside:
        raise CaseError(path, f"slices {outside} are outside the case's axial slices 0..{case.shape[0] - 1}")
    return case.geometry.to_canonical(labels), slices


def _corrections(args: argparse.Namespace, model_config: Any, preprocessing: Any, reference_slices: int) -> Any:
    from ..adapt.corrections import Corrections, case_corrections
    from ..adapt.labelfree import DEFAULT_UNLABELLED
    from ..errors import AdaptationError
    from ..io import read_case

    if len(args.corrected) != len(args.case) or len(args.slices) > len(args.case):
        raise AdaptationError("give one --corrected (and at most one --slices) per --case, in the same order")
    cases = []
    for index, (case_path, corrected_path) in enumerate(zip(args.case, args.corrected)):
        case = read_case(case_path)
        volume, slices = _read_corrected(case, corrected_path, args.slices[index] if index < len(args.slices) else None)
        cases.append(
            case_corrections(
                case,
                volume,
                slices,
                model_config=model_config,
                preprocessing=preprocessing,
                reference_slices=reference_slices,
                unlabelled_slices=DEFAULT_UNLABELLED,
            )
        )
    return Corrections(tuple(cases))


def run(args: argparse.Namespace) -> int:
    """Adapt, guard, store the version; print its id.

    Args:
        args: the parsed arguments of ``register``.
    """
    import torch

    from ..adapt.loaded import adapt_loaded_model
    from ..inference.devices import choose_device
    from ..io.atomic import atomic_write_text, check_writable
    from ..models.registry import ModelRegistry
    from ._progress import run_with_progress

    if args.report:
        check_writable(args.report, overwrite=args.overwrite, make_folder=True)  # before a version is stored
    if args.threads:
        torch.set_num_threads(args.threads)
    choose_device(args.device)  # an unknown or absent device is one line, before any work
    config = _config(args)
    registry = ModelRegistry()
    loaded, parent = _load_model(registry, args.model)
    if config.method == "dycnn":
        from ..adapt.continual import require_dycnn

        require_dycnn(loaded.model)  # before reading the corrections
    corrections = _corrections(args, loaded.config, loaded.preprocessing, config.reference_slices)
    shape = tuple(args.anchor_shape) if args.anchor_shape else None

    # The first run builds the synthetic source sets (cached afterwards): each shows as a phase.
    generator = adapt_loaded_model(
        loaded, corrections, config, registry=registry, parent_id=parent, anchor_shape=shape,
        force=args.force, auto_activate=not args.no_activate, device=args.device,
    )
    report = run_with_progress(generator).report
    for line in report.summary_lines():
        print(line, file=sys.stderr)
    if args.report:
        atomic_write_text(args.report, report.to_json() + "\n", overwrite=args.overwrite, make_folder=True)
    print(report.version_id)
    return 0 if report.status != "rejected" else EXIT_REJECTED


def run_bench(args: argparse.Namespace) -> int:
    """Run the adaptation benchmark and print its JSON.

    Args:
        args: the parsed arguments of ``register``.
    """
    from ..adapt.bench import benchmark_adaptation
    from ..inference.devices import choose_device
    from ..io.atomic import atomic_write_text, check_writable
    from ..models.registry import ModelRegistry

    if args.output:
        check_writable(args.output, overwrite=args.overwrite, make_folder=True)
    choose_device(args.device)
    model = _load_model(ModelRegistry(), args.model)[0].model if args.model else None
    result = benchmark_adaptation(
        args.method, model=model, slices=args.slices, threads=args.threads, config=_config(args), device=args.device,
        repeats=args.repeats,
    )
    text = json.dumps(result, indent=2)
    if args.output:
        atomic_write_text(args.output, text + "\n", overwrite=args.overwrite, make_folder=True)
    print(text)
    return 0
