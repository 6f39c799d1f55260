"""Synthetic cases written to disk as BraTS folders, one report per case.

This is the long-running part of ``tumorseg synth``: a generator yielding a
small report after each case, so the command line shows a progress bar and a
caller can stop between cases by no longer iterating.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from .generate import GENERATOR_VERSION, case_name, make_case
from .grid import BRATS_SHAPE


@dataclass(frozen=True)
class CaseWritten:
    """Progress of :func:`write_synthetic_cases`.

    Args:
        done: cases written so far.
        total: cases asked for.
        folder: the folder of the case just written.
        seconds: how long it took to generate and write it.
    """

    done: int
    total: int
    folder: Path
    seconds: float


def write_synthetic_cases(
    domain: str,
    seeds: Iterable[int],
    out: str | PathLike[str],
    *,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    missing_prob: float = 0.0,
    layout: str = "brats2020",
    overwrite: bool = False,
    version: str = GENERATOR_VERSION,
) -> Iterator[CaseWritten]:
    """Generate cases and write each to ``out/<domain>_<seed:05d>/`` in BraTS layout.

    Args:
        domain: "glioma" or "metastasis".
        seeds: the case seeds.
        out: the parent folder (created if missing).
        shape: grid of the cases.
        missing_prob: chance that each modality is missing (its file is then absent).
        layout: "brats2020" (``_flair``, ``_t1``, ``_t1ce``, ``_t2``, ``_seg``) or "brats2023".
        overwrite: replace existing files; otherwise an existing case is an error.
        version: generator version (the newest by default).

    Raises:
        CaseError: a case folder cannot be written (or exists, without ``overwrite``).
    """
    from ..io import write_case

    seeds = list(seeds)
    out = Path(out)
    for done, seed in enumerate(seeds, start=1):
        start = time.perf_counter()
        case = make_case(domain, seed, shape=shape, missing_prob=missing_prob, version=version)
        folder = write_case(case, out / case_name(domain, seed), layout=layout, overwrite=overwrite)
        yield CaseWritten(done=done, total=len(seeds), folder=folder, seconds=time.perf_counter() - start)
