"""``tumorseg experiment``: reproduce the papers' experiments on the synthetic domains.

    tumorseg experiment meta-tune --out results/meta-tune            # paper 000, table (b), ~1 h on 2 CPU cores
    tumorseg experiment meta-tune --out /tmp/mt --quick              # smoke test, a few minutes
    tumorseg experiment lifelong --out results/lifelong              # paper 004, Figures 1 and 3
    tumorseg experiment lifelong --out /tmp/ll --quick
    tumorseg experiment effort --out results/effort                  # the radiologist's curve (issue 13)
    tumorseg experiment effort --out /tmp/ef --quick                 # smoke test, under two minutes
    tumorseg experiment ranking --out results/ranking                # do the suggestions find the errors? ~3 min
    tumorseg experiment render results/meta-tune                     # redraw results.md and PNGs from results.json

Each writes results.json, results.md and PNG figures into --out. Runs are
deterministic for a --seed (on the same device and thread count). Prepared
cases are cached in --cache-dir (default: the user cache folder), so a second
run starts at once. meta-tune uses the shipped glioma U-Net
(resources/models/glioma-unet.safetensors) unless --model names another
checkpoint; --quick without --model pretrains a tiny stand-in in-process.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ._adapt_options import NEGATABLE, SHARED, given

SHIPPED_MODEL = ("models", "glioma-unet.safetensors")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` subcommand and its experiments (options in ``_experiment_options``).

    Args:
        subparsers: the dispatcher's subparsers.
    """
    from . import _experiment_options as options

    p = subparsers.add_parser("experiment", help="reproduce the papers' experiments (meta-tune, lifelong)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    experiments = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    runners = ((options.add_meta_tune, run_meta_tune_command), (options.add_lifelong, run_lifelong_command),
               (options.add_effort, run_effort_command), (options.add_sequence, run_sequence_command),
               (options.add_ranking, run_ranking_command), (options.add_render, run_render_command))
    for add, run in runners:
        add(experiments, __doc__).set_defaults(func=run)


def _resolved_precision(args: argparse.Namespace, device: Any) -> str:
    """--precision with "auto" resolved on ``device``, so the results and the journal say which ran."""
    from ..errors import TumorsegError
    from ..models.precision import resolve_precision

    try:
        return resolve_precision(args.precision or "auto", device)
    except ValueError as error:
        raise TumorsegError(str(error)) from None


def command_line(argv_tail: list[str]) -> str:
    return shlex.join(["tumorseg", "experiment", *argv_tail])



def _explicit_command(args: argparse.Namespace, names: tuple[str, ...]) -> str:
    parts = [args.experiment, "--out", str(args.out)]
    for name in ("quick", "seed", "seeds", "shape", "device", "threads", "no_cache", *names):
        value = getattr(args, name, None)
        if value is False and name in NEGATABLE:
            parts.append("--no-" + name.replace("_", "-"))
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, tuple):
            parts += [flag, ",".join(map(str, value))]
        else:
            parts += [flag, str(value)]
    return command_line(parts)


def _cache(args: argparse.Namespace) -> tuple[Path | None, Any]:
    """(experiment cache folder or None, the anchor set's cache argument)."""
    if args.no_cache:
        return None, None
    if args.cache_dir is not None:
        return args.cache_dir / "experiments", args.cache_dir
    from ..adapt.anchors import default_cache_dir

    return default_cache_dir() / "experiments", True


