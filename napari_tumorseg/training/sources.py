"""Where training cases come from: synthetic seeds, or a folder of BraTS cases.

Both end as a :class:`~napari_tumorseg.training.data.SliceCache`. A synthetic
cache is written once per (generator version, domain, seeds, grid, network
layout, slice counts) to a cache folder and reused by later runs, so a
resumed run, or the second architecture, skips making the cases. The cases
are made in worker processes (one per core by default): making them is most
of the cost.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..errors import CaseError
from ..io.case import Case
from .data import SliceCache, prepare_training_case


@dataclass(frozen=True)
class SliceLayout:
    """How each case is cut into training slices (part of the cache key).

    Args:
        multiple: padding multiple of H and W (the network's 2**depth).
        margin: brain-box margin (the preprocessing's crop margin).
        context: neighbouring slices on each side.
        tumour_slices: slices with tumour kept per case.
        empty_slices: tumour-free brain slices kept per case.
    """

    multiple: int = 16
    margin: int = 4
    context: int = 0
    tumour_slices: int = 20
    empty_slices: int = 4


def _synthetic_case_slices(domain: str, seed: int, shape: tuple[int, int, int] | None, layout: SliceLayout,
                           version: str | None = None) -> tuple:
    from ..synth.generate import GENERATOR_VERSION, make_case

    grid = {} if shape is None else {"shape": shape}  # None: make_case's own default, the BraTS grid
    case = make_case(domain, seed, version=version or GENERATOR_VERSION, **grid)
    images, labels, availability = prepare_training_case(
        case, multiple=layout.multiple, margin=layout.margin, context=layout.context,
        tumour_slices=layout.tumour_slices, empty_slices=layout.empty_slices, seed=seed,
    )
    return images, labels, availability, case.name


def synthetic_cache_key(domain: str, seeds: Sequence[int], shape: tuple[int, int, int] | None, layout: SliceLayout,
                        version: str | None = None) -> str:
    """A short hash naming the cache file of these cases."""
    from ..synth.generate import GENERATOR_VERSION

    described = {
        "generator": version or GENERATOR_VERSION, "domain": domain, "seeds": list(seeds),
        "shape": list(shape) if shape else None, "layout": asdict(layout),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def synthetic_slice_cache(
    domain: str,
    seeds: Sequence[int],
    layout: SliceLayout,
    *,
    shape: tuple[int, int, int] | None = None,
    cache_dir: Path | None = None,
    workers: int | None = None,
    version: str | None = None,
) -> SliceCache:
    """Training slices of synthetic cases, made in parallel and cached on disk.

    Args:
        domain: "glioma" or "metastasis".
        seeds: the cases' seeds.
        layout: how the cases are cut into slices.
        shape: synthetic grid (default: the BraTS 1 mm grid).
        cache_dir: where the cache file lives; None for no file.
        workers: processes making cases (default: one per CPU, at most len(seeds)); 1 runs in this process.
        version: generator version (default: ``synth.GENERATOR_VERSION``).
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"slices-{domain}-{synthetic_cache_key(domain, seeds, shape, layout, version)}.npz"
        if path.is_file():
            try:
                return SliceCache.load(path)
            except (OSError, ValueError, KeyError):
                pass  # damaged: rebuild
    workers = max(1, min(workers or os.cpu_count() or 1, len(seeds)))
    if workers == 1:
        parts = [_synthetic_case_slices(domain, s, shape, layout, version) for s in seeds]
    else:
        # spawn, not fork: the parent may already hold torch's thread pools.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=die_with_parent) as pool:
            parts = list(pool.map(_synthetic_case_slices, [domain] * len(seeds), seeds, [shape] * len(seeds),
                                  [layout] * len(seeds), [version] * len(seeds)))
    parts = [p for p in parts if len(p[1])]
    cache = SliceCache(
        images=tuple(p[0] for p in parts), labels=tuple(p[1] for p in parts),
        availability=tuple(p[2] for p in parts), names=tuple(p[3] for p in parts), context=layout.context,
    )
    if path is not None:
        cache.save(path)
    return cache


def die_with_parent() -> None:
    """Worker initializer: on Linux, end this worker when the process that started it dies.

    A run stopped by SIGTERM or SIGKILL while making cases would otherwise
    leave its workers making cases for nobody, holding the CPU.
    """
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the request took hold
        os._exit(1)


def case_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """The sub-folders of ``folder`` that look like one case each, sorted by name.

    Raises CaseError if the folder does not exist or holds no case.
    """
    from ..io.folders import looks_like_case

    folder = Path(folder)
    if not folder.is_dir():
        raise CaseError(folder, "no such folder of cases")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and looks_like_case(p))
    if not found:
        raise CaseError(folder, "holds no case folders (BraTS layout: one folder per case with its modalities and _seg)")
    return found


def read_cases_with_reference(folders: Sequence[Path]) -> Iterator[Case]:
    """Read each case folder; CaseError (naming the folder) if one has no reference mask."""
    from ..io.reader import read_case

    for folder in folders:
        case = read_case(folder)
        if case.label is None:
            raise CaseError(folder, "has no reference mask (*_seg / *-seg file) to train or evaluate on")
        yield case


def folder_slice_cache(folders: Sequence[Path], layout: SliceLayout, seed: int = 0) -> SliceCache:
    """Training slices of BraTS case folders (read one at a time; case i draws its slices with ``seed + i``)."""
    images, labels, availability, names = [], [], [], []
    for i, case in enumerate(read_cases_with_reference(folders)):
        img, lab, avail = prepare_training_case(
            case, multiple=layout.multiple, margin=layout.margin, context=layout.context,
            tumour_slices=layout.tumour_slices, empty_slices=layout.empty_slices, seed=seed + i,
        )
        if len(lab):
            images.append(img), labels.append(lab), availability.append(avail), names.append(case.name)
    if not names:
        raise CaseError(folders[0].parent if folders else None, "no case gave any training slice")
    return SliceCache(tuple(images), tuple(labels), tuple(availability), tuple(names), layout.context)


def describe_cache(cache: SliceCache) -> dict:
    """Counts for the model card and the log."""
    return {
        "cases": len(cache.names),
        "slices": cache.num_slices,
        "tumour_slices": cache.num_tumour_slices,
        "first_case": cache.names[0],
        "last_case": cache.names[-1],
        "channels": cache.image_channels,
        "mean_box_hw": [float(np.mean([im.shape[-2] for im in cache.images])),
                        float(np.mean([im.shape[-1] for im in cache.images]))],
    }
