"""The options of ``tumorseg train``, in groups (the runner and its checks are in ``train``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._types import grid_shape, positive_int, seed_range

DEFAULT_VALIDATION_SEEDS = "9000:9002"


def add_training_options(p: argparse.ArgumentParser) -> None:
    """Every option of ``tumorseg train``, in the order ``--help`` lists them."""
    for add in (_data_options, _schedule_options, _network_options, _augmentation_options, _output_options,
                _starting_point_options, _run_options):
        add(p)


def _data_options(p: argparse.ArgumentParser) -> None:
    """The cases trained and validated on."""
    p.add_argument("--arch", choices=["unet", "dycnn"], help="architecture (required unless --resume)")
    p.add_argument("--out", type=Path, required=True, help="the model to write (.safetensors)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--synthetic-seeds", type=seed_range, help="synthetic training cases, e.g. 0:64 (default)")
    data.add_argument("--data", type=Path, help="a folder of BraTS case folders with reference masks")
    p.add_argument("--domain", choices=["glioma", "metastasis"], default="glioma", help="synthetic domain")
    # synth.GENERATOR_VERSIONS, spelled out: importing the generator would slow every --help
    p.add_argument("--generator-version", choices=("1", "2", "3", "4", "5", "6", "7"), default=None,
                   help="synthetic generator version (default: the shipped models')")
    p.add_argument("--shape", type=grid_shape, help="synthetic grid Z,Y,X (default: the BraTS 1 mm grid)")
    p.add_argument("--val-seeds", type=seed_range, default=DEFAULT_VALIDATION_SEEDS,
                   help="synthetic validation cases (default %(default)s)")
    p.add_argument("--val-cases", type=int, default=2, help="with --data: the last N cases validate (default 2)")


def _schedule_options(p: argparse.ArgumentParser) -> None:
    """Steps, batches, crops and the learning rate."""
    p.add_argument("--steps", type=positive_int, help="optimisation steps (default 1000); with --resume: a new total "
                   "(the learning-rate schedule is stretched or shortened from there on)")
    p.add_argument("--batch", type=positive_int, default=8, help="crops per step (default %(default)s)")
    p.add_argument("--crop", type=int, default=128, help="crop side, a multiple of 2**depth (default %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default %(default)s)")


def _network_options(p: argparse.ArgumentParser) -> None:
    """The network's shape."""
    p.add_argument("--base-width", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--context", type=int, default=0, help="neighbouring slices on each side (2.5D)")
    p.add_argument("--kernels", type=int, default=4, help="Dy-CNN kernels K (default %(default)s)")


def _augmentation_options(p: argparse.ArgumentParser) -> None:
    """What is done to the training crops."""
    p.add_argument("--anneal-fraction", type=float, default=0.1, help="Dy-CNN: part of the steps annealing T 30->1")
    p.add_argument("--modality-dropout", type=float, default=0.35, help="chance a crop keeps a random subset")
    p.add_argument("--tumour-crop-prob", type=float, default=0.8,
                   help="chance a crop is centred near tumour, else anywhere in the brain (default %(default)s)")
    p.add_argument("--appearance", type=float, default=0.0,
                   help="chance a crop gets a random contrast curve, bias, blur and noise per modality")
    p.add_argument("--smoothing", type=float, default=0.0,
                   help="chance a crop's modalities are made as smooth as a registered or thick-sliced sequence")
    p.add_argument("--tumour-slices", type=int, default=20, help="tumour slices kept per case (default %(default)s)")
    p.add_argument("--empty-slices", type=int, default=4, help="tumour-free slices kept per case")


def _output_options(p: argparse.ArgumentParser) -> None:
    """When state is saved and how the weights are written."""
    p.add_argument("--epoch-steps", type=positive_int, default=50, help="steps between validation and saved state")
    p.add_argument("--float16", action="store_true", help="store the weights as float16 (half the file)")
    p.add_argument("--precision", choices=("fp32", "bf16"),
                   help="arithmetic of the training passes: fp32 (default), or bf16 mixed precision (1.85x "
                   "faster U-Net steps on a CPU with bfloat16 units; weights and optimiser stay float32)")
    p.add_argument("--ema-decay", type=float,
                   help="write an exponential moving average of the weights with this decay per step (e.g. "
                   "0.998: about the last 500 steps) instead of the last step's weights (default: off)")
    p.add_argument("--last-out", type=Path,
                   help="with --ema-decay: also write the last step's own weights here (to compare the two)")


def _starting_point_options(p: argparse.ArgumentParser) -> None:
    """The seed, a starting model, a teacher and mined false tumour."""
    p.add_argument("--seed", type=int, default=0, help="initial weights and every random draw")
    p.add_argument("--init", type=Path, help="start from this model's weights (same architecture) instead of "
                   "random ones: a fine-tuning")
    p.add_argument("--teacher", type=Path, help="a model whose softmax, averaged over --teacher-flips, the network "
                   "also learns (distillation; training/distillation.py)")
    p.add_argument("--teacher-flips", choices=("none", "lr", "ap", "all"),
                   help="the teacher's in-plane flips (default all)")
    p.add_argument("--distill-weight", type=float, help="weight of the teacher's term beside the truth's loss "
                   "(default 1 with --teacher)")
    p.add_argument("--hard-negatives", type=Path, help="a model whose false tumour on the training cases is mined "
                   "(training/hard_negatives.py): some crops are then centred on it (synthetic cases only)")
    p.add_argument("--hard-negative-seeds", help="the training cases to mine, A:B or a list (default: all of them)")
    p.add_argument("--hard-negative-slices", type=positive_int,
                   help="slices with the most false tumour kept per mined case (default 4)")
    p.add_argument("--hard-negative-prob", type=float,
                   help="chance a crop is a mined slice centred on its false tumour (default 0.25)")
    p.add_argument("--hard-negative-margin", type=float, metavar="MM",
                   help="mine only false tumour at least MM mm from the true tumour (default 0: all of it)")


def _run_options(p: argparse.ArgumentParser) -> None:
    """Resuming, the device, threads, workers and the cache."""
    p.add_argument("--resume", type=Path, help="a .train-state file (or the output whose state is beside it)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N, mps")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--workers", type=positive_int, help="processes making synthetic cases (default: one per CPU)")
    p.add_argument("--cache-dir", type=Path, help="slice cache folder (default: the user cache folder)")
