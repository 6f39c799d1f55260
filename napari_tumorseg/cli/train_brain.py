"""``tumorseg train-brain``: train the brain-mask network on synthetic heads (resumable).

    tumorseg train-brain --out resources/models/brain/brain-mask.safetensors --heads 0:100 --steps 2000

The heads (``synth.head.make_head`` at about 2 mm) are made once and kept in
``--cache-dir``. The state is saved beside the output every
``--epoch-steps`` steps and on Ctrl-C; the same command with ``--resume``
continues it; ``--until STEP`` stops a run there and writes the network (the
shipped one is such a stop). ``scripts/train_brain_mask.sh`` holds the command that made
the shipped network.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ._types import positive_int, seed_range


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-brain", help="train the brain-mask network on synthetic heads (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the network to write (.safetensors)")
    p.add_argument("--heads", type=seed_range, default="0:100", help="training head seeds (default %(default)s)")
    p.add_argument("--val-heads", type=seed_range, default="9000:9006", help="held-out head seeds")
    p.add_argument("--steps", type=positive_int, default=2000)
    p.add_argument("--batch", type=positive_int, default=16)
    p.add_argument("--crop", type=positive_int, default=128, help="crop side, a multiple of 2**depth")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--base-width", type=positive_int, default=16)
    p.add_argument("--depth", type=positive_int, default=4)
    p.add_argument("--context", type=int, default=2, help="neighbouring slices on each side")
    p.add_argument("--epoch-steps", type=positive_int, default=250, help="steps between validation and saved state")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--cache-dir", type=Path, help="where the heads are kept (default: none kept)")
    p.add_argument("--resume", action="store_true", help="continue from the state beside --out")
    p.add_argument("--until", type=positive_int, help="stop at this step and write the network (the learning-rate "
                   "schedule stays --steps long); with --resume from a state already there, only writes it")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ModelError
    from ..io.atomic import check_writable
    from ..prepare.brainnet import BrainNetConfig
    from ..training.brain import BrainTrainSettings, train_brain_net
    from ..training.brain_data import BrainAugmentation
    from ..training.data import seed_range as parse
    from ._progress import run_with_progress

    if args.out.suffix != ".safetensors":
        raise ModelError(f"{args.out}: the network file must end in .safetensors")
    check_writable(args.out, overwrite=True, make_folder=True)
    if args.crop % 2**args.depth:
        raise ModelError(f"--crop {args.crop} is not a multiple of 2**depth = {2**args.depth}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        net = BrainNetConfig(base_width=args.base_width, depth=args.depth, context=args.context)
    except ValueError as error:
        raise ModelError(f"invalid network settings ({error})") from None
    settings = BrainTrainSettings(
        out=str(args.out), heads=tuple(parse(args.heads)), val_heads=tuple(parse(args.val_heads)), steps=args.steps,
        batch_size=args.batch, lr=args.lr, seed=args.seed, epoch_steps=args.epoch_steps,
        cache_dir=None if args.cache_dir is None else str(args.cache_dir), net=net,
        augmentation=BrainAugmentation(crop=args.crop),
    )
    command = "tumorseg " + shlex.join(sys.argv[1:]) if sys.argv[0].endswith("tumorseg") else shlex.join(
        ["tumorseg", "train-brain", *sys.argv[2:]])

    def also(report, line) -> None:
        if isinstance(report.data, dict) and "validation_dice" in report.data:
            line.write(f"step {report.data['step']}: held-out heads brain Dice {report.data['validation_dice']:.4f}")

    out = run_with_progress(train_brain_net(settings, resume=args.resume, command=command, until=args.until),
                            quiet=args.quiet,
                            also=also)
    print(out)
    return 0
