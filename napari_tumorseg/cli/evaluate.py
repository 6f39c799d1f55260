"""``tumorseg evaluate``: Dice, HD95 and volumes for WT, TC and ET, per case and summarised.

    tumorseg evaluate CASES_FOLDER --shipped --figures figs/   # real cases, every shipped model
    tumorseg evaluate --synthetic glioma --seeds 10000:10020 --model glioma-unet --model glioma-dycnn
    tumorseg evaluate --synthetic glioma --seeds 10000:10020 --missing t1,t1c   # T2 + FLAIR only
    tumorseg evaluate ... --json results.json --record     # also add the results to the models' cards

A folder may mix cases with and without a reference mask. With a reference:
Dice and HD95 per region on the whole volume (tumour marked anywhere counts)
and predicted against reference volume (ml). A region the reference lacks
(no enhancing tumour in a lower-grade glioma) is reported as "n/a" with the
volume the model marked there, and left out of the means; the BraTS
convention's number (Dice 1 or 0) is kept in the JSON. Without a reference:
the predicted volume per class and the connected components. ``--figures``
draws each case's representative slices with every model's prediction.

``--model`` is a checkpoint file or a version id (``tumorseg models list``);
repeat it to compare models on the same cases; ``--shipped`` adds every model
in ``resources/models``; the default is the active version (the shipped
U-Net until another is activated). Per-case lines go to stdout as each case
finishes, then the summary of each model.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from ..io.case import MODALITIES


def _modalities(text: str) -> tuple[str, ...]:
    from ..io.naming import normalize_modality

    found = []
    for part in text.split(","):
        if not part.strip():
            continue
        key = normalize_modality(part.strip())
        if key not in MODALITIES:
            raise argparse.ArgumentTypeError(f"unknown modality {part!r}; expected some of {', '.join(MODALITIES)}")
        found.append(key)
    if not found:
        raise argparse.ArgumentTypeError("give at least one modality")
    return tuple(dict.fromkeys(found))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    from ._types import add_keep_uncertain_argument, add_mirror_argument, grid_shape, positive_int, seed_range

    p = subparsers.add_parser("evaluate", help="Dice, HD95 and volumes (WT, TC, ET) per case, and a summary",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="?", type=Path,
                   help="a folder of case folders, with or without reference masks (or one case)")
    p.add_argument("--synthetic", choices=["glioma", "metastasis"], help="evaluate on synthetic cases instead")
    p.add_argument("--seeds", type=seed_range, help="synthetic seeds, e.g. 10000:10020")
    p.add_argument("--shape", type=grid_shape, help="synthetic grid Z,Y,X (default: the BraTS 1 mm grid)")
    # synth.GENERATOR_VERSIONS, spelled out: importing the generator would slow every --help
    p.add_argument("--generator-version", choices=("1", "2", "3", "4", "5", "6", "7"), default=None,
                   help="synthetic generator version (default: the shipped models')")
    p.add_argument("--model", action="append", help="checkpoint file or version id; repeat to compare")
    p.add_argument("--shipped", action="store_true", help="also every shipped model (resources/models)")
    p.add_argument("--missing", type=_modalities, default=(), help="modalities to remove first, e.g. t1,t1c")
    p.add_argument("--lesion-wise", action="store_true", help="also BraTS 2023 lesion-wise Dice and HD95")
    p.add_argument("--figures", type=Path, help="a folder for one PNG of representative slices per case")
    p.add_argument("--figure-slices", type=positive_int, default=8, help="axial slices per figure row (default 8)")
    p.add_argument("--json", type=Path, help="write every score, volume, summary and the machine here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--record", action="store_true", help="add the summary to each checkpoint's model card")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--batch-size", type=positive_int, help="slices per batch")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    add_mirror_argument(p)
    add_keep_uncertain_argument(p)
    p.set_defaults(func=run)


def _load(
    spec: str | None, device: str, batch_size: int | None, mirror: str | None, **cleanup: float
) -> tuple[str, Any, Path | None]:
    """(name, Segmenter, checkpoint path or None) for a file, a version id, or the active version."""
    from ..inference.segmenter import Segmenter
    from ..models.checkpoint import load_checkpoint

    if spec is not None and Path(spec).suffix in (".safetensors", ".pt", ".pth"):
        loaded, name, path = load_checkpoint(spec), Path(spec).stem, Path(spec)
    else:
        from ..models.registry import ModelRegistry

        loaded, version = ModelRegistry().load(spec)
        name, path = version.id, Path(version.weights) if version.read_only else None
    segmenter = Segmenter(loaded.model, config=loaded.config, preprocessing=loaded.preprocessing, device=device,
                          batch_size=batch_size, probabilities="none", mirror=mirror, **cleanup)
    return name, segmenter, path


def _distinct_names(loaded: list[tuple[str, Any, Path | None]]) -> list[tuple[str, Any, Path | None]]:
    """Models sharing a name (a retrained copy beside the shipped one) are told apart by their file."""
    names = [name for name, _, _ in loaded]
    return [(f"{name} ({path})" if names.count(name) > 1 and path is not None else name, segmenter, path)
            for name, segmenter, path in loaded]


def _model_specs(args: argparse.Namespace) -> list[str | None]:
    """The ``--model`` specs, then (``--shipped``) every shipped checkpoint not named already; [None] for the active one."""
    specs: list[str | None] = list(args.model or [])
    if args.shipped:
        from ..errors import ModelError
        from ..resources import resources_root

        try:
            shipped = sorted((resources_root() / "models").glob("*.safetensors"))
        except FileNotFoundError as error:
            raise ModelError(str(error)) from None
        if not shipped:
            raise ModelError("--shipped: this install has no shipped models (resources/models)")
        named = {Path(s).resolve() for s in specs if s and Path(s).is_file()}
        specs += [str(path) for path in shipped if path.resolve() not in named]
    return specs or [None]


def _cases(args: argparse.Namespace) -> tuple[Any, int, str, str]:
    """(lazy cases, count, description, card key)."""
    from ..errors import TumorsegError
    from ..training.data import seed_range

    if (args.cases is None) == (args.synthetic is None):
        raise TumorsegError("give either a folder of cases or --synthetic DOMAIN --seeds A:B")
    if args.synthetic is not None:
        if not args.seeds:
            raise TumorsegError("--synthetic needs --seeds, e.g. --seeds 10000:10020")
        from ..synth.generate import GENERATOR_VERSION, iter_cases

        seeds = seed_range(args.seeds)
        version = args.generator_version or GENERATOR_VERSION
        kwargs = {"shape": args.shape, "version": version} if args.shape else {"version": version}
        description = (f"synthetic {args.synthetic} seeds {args.seeds} (generator version {version}"
                       + (f", shape {'x'.join(map(str, args.shape))}" if args.shape else ", BraTS 1 mm grid") + ")")
        return iter_cases(args.synthetic, seeds, **kwargs), len(seeds), description, f"synthetic-{args.synthetic}"
    from ..io.folders import looks_like_case
    from ..io.reader import read_case
    from ..training.sources import case_folders

    folders = [args.cases] if looks_like_case(args.cases) else case_folders(args.cases)
    cases = (read_case(folder) for folder in folders)  # one at a time: a BraTS case is ~150 MB in memory
    return cases, len(folders), f"{len(folders)} cases in {args.cases}", args.cases.resolve().name


def command_line(args: argparse.Namespace) -> str:
    parts = ["tumorseg", "evaluate"] + ([str(args.cases)] if args.cases else [])
    for name in ("synthetic", "seeds", "shape", "generator_version", "model", "shipped", "missing", "lesion_wise",
                 "device", "threads", "mirror", "keep_uncertain"):
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value in (None, False, (), []):
            continue
        if value is True:
            parts.append(flag)
        elif name == "model":
            for spec in value:
                parts += [flag, spec]
        else:
            parts += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return shlex.join(parts)


def _machine(device: str) -> dict[str, Any]:
    """The hardware record of the cards (load average included: the machine may be shared), with the time."""
    import datetime

    from ..machine import describe_machine

    return {**describe_machine(device),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _run_evaluation(args: argparse.Namespace, segmenters: dict[str, Any], cases: Any) -> Any:
    from ..errors import TumorsegError
    from ..evaluation.report import case_line
    from ..evaluation.run import evaluate_cases

    from ..jobs import drive

    generator = evaluate_cases(segmenters, cases, missing=args.missing, lesion_wise=args.lesion_wise,
                               figures=args.figures, figure_slices=args.figure_slices)
    try:
        return drive(generator, on_progress=lambda progress: print(case_line(progress.data), flush=True))
    except ValueError as error:
        raise TumorsegError(str(error)) from None


def _record(loaded: list[tuple[str, Any, Path | None]], key: str, document: dict[str, Any]) -> None:
    from ..training.card import record_evaluation

    for name, _, path in loaded:
        if path is None:
            print(f"tumorseg: {name} is not a checkpoint file with a card; not recorded", file=sys.stderr)
            continue
        results = document["models"][name]
        record = {"description": document["set"], "cases": document["cases"], "missing": document["missing"],
                  "command": document["command"], "cleanup": document["cleanup"], "hardware": document["hardware"],
                  **{k: results[k] for k in ("summary", "summary_brats", "reference_empty", "per_case")}}
        record_evaluation(path, key, record)
        print(f"tumorseg: recorded '{key}' in the card of {path}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import TumorsegError
    from ..evaluation.report import summary_lines
    from ..io.atomic import atomic_write_text, check_writable

    if args.json:
        check_writable(args.json, overwrite=args.overwrite, make_folder=True)  # before the run, not after
    if args.threads:
        torch.set_num_threads(args.threads)
    cases, count, description, key = _cases(args)
    if args.missing:
        left = [m for m in MODALITIES if m not in args.missing]
        if not left:
            raise TumorsegError("--missing removes every modality")
        description += f", only {'+'.join(left)}"
        key += "-only-" + "+".join(left)
    from ._types import uncertain_option

    cleanup = uncertain_option(args)
    loaded = _distinct_names(
        [_load(spec, args.device, args.batch_size, args.mirror, **cleanup) for spec in _model_specs(args)]
    )
    segmenters = {name: segmenter for name, segmenter, _ in loaded}
    mirror = getattr(next(iter(segmenters.values())), "mirror", "none")
    if mirror != "none":  # a card keeps flip-averaged figures apart from one-pass ones
        description += f", softmax averaged over flips ({mirror})"
        key += f"-mirror-{mirror}"
    if cleanup:  # a card keeps these apart from the masks the plugin shows
        description += ", small uncertain components kept"
        key += "-keep-uncertain"
    print(f"# {description}; models: {', '.join(segmenters)}", flush=True)
    evaluation = _run_evaluation(args, segmenters, cases)
    device = str(next(iter(segmenters.values())).device)
    document = {"set": description, "cases": count, "missing": list(args.missing), "command": command_line(args),
                "cleanup": next(iter(segmenters.values())).cleanup, "hardware": _machine(device),
                "models": evaluation.to_dict(), "figures": evaluation.figures}
    for name in segmenters:
        print()
        print("\n".join(summary_lines(evaluation, name)))
    for case, path in evaluation.figures.items():
        print(f"figure of {case}: {path}")
    if args.json:
        atomic_write_text(args.json, json.dumps(document, indent=2, allow_nan=False) + "\n",
                          overwrite=args.overwrite, make_folder=True)
    if args.record:
        _record(loaded, key, document)
    return 0
