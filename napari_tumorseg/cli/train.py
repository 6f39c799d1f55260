"""``tumorseg train``: train a segmenter from the repository, on synthetic cases or a folder of BraTS cases.

    tumorseg train --arch unet --out glioma-unet.safetensors --synthetic-seeds 0:64 --steps 800
    tumorseg train --arch dycnn --out my.safetensors --data BraTS2021_Training --steps 20000 --device cuda
    tumorseg train --resume glioma-unet.train-state --out glioma-unet.safetensors   # continue a run

Training slices are prepared once (brain-cropped, z-scored, as the segmenter
prepares them) and, for synthetic cases, cached in ``--cache-dir``. The run
saves its state (weights, optimiser, step; safetensors + JSON, nothing
pickled) beside the output as ``<stem>.train-state`` every ``--epoch-steps``
steps and on Ctrl-C; ``--resume`` continues it with the settings it was
started with. The model is written at the end with a JSON model card beside
it (``<stem>.card.json``); ``tumorseg evaluate --record`` adds metrics to it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ._train_options import add_training_options

# Seeds other commands rely on being unseen in training: the adaptation's anchor
# and replay sets, and the held-out evaluation sets of the shipped models.
EVALUATION_SEEDS = {"glioma": range(10000, 10020), "metastasis": range(20000, 20020)}
# Run settings a resumed run takes from its state, not from the command line.
RUN_SETTINGS = ("arch", "base_width", "depth", "context", "kernels", "domain", "synthetic_seeds", "data", "shape",
                "val_seeds", "val_cases", "steps", "batch", "crop", "lr", "seed", "epoch_steps", "tumour_slices",
                "empty_slices", "modality_dropout", "anneal_fraction", "float16", "tumour_crop_prob", "appearance",
                "smoothing", "precision", "ema_decay", "init", "teacher", "teacher_flips", "distill_weight",
                "hard_negatives", "hard_negative_seeds", "hard_negative_slices", "hard_negative_prob",
                "hard_negative_margin")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand.

    Args:
        subparsers: the dispatcher's subparsers.
    """
    p = subparsers.add_parser("train", help="train a U-Net or Dy-CNN on synthetic or BraTS cases (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_options(p)
    p.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> str:
    """The full explicit command that reproduces this run."""
    parts = ["tumorseg", "train"]
    for name in ("resume", *RUN_SETTINGS, "out", "last_out", "device", "threads", "cache_dir"):
        value = getattr(args, name, None)
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            parts.append(flag)
        else:
            parts += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return shlex.join(parts)


def _check(args: argparse.Namespace) -> None:
    from ..adapt.anchors import ANCHOR_SEEDS, REPLAY_SEEDS
    from ..errors import TumorsegError
    from ..training.data import overlapping, seed_range

    args.steps = 1000 if args.steps is None else args.steps
    if args.arch is None:
        raise TumorsegError("give --arch unet|dycnn (or --resume a run)")
    if args.out.suffix != ".safetensors":
        raise TumorsegError(f"{args.out}: the output must be a .safetensors file")
    if args.ema_decay is not None and not 0.0 < args.ema_decay < 1.0:
        raise TumorsegError(f"--ema-decay {args.ema_decay} must lie between 0 and 1")
    if args.last_out is not None and (not args.ema_decay or args.last_out.suffix != ".safetensors"):
        raise TumorsegError(f"{args.last_out}: --last-out needs --ema-decay and a .safetensors name")
    if args.teacher is None and (args.teacher_flips is not None or args.distill_weight is not None):
        raise TumorsegError("--teacher-flips and --distill-weight need --teacher")
    if args.teacher is not None:
        args.teacher_flips = args.teacher_flips or "all"
        args.distill_weight = 1.0 if args.distill_weight is None else args.distill_weight
        if args.distill_weight < 0:
            raise TumorsegError(f"--distill-weight {args.distill_weight} must be >= 0")
    if args.crop % 2**args.depth:
        raise TumorsegError(f"--crop {args.crop} is not a multiple of 2**depth = {2**args.depth}")
    if args.data is None:
        args.synthetic_seeds = args.synthetic_seeds or "0:64"
        seeds = seed_range(args.synthetic_seeds)
        reserved = {*ANCHOR_SEEDS, *REPLAY_SEEDS, *EVALUATION_SEEDS.get(args.domain, ()), *seed_range(args.val_seeds)}
        clash = overlapping(seeds, reserved)
        if clash:
            print(f"tumorseg: warning: training seeds {clash[:5]}... are reserved for validation, evaluation "
                  "or the adaptation's anchor/replay sets", file=sys.stderr)
    _check_hard_negatives(args)


def _check_hard_negatives(args: argparse.Namespace) -> None:
    """Defaults and limits of the hard-negative options (they go together with --hard-negatives)."""
    from ..errors import TumorsegError
    from ..training.data import seed_range

    settings = (args.hard_negative_seeds, args.hard_negative_slices, args.hard_negative_prob,
                args.hard_negative_margin)
    if args.hard_negatives is None:
        if any(v is not None for v in settings):
            raise TumorsegError("--hard-negative-seeds, --hard-negative-slices, --hard-negative-prob and "
                                "--hard-negative-margin need --hard-negatives")
        return
    if args.data is not None:
        raise TumorsegError("--hard-negatives mines synthetic training cases; it does not go with --data")
    if not args.hard_negatives.is_file():
        raise TumorsegError(f"{args.hard_negatives}: no such model file to mine")
    args.hard_negative_seeds = args.hard_negative_seeds or args.synthetic_seeds or "0:64"
    args.hard_negative_slices = args.hard_negative_slices or 4
    args.hard_negative_prob = 0.25 if args.hard_negative_prob is None else args.hard_negative_prob
    args.hard_negative_margin = args.hard_negative_margin or 0.0
    if args.hard_negative_margin < 0:
        raise TumorsegError(f"--hard-negative-margin {args.hard_negative_margin:g} must be 0 or more (mm)")
    if not 0.0 < args.hard_negative_prob <= 1.0:
        raise TumorsegError(f"--hard-negative-prob {args.hard_negative_prob} must lie in (0, 1]")
    outside = set(seed_range(args.hard_negative_seeds)) - set(seed_range(args.synthetic_seeds or "0:64"))
    if outside:
        raise TumorsegError(f"--hard-negative-seeds {sorted(outside)[:5]}... are not training cases: only "
                            "training cases are mined")


def _resume_args(args: argparse.Namespace) -> Any:
    """The state to resume, after taking the run's settings from it into ``args``."""
    from ..training.state import load_training_state, state_path_for

    path = args.resume if args.resume.suffix == ".train-state" else state_path_for(args.resume)
    state = load_training_state(path)
    explicit_steps = args.steps
    for name, value in state.info["args"].items():
        setattr(args, name, tuple(value) if name == "shape" and value else value)
    for name in ("data", "init", "teacher", "hard_negatives"):
        setattr(args, name, Path(getattr(args, name)) if getattr(args, name, None) else None)
    if explicit_steps is not None and explicit_steps != args.steps:
        print(f"tumorseg: the run's total steps change from {args.steps} to {explicit_steps}", file=sys.stderr)
        args.steps = explicit_steps
    return state


def _caches(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """Training cache, validation cache (or None) and the description of the training data."""
    from ..adapt.anchors import default_cache_dir
    from ..synth.generate import GENERATOR_VERSION
    from ..training.data import seed_range
    from ..training.sources import (SliceLayout, case_folders, describe_cache, folder_slice_cache,
                                    synthetic_slice_cache)

    layout = SliceLayout(multiple=2**args.depth, context=args.context, tumour_slices=args.tumour_slices,
                         empty_slices=args.empty_slices)
    if args.data is not None:
        folders = case_folders(args.data)
        held = min(args.val_cases, len(folders) - 1)
        train = folder_slice_cache(folders[: len(folders) - held], layout, seed=args.seed)
        val = folder_slice_cache(folders[len(folders) - held :], layout, seed=args.seed) if held > 0 else None
        described = {"source": "folder", "description": f"BraTS case folders in {args.data}",
                     "validation": [f.name for f in folders[len(folders) - held :]]}
    else:
        cache_dir = args.cache_dir or default_cache_dir()
        version = args.generator_version or GENERATOR_VERSION
        kwargs = dict(shape=args.shape, cache_dir=cache_dir, workers=args.workers, version=version)
        seeds = seed_range(args.synthetic_seeds)
        train = synthetic_slice_cache(args.domain, seeds, layout, **kwargs)
        val = synthetic_slice_cache(args.domain, seed_range(args.val_seeds), layout, **kwargs)
        described = {"source": "synthetic", "domain": args.domain, "generator_version": version,
                     "seeds": args.synthetic_seeds, "validation_seeds": args.val_seeds,
                     "shape": list(args.shape) if args.shape else "BraTS 1 mm (155, 240, 240)",
                     "description": f"synthetic {args.domain} seeds {args.synthetic_seeds} (make_case)"}
    described.update(describe_cache(train), slices_per_case={"tumour": layout.tumour_slices,
                                                             "tumour_free": layout.empty_slices})
    return train, val, described


def _mined(args: argparse.Namespace, data: dict[str, Any]) -> Any:
    """The hard slices of ``--hard-negatives`` (mined once, then read from the cache folder); described in ``data``."""
    from ..adapt.anchors import default_cache_dir
    from ..synth.generate import GENERATOR_VERSION
    from ..training.data import seed_range
    from ..training.hard_negatives import describe_mining, mine_synthetic

    print(f"tumorseg: mining the false tumour of {args.hard_negatives} on seeds {args.hard_negative_seeds}",
          file=sys.stderr)
    mined = mine_synthetic(args.hard_negatives, args.domain, seed_range(args.hard_negative_seeds),
                           version=args.generator_version or GENERATOR_VERSION, shape=args.shape,
                           per_case=args.hard_negative_slices, margin_mm=args.hard_negative_margin,
                           cache_dir=args.cache_dir or default_cache_dir(), workers=args.workers)
    found = describe_mining(mined)
    print(f"tumorseg: {found['slices']} hard slices on {found['cases']} cases "
          f"({found['false_tumour_voxels']:,} false tumour voxels)", file=sys.stderr)
    data["hard_negatives"] = {**found, "model": _model_reference(args.hard_negatives),
                              "seeds": args.hard_negative_seeds, "slices_per_case": args.hard_negative_slices,
                              "margin_mm": args.hard_negative_margin,
                              "probability": args.hard_negative_prob}
    return mined


def run(args: argparse.Namespace) -> int:
    import torch

    from ..inference.devices import choose_device
    from ..models import build_model
    from ..models.checkpoint import load_weights_into
    from ..training.data import Augmentation, validation_slices
    from ..training.loop import TrainConfig, Trainer
    from ..training.state import save_training_state, state_path_for

    state = _resume_args(args) if args.resume else None
    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    print(f"tumorseg: preparing training slices (cached in {args.cache_dir or 'the user cache'})", file=sys.stderr)
    train_cache, val_cache, data_description = _caches(args)
    hard = _mined(args, data_description) if args.hard_negatives is not None else None
    print(f"tumorseg: {data_description['cases']} cases, {data_description['slices']} slices; "
          f"training on {device}", file=sys.stderr)
    hparams = dict(base_width=args.base_width, depth=args.depth, context=args.context)
    if args.arch == "dycnn":
        hparams["num_kernels"] = args.kernels
    torch.manual_seed(args.seed)
    model = build_model(args.arch, **hparams)
    if args.init is not None and state is None:  # a resumed run's weights come from its state
        load_weights_into(model, args.init)
    teacher = _teacher(args, model) if args.teacher is not None else None
    config = TrainConfig(
        steps=args.steps, batch_size=args.batch, lr=args.lr, seed=args.seed, epoch_steps=args.epoch_steps,
        anneal_fraction=args.anneal_fraction, precision=args.precision or "fp32", ema_decay=args.ema_decay or 0.0,
        distill_weight=args.distill_weight or 0.0,
        augmentation=Augmentation(crop=args.crop, modality_dropout=args.modality_dropout,
                                  tumour_crop_prob=args.tumour_crop_prob, appearance=args.appearance,
                                  smoothing=args.smoothing, hard_negative_prob=args.hard_negative_prob or 0.0),
    )
    run_args = {name: (list(v) if isinstance(v := getattr(args, name), tuple) else
                       str(v) if isinstance(v, Path) else v) for name in RUN_SETTINGS}
    commands = list(state.info.get("commands", [])) if state else []
    # What the run started from and learnt besides the truth, hashed when it starts (a resume may not find the files).
    args.lineage = state.info.get("lineage", {}) if state else _lineage(args)
    commands.append(command_line(args))
    previous_wall = float(state.info.get("wall_time_s", 0.0)) if state else 0.0
    started = time.perf_counter()
    state_path = state_path_for(args.out)

    def save_state(training_state: Any) -> None:
        training_state.info.update(args=run_args, commands=commands, data=data_description, lineage=args.lineage,
                                   wall_time_s=previous_wall + time.perf_counter() - started)
        save_training_state(state_path, training_state)

    validation = validation_slices(val_cache) if val_cache is not None else None
    trainer = Trainer(model, train_cache, config, validation=validation, device=device, save_state=save_state,
                      teacher=teacher, hard=hard)
    if state is not None:
        trainer.load_state(state)
        print(f"tumorseg: resuming {state_path} at step {trainer.step}", file=sys.stderr)
    finished = _train(trainer)
    if not finished:
        print(f"tumorseg: interrupted; state saved in {state_path}", file=sys.stderr)
        return 130
    wall = previous_wall + time.perf_counter() - started
    _write_model(args.out, trainer.final_model(), args, trainer, config, data_description, commands, wall, device)
    print(args.out)
    if args.last_out is not None and trainer.average is not None:
        _write_model(args.last_out, trainer.model, args, trainer, config, data_description, commands, wall, device,
                     weights="the last step's weights, not averaged (--last-out)")
        print(args.last_out)
    return 0


def _teacher(args: argparse.Namespace, student: Any) -> Any:
    """The frozen teacher of a distillation run; it must read the student's inputs."""
    from ..errors import TumorsegError
    from ..models.checkpoint import load_checkpoint
    from ..training.distillation import FlipTeacher

    teacher = load_checkpoint(args.teacher).model
    for name in ("num_modalities", "context", "num_classes"):
        if getattr(teacher.config, name) != getattr(student.config, name):
            raise TumorsegError(f"{args.teacher}: the teacher's {name} is {getattr(teacher.config, name)}, "
                                f"the network's {getattr(student.config, name)}")
    return FlipTeacher(teacher, args.teacher_flips)


def _train(trainer: Any) -> bool:
    """Run the trainer with a progress line on stderr; Ctrl-C (SIGINT) or SIGTERM saves the state and returns False.

    The signals only set a flag the trainer checks between steps, so the saved
    state is never that of a half-done optimiser step.
    """
    import signal

    from ..jobs import Cancelled
    from ._progress import run_with_progress

    stop_requested: list[int] = []

    def request_stop(signum: int, frame: Any) -> None:
        stop_requested.append(signum)

    def numbers(progress: Any) -> dict[str, str]:
        step = progress.data
        shown = {"loss": f"{progress.loss:.3f}", "lr": f"{step.lr:.1e}"}
        if step.temperature is not None:
            shown["T"] = f"{step.temperature:.1f}"
        return shown

    def validation(progress: Any, line: Any) -> None:
        step = progress.data
        if step.validation is not None:
            scores = " ".join(f"{k} {v:.3f}" for k, v in step.validation.items())
            line.write(f"step {step.step}: loss {step.loss:.4f}, validation Dice {scores}")

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_with_progress(trainer.run(lambda: bool(stop_requested)), postfix=numbers, also=validation)
        return True
    except Cancelled:
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _write_model(out: Path, model: Any, args: argparse.Namespace, trainer: Any, config: Any, data: dict[str, Any],
                 commands: list[str], wall: float, device: Any, weights: str | None = None) -> None:
    from datetime import datetime, timezone

    from ..models.checkpoint import read_checkpoint_info, save_checkpoint
    from ..models.dynconv import get_temperature
    from ..machine import describe_machine
    from ..training.card import new_card, write_card

    model = model.to("cpu").eval()
    save_checkpoint(out, model, half_precision=bool(args.float16), metadata={"training": "see card"})
    info = read_checkpoint_info(out)
    architecture = {**info.config.to_dict(), "parameters": sum(p.numel() for p in model.parameters()),
                    "storage": "float16" if args.float16 else "float32"}
    last = trainer.history[-1] if trainer.history else {}
    averaged = config.ema_decay > 0 and weights is None
    if weights is None:
        weights = (f"exponential moving average of the weights, decay {config.ema_decay} per step" if averaged
                   else "the last step's weights")
    training = {
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": data, "hyperparameters": config.to_dict(), "steps": trainer.step, "command": commands[0],
        "resumed_with": commands[1:], "wall_time_s": round(wall, 1), "hardware": describe_machine(device),
        "final_loss": last.get("loss"), "weights": weights,
        "final_validation_dice": last.get("validation_average" if averaged else "validation"),
        "final_temperature": get_temperature(model), "loss": _loss_description(args),
        "optimizer": "AdamW, linear warm-up then cosine decay",
    }
    training.update(args.lineage)
    write_card(out, new_card(out.stem, architecture, info.preprocessing.to_dict(), training))


def _loss_description(args: argparse.Namespace) -> str:
    truth = "cross-entropy + (1 - soft Dice of NCR, ED, ET)"
    if args.teacher is None:
        return truth
    return f"{truth} + {args.distill_weight} x KL(teacher's softmax averaged over flips '{args.teacher_flips}' || network's)"


def _lineage(args: argparse.Namespace) -> dict[str, Any]:
    """The card's ``initial_weights`` and ``teacher`` entries, for the ones the run has."""
    lineage: dict[str, Any] = {}
    if args.init is not None:
        lineage["initial_weights"] = _model_reference(args.init)
    if args.teacher is not None:
        lineage["teacher"] = {**_model_reference(args.teacher), "flips": args.teacher_flips,
                              "weight": args.distill_weight}
    return lineage


def _model_reference(path: Path) -> dict[str, str]:
    """A model file named by its path and the SHA-256 of its bytes (what the card says it started from)."""
    import hashlib

    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