def _changes(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    return {field: getattr(args, name) for name, field in mapping.items() if getattr(args, name, None) is not None}


def _drive(generator: Any) -> Any:
    from ._progress import run_with_progress

    return run_with_progress(generator, unit="run", postfix=lambda report: {"": report.detail[-60:]})


def _say_written(out: Path, results: dict) -> None:
    """The line every experiment ends with: where its results are, and how long it took."""
    print(f"tumorseg: wrote {out / 'results.md'} ({results['timings']['wall_time_s'] / 60:.1f} min)", file=sys.stderr)


def _load_model(args: argparse.Namespace, config: Any) -> tuple[Any, str]:
    from ..errors import TumorsegError
    from ..models.checkpoint import load_checkpoint
    from ..resources import resource_path

    if args.model is not None:
        return load_checkpoint(args.model).model, f"checkpoint {args.model}"
    shipped = resource_path(*SHIPPED_MODEL)
    if args.quick:
        from ..experiments.stand_in import StandInConfig, pretrain_stand_in

        stand_in = StandInConfig()
        print("tumorseg: --quick pretrains a tiny stand-in glioma U-Net (give --model to use another)", file=sys.stderr)
        return pretrain_stand_in(stand_in, config.shape), (
            f"tiny stand-in U-Net pretrained in-process on synthetic glioma at the quick grid ({stand_in.to_dict()})")
    if not shipped.is_file():
        raise TumorsegError(
            f"{shipped}: the shipped glioma model is missing; train it (tumorseg train) or give --model"
        )
    return load_checkpoint(shipped).model, f"shipped {shipped.name}"


def run_meta_tune_command(args: argparse.Namespace) -> int:
    from ..errors import TumorsegError
    from ..experiments.api import meta_tune_experiment
    from ..experiments.common import setup_torch
    from ..experiments.meta_tune import MetaTuneConfig

    device = setup_torch(args.threads, args.device)
    changes = _changes(args, {"seed": "seed", "seeds": "seeds", "shape": "shape", "patients": "patients",
                              "held_out": "held_out", "ks": "ks", "main_k": "main_k", "methods": "methods"})
    for name in ("sweep_patients", "sweep_seeds"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name) or None
    if args.no_replay:
        changes["replay"] = False
    try:
        config = MetaTuneConfig.quick(**changes) if args.quick else MetaTuneConfig(**changes)
    except ValueError as error:
        raise TumorsegError(str(error)) from None
    precision = _resolved_precision(args, device)
    crop = {} if args.crop is None else {"crop": args.crop}  # 0 = whole slices (default_config's convention)
    config.adapt_overrides = {method: {**config.adapt_overrides.get(method, {}), **crop, "precision": precision}
                              for method in ("naive", "passive", "active")}
    model, description = _load_model(args, config)
    command = _explicit_command(args, ("model", "patients", "held_out", "ks", "main_k", "sweep_patients",
                                       "sweep_seeds", "methods", "no_replay", "crop", "precision"))
    cache_dir, anchor_cache = _cache(args)
    generator = meta_tune_experiment(model, config, args.out, model_description=description, command=command,
                                     device=device, cache_dir=cache_dir, anchor_cache=anchor_cache,
                                     keep_journal=args.keep_journal)
    results = _drive(generator)
    _say_written(args.out, results)
    return 0


def run_lifelong_command(args: argparse.Namespace) -> int:
    from ..errors import TumorsegError
    from ..experiments.api import lifelong_experiment
    from ..experiments.common import setup_torch
    from ..experiments.lifelong import LifelongConfig

    device = setup_torch(args.threads, args.device)
    changes = _changes(args, {"seed": "seed", "seeds": "seeds", "shape": "shape", "train_patients": "train_patients",
                              "test_patients": "test_patients", "steps_per_patient": "steps_per_patient",
                              "large_batch": "large_batch", "small_batch": "small_batch", "settings": "settings",
                              "base_width": "base_width", "workers": "workers"})
    if args.no_availability:
        changes["availability"] = False
    try:
        config = LifelongConfig.quick(**changes) if args.quick else LifelongConfig(**changes)
    except ValueError as error:
        raise TumorsegError(str(error)) from None
    command = _explicit_command(args, ("train_patients", "test_patients", "steps_per_patient", "large_batch",
                                       "small_batch", "settings", "base_width", "workers", "no_availability"))
    cache_dir, _ = _cache(args)
    generator = lifelong_experiment(config, args.out, command=command, device=device, cache_dir=cache_dir)
    results = _drive(generator)
    _say_written(args.out, results)
    return 0


def _effort_bases(args: argparse.Namespace, config: Any, archs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The base networks of the effort experiment: the shipped ones, given checkpoints, or --quick stand-ins.

    ``archs`` (default: the ones the config's runs need) names the networks to load.
    """
    from ..errors import TumorsegError
    from ..experiments.effort import BaseModel
    from ..models.checkpoint import load_checkpoint
    from ..resources import resource_path

    bases = {}
    for arch in sorted(archs or config.archs((*config.runs, *(config.real_runs or ())))):
        given = getattr(args, arch, None)
        if given is not None:
            loaded = load_checkpoint(given)
            bases[arch] = BaseModel(loaded.model, loaded.preprocessing, f"checkpoint {given}")
            continue
        if args.quick:
            from ..experiments.stand_in import StandInConfig, pretrain_stand_in

            stand_in = StandInConfig(arch=arch)
            bases[arch] = BaseModel(pretrain_stand_in(stand_in, config.shape), None,
                                    f"tiny stand-in {arch} pretrained in-process ({stand_in.to_dict()})")
            continue
        shipped = resource_path("models", f"glioma-{arch}.safetensors")
        if not shipped.is_file():
            raise TumorsegError(f"{shipped}: the shipped glioma {arch} is missing; give --{arch}")
        loaded = load_checkpoint(shipped)
        bases[arch] = BaseModel(loaded.model, loaded.preprocessing, f"shipped {shipped.name}")
    return bases


def run_effort_command(args: argparse.Namespace) -> int:
    from ..errors import TumorsegError
    from ..experiments.api import effort_experiment
    from ..experiments.common import setup_torch
    from ..experiments.effort import EffortConfig

    device = setup_torch(args.threads, args.device)
    changes = _changes(args, {"seed": "seed", "seeds": "seeds", "shape": "shape", "patients": "patients",
                              "rounds": "rounds", "runs": "runs", "real_seeds": "real_seeds",
                              "real_runs": "real_runs"})
    if args.tune:
        changes["tune"] = True
    if args.flip:
        changes["flip"] = True
    if args.no_real:
        changes["real"] = False
    try:
        config = EffortConfig.quick(**changes) if args.quick else EffortConfig(**changes)
    except ValueError as error:
        raise TumorsegError(str(error)) from None
    overrides = {**given(args), "precision": _resolved_precision(args, device)}
    config.adapt_overrides = {m: {**config.adapt_overrides.get(m, {}), **overrides}
                              for m in ("naive", "active", "passive", "dycnn")}
    bases = _effort_bases(args, config)
    command = _explicit_command(args, ("unet", "dycnn", "patients", "rounds", "runs", "tune", "flip", "no_real",
                                       "real_seeds", "real_runs", *SHARED, "precision"))
    _, anchor_cache = _cache(args)
    results = _drive(effort_experiment(bases, config, args.out, command=command, device=device,
                                       anchor_cache=anchor_cache))
    _say_written(args.out, results)
    return 0


def run_sequence_command(args: argparse.Namespace) -> int:
    from ..errors import TumorsegError
    from ..experiments.api import sequence_experiment
    from ..experiments.common import setup_torch
    from ..experiments.sequence import SequenceConfig

    device = setup_torch(args.threads, args.device)
    changes = _changes(args, {"seed": "seed", "seeds": "seeds", "shape": "shape", "cases": "cases",
                              "variants": "variants"})
    try:
        config = SequenceConfig.quick(**changes) if args.quick else SequenceConfig(**changes)
    except ValueError as error:
        raise TumorsegError(str(error)) from None
    config.adapt_overrides = {**config.adapt_overrides, "precision": _resolved_precision(args, device)}
    model, description = _load_model(args, config)
    preprocessing = None
    if not (args.quick and args.model is None):
        from ..models.checkpoint import load_checkpoint
        from ..resources import resource_path

        preprocessing = load_checkpoint(args.model or resource_path(*SHIPPED_MODEL)).preprocessing
    command = _explicit_command(args, ("model", "cases", "variants", "precision"))
    _, anchor_cache = _cache(args)
    results = _drive(sequence_experiment(model, preprocessing, config, args.out, model_description=description,
                                         command=command, device=device, anchor_cache=anchor_cache))
    _say_written(args.out, results)
    return 0


def run_ranking_command(args: argparse.Namespace) -> int:
    from ..experiments.api import ranking_experiment
    from ..experiments.common import EFFORT_PATIENT_SEEDS, EFFORT_TUNE_SEEDS, seed_list, setup_torch
    from ..experiments.effort import EffortConfig

    device = setup_torch(args.threads, args.device)
    config = EffortConfig.quick() if args.quick else EffortConfig()  # only its grid matters: the --quick stand-in's
    base = _effort_bases(args, config, archs=("unet",))["unet"]
    first = (EFFORT_TUNE_SEEDS if args.tune else EFFORT_PATIENT_SEEDS) + (args.seed or 0)
    seeds = seed_list(first, args.patients or (2 if args.quick else 10))
    seed_range = ("the effort experiment's tuning range" if args.tune
                  else "the effort experiment's reported range: no default was tuned on it")
    command = _explicit_command(args, ("unet", "patients", "k", "tune", "no_real"))
    shape = config.shape if args.quick else args.shape
    results = _drive(ranking_experiment(base, seeds, args.out, ks=args.k or (2, 4, 10), seed_range=seed_range,
                                        command=command, device=device, shape=shape, real=not args.no_real))
    _say_written(args.out, results)
    return 0


def run_render_command(args: argparse.Namespace) -> int:
    from ..errors import TumorsegError
    from ..experiments.api import render

    try:
        paths = render(args.folder)
    except (OSError, ValueError, KeyError) as error:
        raise TumorsegError(f"{args.folder}: cannot render ({error})") from None
    for path in paths:
        print(path)
    return 0

