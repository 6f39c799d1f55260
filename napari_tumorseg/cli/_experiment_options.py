"""The options of ``tumorseg experiment``'s experiments, one builder each (the runners are in ``experiment``).

Each ``add_NAME(experiments, description)`` adds an experiment's subparser (``description``: the usage text
of ``experiment``) and returns it; ``experiment.register`` binds its runner.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._adapt_options import add_shared_options


def positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def common_options(q: argparse.ArgumentParser) -> None:
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


def add_meta_tune(experiments: argparse._SubParsersAction, description: str) -> argparse.ArgumentParser:
    """Paper 000: naive, passive and active meta-tune on metastasis."""
    m = experiments.add_parser("meta-tune", help="paper 000: naive vs passive vs active meta-tune on metastasis",
                               description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(m)
    m.add_argument("--model", type=Path, help="the pretrained glioma checkpoint (default: the shipped U-Net)")
    m.add_argument("--patients", type=int, help="metastasis patients adapted on (default 20)")
    m.add_argument("--held-out", type=int, help="metastasis patients only scored (default 4)")
    m.add_argument("--ks", type=positive_ints, help="corrected slices swept, e.g. 1,3,5,10")
    m.add_argument("--main-k", type=int, help="k of the main table (default 5)")
    m.add_argument("--sweep-patients", type=int, help="patients for the ks other than --main-k (default 8; 0: all)")
    m.add_argument("--sweep-seeds", type=int, help="repeat seeds for the ks other than --main-k (default 1; 0: all)")
    m.add_argument("--methods", type=names, help="comma list of baseline,naive,passive,passive-fo,active,active-fo")
    m.add_argument("--crop", type=int, help="adapt on random crops of this side, 0 for whole slices as the plugin "
                   "does (default 96, as in the published run)")
    m.add_argument("--no-replay", action="store_true",
                   help="adapt on the corrections alone, as the paper states the methods (default: replay "
                        "source slices, as the plugin does)")
    m.add_argument("--keep-journal", action="store_true",
                   help="keep the journal of finished adaptations in --out after writing the results (to merge "
                        "runs that did parts of one experiment); an interrupted run always resumes from it")
    add_precision(m)
    return m


def add_lifelong(experiments: argparse._SubParsersAction, description: str) -> argparse.ArgumentParser:
    """Paper 004: U-Net against Dy-CNN on an alternating T2/FLAIR stream."""
    lifelong = experiments.add_parser("lifelong", help="paper 004: U-Net vs Dy-CNN on an alternating T2/FLAIR stream",
                                      description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(lifelong)
    lifelong.add_argument("--train-patients", type=int, help="stream patients (default 24)")
    lifelong.add_argument("--test-patients", type=int, help="test patients, half T2-only, half FLAIR-only (default 8)")
    lifelong.add_argument("--steps-per-patient", type=int, help="gradient steps per patient in a batch (default 10)")
    lifelong.add_argument("--large-batch", type=int, help="patients per large batch (default 6)")
    lifelong.add_argument("--small-batch", type=int, help="patients per small batch (default 2)")
    lifelong.add_argument("--settings", type=names, help="comma list of joint,large,small")
    lifelong.add_argument("--base-width", type=int, help="width of both networks (default 16)")
    lifelong.add_argument("--workers", type=int, help="processes making synthetic cases (default: one per core)")
    lifelong.add_argument("--no-availability", action="store_true",
                          help="do not tell the networks which modality is present (constant availability planes)")
    return lifelong


def add_effort(experiments: argparse._SubParsersAction, description: str) -> argparse.ArgumentParser:
    """The radiologist's curve."""
    effort = experiments.add_parser(
        "effort", help="the radiologist's curve: rest-of-volume Dice against corrected slices, by strategy and method",
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(effort)
    effort.add_argument("--unet", type=Path, help="the glioma U-Net checkpoint (default: the shipped one)")
    effort.add_argument("--dycnn", type=Path, help="the glioma Dy-CNN checkpoint (default: the shipped one)")
    effort.add_argument("--patients", type=int, help="synthetic metastasis patients (default 10)")
    effort.add_argument("--rounds", type=int, help="rounds of picking 2 slices and adapting (default 5)")
    effort.add_argument("--runs", type=names, help="comma list of paste and STRATEGY/METHOD (strategies suggest, "
                        "random, dice; methods naive, active, active-best, passive, dycnn); default: every "
                        "strategy with active, every method with the suggestions")
    effort.add_argument("--tune", action="store_true", help="run the tuning seed range, not the reported one")
    effort.add_argument("--flip", action="store_true", help="suggestions also compare with the mirrored volume's "
                        "prediction (one more segmentation per round)")
    effort.add_argument("--no-real", action="store_true", help="skip the real cases")
    effort.add_argument("--real-seeds", type=int, help="repeat seeds on the real labelled case (default 3)")
    effort.add_argument("--real-runs", type=names, help="the runs on the real labelled case (default: --runs)")
    add_shared_options(effort, every_method=True)
    add_precision(effort)
    return effort


def add_sequence(experiments: argparse._SubParsersAction, description: str) -> argparse.ArgumentParser:
    """Cases adapted one after another."""
    sequence = experiments.add_parser(
        "sequence", help="cases adapted one after another: does the memory of corrections keep the earlier ones?",
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(sequence)
    sequence.add_argument("--model", type=Path, help="the glioma checkpoint (default: the shipped U-Net)")
    sequence.add_argument("--cases", type=int, help="cases adapted in turn (default 5)")
    sequence.add_argument("--variants", type=names, help="comma list of memory,source,none (default: all)")
    add_precision(sequence)
    return sequence


def add_ranking(experiments: argparse._SubParsersAction, description: str) -> argparse.ArgumentParser:
    """The suggestions' rankings of the first prediction's slices, no learning."""
    from ._types import positive_int

    ranking = experiments.add_parser(
        "ranking", help="do the suggestions find what is wrong? rankings of the first prediction's slices, no learning",
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(ranking)
    ranking.add_argument("--unet", type=Path, help="the glioma U-Net checkpoint (default: the shipped one)")
    ranking.add_argument("--patients", type=positive_int, help="synthetic metastasis patients (default 10)")
    ranking.add_argument("--k", type=positive_ints, help="numbers of slices picked, comma list (default 2,4,10)")
    ranking.add_argument("--tune", action="store_true", help="the effort experiment's tuning seed range, "
                         "not its reported one")
    ranking.add_argument("--no-real", action="store_true", help="skip the real labelled case")
    return ranking


def add_render(experiments: argparse._SubParsersAction, description: str) -> argparse.ArgumentParser:
    """Redraw a folder's tables and figures from its results.json."""
    render = experiments.add_parser("render", help="redraw results.md and the figures from a folder's results.json",
                                    description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    render.add_argument("folder", type=Path, help="a folder written by meta-tune or lifelong")
    return render


def add_precision(parser: argparse.ArgumentParser) -> None:
    from ..adapt.config import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS,
                        help="arithmetic of the adaptation passes (default auto: bf16 where the CPU has native "
                        "bfloat16 units, else fp32); recorded resolved in the results")


