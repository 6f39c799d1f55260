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

SHIPPED_MODEL = ("models", "glioma-unet.safetensors")


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` subcommand and its experiments, each registered by its own function below.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    p = subparsers.add_parser("experiment", help="reproduce the papers' experiments (meta-tune, lifelong)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    experiments = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for add in (_add_meta_tune, _add_lifelong, _add_effort, _add_sequence, _add_ranking, _add_render):
        add(experiments)


def _common_options(q: argparse.ArgumentParser) -> None:
    """The options every experiment takes."""
    from ._types import grid_shape, positive_int

    q.add_argument("--out", type=Path, required=True, help="folder for results.json, results.md and the PNGs")
    q.add_argument("--quick", action="store_true", help="tiny smoke-test settings (a few minutes on a CPU)")
    q.add_argument("--seed", type=int, help="first repeat seed (default 0)")
    q.add_argument("--seeds", type=int, help="number of repeat seeds")
    q.add_argument("--shape", type=grid_shape, help="synthetic grid Z,Y,X")
    q.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N, mps")
    q.add_argument("--threads", type=positive_int, help="torch CPU threads (default: the usable cores, at most 8)")
    q.add_argument("--cache-dir", type=Path, help="prepared-case cache (default: the user cache folder)")
    q.add_argument("--no-cache", action="store_true", help="prepare every case afresh, cache nothing")


def _add_meta_tune(experiments: argparse._SubParsersAction) -> None:
    """Paper 000: naive, passive and active meta-tune on metastasis."""
    m = experiments.add_parser("meta-tune", help="paper 000: naive vs passive vs active meta-tune on metastasis",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_options(m)
    m.add_argument("--model", type=Path, help="the pretrained glioma checkpoint (default: the shipped U-Net)")
    m.add_argument("--patients", type=int, help="metastasis patients adapted on (default 20)")
    m.add_argument("--held-out", type=int, help="metastasis patients only scored (default 4)")
    m.add_argument("--ks", type=_ints, help="corrected slices swept, e.g. 1,3,5,10")
    m.add_argument("--main-k", type=int, help="k of the main table (default 5)")
    m.add_argument("--sweep-patients", type=int, help="patients for the ks other than --main-k (default 8; 0: all)")
    m.add_argument("--sweep-seeds", type=int, help="repeat seeds for the ks other than --main-k (default 1; 0: all)")
    m.add_argument("--methods", type=_names, help="comma list of baseline,naive,passive,passive-fo,active,active-fo")
    m.add_argument("--crop", type=int, help="adapt on random crops of this side, 0 for whole slices as the plugin "
                   "does (default 96, as in the published run)")
    m.add_argument("--no-replay", action="store_true",
                   help="adapt on the corrections alone, as the paper states the methods (default: replay "
                        "source slices, as the plugin does)")
    m.add_argument("--keep-journal", action="store_true",
                   help="keep the journal of finished adaptations in --out after writing the results (to merge "
                        "runs that did parts of one experiment); an interrupted run always resumes from it")
    _add_precision(m)
    m.set_defaults(func=run_meta_tune_command)


def _add_lifelong(experiments: argparse._SubParsersAction) -> None:
    """Paper 004: U-Net against Dy-CNN on an alternating T2/FLAIR stream."""
    lifelong = experiments.add_parser("lifelong", help="paper 004: U-Net vs Dy-CNN on an alternating T2/FLAIR stream",
                                      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_options(lifelong)
    lifelong.add_argument("--train-patients", type=int, help="stream patients (default 24)")
    lifelong.add_argument("--test-patients", type=int, help="test patients, half T2-only, half FLAIR-only (default 8)")
    lifelong.add_argument("--steps-per-patient", type=int, help="gradient steps per patient in a batch (default 10)")
    lifelong.add_argument("--large-batch", type=int, help="patients per large batch (default 6)")
    lifelong.add_argument("--small-batch", type=int, help="patients per small batch (default 2)")
    lifelong.add_argument("--settings", type=_names, help="comma list of joint,large,small")
    lifelong.add_argument("--base-width", type=int, help="width of both networks (default 16)")
    lifelong.add_argument("--workers", type=int, help="processes making synthetic cases (default: one per core)")
    lifelong.add_argument("--no-availability", action="store_true",
                          help="do not tell the networks which modality is present (constant availability planes)")
    lifelong.set_defaults(func=run_lifelong_command)


def _add_effort(experiments: argparse._SubParsersAction) -> None:
    """The radiologist's curve."""
    from ..adapt.config import LAYERS

    effort = experiments.add_parser(
        "effort", help="the radiologist's curve: rest-of-volume Dice against corrected slices, by strategy and method",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_options(effort)
    effort.add_argument("--unet", type=Path, help="the glioma U-Net checkpoint (default: the shipped one)")
    effort.add_argument("--dycnn", type=Path, help="the glioma Dy-CNN checkpoint (default: the shipped one)")
    effort.add_argument("--patients", type=int, help="synthetic metastasis patients (default 10)")
    effort.add_argument("--rounds", type=int, help="rounds of picking 2 slices and adapting (default 5)")
    effort.add_argument("--runs", type=_names, help="comma list of paste and STRATEGY/METHOD (strategies suggest, "
                        "random, dice; methods naive, active, active-best, passive, dycnn); default: every "
                        "strategy with active, every method with the suggestions")
    effort.add_argument("--tune", action="store_true", help="run the tuning seed range, not the reported one")
    effort.add_argument("--flip", action="store_true", help="suggestions also compare with the mirrored volume's "
                        "prediction (one more segmentation per round)")
    effort.add_argument("--no-real", action="store_true", help="skip the real cases")
    effort.add_argument("--real-seeds", type=int, help="repeat seeds on the real labelled case (default 3)")
    effort.add_argument("--real-runs", type=_names, help="the runs on the real labelled case (default: --runs)")
    effort.add_argument("--steps", type=int, help="adaptation steps of every method (default: the plugin's)")
    effort.add_argument("--lr", type=float, help="learning rate / meta step of every method (default: the plugin's)")
    effort.add_argument("--inner-lr", type=float, help="meta-tuning's inner step (default: the plugin's)")
    effort.add_argument("--tolerance", type=float, help="the guard's largest accepted drop per version, of every "
                        "method (default: the plugin's 0.02; 1 with --budget 1 accepts every version)")
    effort.add_argument("--budget", type=float, help="the guard's largest accepted drop since the original model "
                        "(default: the plugin's 0.05)")
    effort.add_argument("--max-shrink", type=float, metavar="SHARE", help="the guard also refuses a version that "
                        "marks this share less of a region on the anchor (default: the plugin's, off)")
    effort.add_argument("--replay", type=int, metavar="N", help="source slices in the replay set of every method "
                        "(default: the plugin's, 8)")
    effort.add_argument("--replay-by-case", action=argparse.BooleanOptionalAction, default=None,
                        help="draw each step's replayed slices from one case (one batch; default: the plugin's)")
    effort.add_argument("--layers", choices=LAYERS, help="the parameters every method adapts: all or decoder "
                        "(default: the plugin's)")
    effort.add_argument("--replay-faint", action=argparse.BooleanOptionalAction, default=None,
                        help="replay a faintly enhancing glioma in place of the second bright one (default: the "
                        "plugin's, off)")
    effort.add_argument("--replay-distill", type=float, metavar="W", help="weight of the pull of the replayed "
                        "slices towards the parent's softmax, in every method (default: the plugin's, 0)")
    _add_precision(effort)
    effort.set_defaults(func=run_effort_command)


def _add_sequence(experiments: argparse._SubParsersAction) -> None:
    """Cases adapted one after another."""
    sequence = experiments.add_parser(
        "sequence", help="cases adapted one after another: does the memory of corrections keep the earlier ones?",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_options(sequence)
    sequence.add_argument("--model", type=Path, help="the glioma checkpoint (default: the shipped U-Net)")
    sequence.add_argument("--cases", type=int, help="cases adapted in turn (default 5)")
    sequence.add_argument("--variants", type=_names, help="comma list of memory,source,none (default: all)")
    _add_precision(sequence)
    sequence.set_defaults(func=run_sequence_command)


def _add_ranking(experiments: argparse._SubParsersAction) -> None:
    """The suggestions' rankings of the first prediction's slices, no learning."""
    from ._types import positive_int

    ranking = experiments.add_parser(
        "ranking", help="do the suggestions find what is wrong? rankings of the first prediction's slices, no learning",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_options(ranking)
    ranking.add_argument("--unet", type=Path, help="the glioma U-Net checkpoint (default: the shipped one)")
    ranking.add_argument("--patients", type=positive_int, help="synthetic metastasis patients (default 10)")
    ranking.add_argument("--k", type=_ints, help="numbers of slices picked, comma list (default 2,4,10)")
    ranking.add_argument("--tune", action="store_true", help="the effort experiment's tuning seed range, "
                         "not its reported one")
    ranking.add_argument("--no-real", action="store_true", help="skip the real labelled case")
    ranking.set_defaults(func=run_ranking_command)


def _add_render(experiments: argparse._SubParsersAction) -> None:
    """Redraw a folder's tables and figures from its results.json."""
    render = experiments.add_parser("render", help="redraw results.md and the figures from a folder's results.json")
    render.add_argument("folder", type=Path, help="a folder written by meta-tune or lifelong")
    render.set_defaults(func=run_render_command)


def _add_precision(parser: argparse.ArgumentParser) -> None:
    from ..adapt.config import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS,
                        help="arithmetic of the adaptation passes (default auto: bf16 where the CPU has native "
                        "bfloat16 units, else fp32); recorded resolved in the results")


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


# Options given as --NAME / --no-NAME, whose "no" is recorded (the others' False is their default).
NEGATABLE = ("replay_by_case", "replay_faint")


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
    adapt_options = ("steps", "lr", "inner_lr", "tolerance", "budget", "max_shrink", "replay", "replay_by_case",
                     "layers", "replay_distill", "replay_faint")
    given = {name: getattr(args, name) for name in adapt_options if getattr(args, name) is not None}
    given["precision"] = _resolved_precision(args, device)
    config.adapt_overrides = {m: {**config.adapt_overrides.get(m, {}), **given}
                              for m in ("naive", "active", "passive", "dycnn")}
    bases = _effort_bases(args, config)
    command = _explicit_command(args, ("unet", "dycnn", "patients", "rounds", "runs", "tune", "flip", "no_real",
                                       "real_seeds", "real_runs", "steps", "lr", "inner_lr", "tolerance", "budget",
                                       "max_shrink", "replay", "replay_by_case", "layers", "replay_distill",
                                       "replay_faint", "precision"))
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

