"""Synthetic cases written to disk as BraTS folders: a long job (see :mod:`napari_tumorseg.jobs`).

This is the long-running part of ``tumorseg synth``. It follows the one
contract for long work: a report after each case (its folder as the report's
data), the cancel flag checked before each, :class:`~napari_tumorseg.jobs.Cancelled`
raised to stop; it returns the folders written.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from os import PathLike
from pathlib import Path

from ..jobs import CancelFlag, Clock, Progress
from .generate import GENERATOR_VERSION, case_name, make_case
from .grid import BRATS_SHAPE


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
    cancel: CancelFlag = None,
) -> Generator[Progress, None, list[Path]]:
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
        cancel: the job's cancel flag, checked before each case.

    Yields:
        A report after each case: its name as the detail, its folder as the data.

    Raises:
        CaseError: a case folder cannot be written (or exists, without ``overwrite``).
        Cancelled: stopped before the next case; the cases already written stay.
    """
    from ..io import write_case

    seeds = list(seeds)
    clock = Clock(len(seeds), "writing cases", cancel)
    written: list[Path] = []
    for seed in seeds:
        clock.check()
        case = make_case(domain, seed, shape=shape, missing_prob=missing_prob, version=version)
        written.append(write_case(case, Path(out) / case_name(domain, seed), layout=layout, overwrite=overwrite))
        yield clock.tick(detail=case.name, data=written[-1])
    return written
