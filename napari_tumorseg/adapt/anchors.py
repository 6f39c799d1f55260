"""Source-domain slices: the guard's fixed anchor set and the replay set.

Both are synthetic glioma (the source domain the shipped models were trained
on), made deterministically by ``synth.make_case`` from fixed seeds that no
training or evaluation command uses (training takes seeds from 0, held-out
evaluation from 1000): the anchor set from ANCHOR_SEEDS, the replay set from
REPLAY_SEEDS, so the guard never scores slices that replay trained on.

From each case, axial slices through the tumour are taken, evenly spread over
its extent (the anchor: ANCHOR_SLICES_PER_CASE, the middle one; replay:
REPLAY_SLICES_PER_CASE), and prepared exactly as the segmenter prepares
slices for the network at hand (size multiple, 2.5D context, crop margin).
Making a full-size case takes a few seconds, so the prepared slices are
cached once per network layout in the user cache folder
(``$TUMORSEG_HOME/cache`` or the platform's), as a compressed ``.npz``
written atomically; a damaged cache file is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..jobs import CancelFlag, Clock, Progress, drive
from ..models.config import ModelConfig, PreprocessingConfig
from .config import PHASE_PREPARING_SOURCE, AdaptConfig
from .corrections import case_corrections, slices_with_tumour
from .eval_sets import ANCHOR_SET, EvalSet
from .sampling import SlicePool

# One slice from each of 16 cases, not four from each of four: slices of one case are alike, so four
# cases measured four tumours. Against 80 slices of 20 held-out glioma cases, the guard's verdict on
# 16 adapted versions agreed 16 times with this set and 9 times with the four-case one, whose ET rose
# where the larger set's fell (docs/results/guard-anchor). Same 16 slices, same scoring time.
ANCHOR_SEEDS: tuple[int, ...] = tuple(range(5001, 5017))
ANCHOR_SLICES_PER_CASE = 1
REPLAY_SEEDS: tuple[int, ...] = tuple(range(6001, 6033))
REPLAY_SLICES_PER_CASE = 4
# The replay's faintly enhancing glioma (``replay_pools_steps(faint=True)``): the first replay seed after the first
# whose generator-version-7 draw enhances faintly (0.15-0.45 white-matter units) with enhancing tumour on each of
# its replayed slices (tests/test_adapt_anchors.py; docs/results/faint-replay).
REPLAY_FAINT_SEED = 6018
REPLAY_FAINT_VERSION = "7"
# The absent-class correction's faint calibration set (``AdaptConfig.keep_absent_faint``, ``adapt.prior``): the
# first four seeds from 5101 whose generator-version-7 draw enhances faintly with enhancing tumour on the middle
# tumour slice, one slice each (tests/test_adapt_anchors.py). The anchor's phantoms enhance brightly. Four, not
# eight: each slice costs two passes (parent and adapted), and eight made the correction 7 % of an adaptation.
FAINT_CALIBRATION_SEEDS: tuple[int, ...] = (5103, 5105, 5112, 5113)
FAINT_CALIBRATION_SET = "faint-enhancement"
DOMAIN = "glioma"
CACHE_FORMAT = "napari-tumorseg-source-slices/1"

Group = tuple[np.ndarray, np.ndarray, tuple[str, ...]]  # inputs, labels, names


def default_cache_dir() -> Path:
    """``$TUMORSEG_HOME/cache``, else the platform's user cache folder."""
    from ..paths import cache_home

    return cache_home()


def _source_case_slices(
    seed: int,
    shape: tuple[int, int, int] | None,
    per_case: int,
    config: ModelConfig,
    preprocessing: PreprocessingConfig,
    version: str | None = None,
) -> Group:
    """One synthetic glioma's tumour slices, prepared for ``config``'s input layout (``version``: the generator's)."""
    from ..synth.generate import GENERATOR_VERSION, make_case

    options = {"version": version or GENERATOR_VERSION, **({"shape": shape} if shape is not None else {})}
    case = make_case(DOMAIN, seed, **options)
    assert case.label is not None  # synthetic cases always carry their reference
    picks = slices_with_tumour(case.label, limit=per_case)
    prepared = case_corrections(
        case, case.label, picks, model_config=config, preprocessing=preprocessing, reference_slices=0
    )
    return prepared.inputs, prepared.labels, tuple(f"{case.name}:z{z}" for z in picks)


def _cache_key(
    seeds: Sequence[int], shape: tuple[int, int, int] | None, per_case: int, layout: tuple[int, int, int],
    version: str | None = None,
) -> str:
    from ..synth.generate import GENERATOR_VERSION

    depth, context, margin = layout
    described = {
        "format": CACHE_FORMAT,
        "generator": version or GENERATOR_VERSION,
        "domain": DOMAIN,
        "seeds": list(seeds),
        "shape": list(shape) if shape else None,
        "per_case": per_case,
        "depth": depth,
        "context": context,
        "margin": margin,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:20]


def _read_cache(path: Path) -> list[Group] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            count = int(data["count"])
            return [
                (data[f"inputs_{i}"], data[f"labels_{i}"], tuple(str(n) for n in data[f"names_{i}"]))
                for i in range(count)
            ]
    except (OSError, KeyError, ValueError):
        return None  # missing or damaged: rebuild


def _write_cache(path: Path, groups: list[Group]) -> None:
    arrays: dict[str, np.ndarray] = {"count": np.array(len(groups))}
    for i, (inputs, labels, names) in enumerate(groups):
        arrays[f"inputs_{i}"], arrays[f"labels_{i}"], arrays[f"names_{i}"] = inputs, labels, np.array(names)
    from ..errors import WriteError
    from ..io.atomic import atomic_write_stream

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_stream(path, lambda stream: np.savez_compressed(stream, **arrays), overwrite=True)
    except (OSError, WriteError):
        return  # a read-only cache folder only costs time


# In-memory cache of prepared source slices, keyed by what defines them (a few entries at most).
_MEMORY: dict[tuple, tuple[Group, ...]] = {}
_MEMORY_ENTRIES = 8


def source_slices_steps(
    seeds: Sequence[int],
    model_config: ModelConfig,
    preprocessing: PreprocessingConfig | None = None,
    *,
    per_case: int = REPLAY_SLICES_PER_CASE,
    shape: tuple[int, int, int] | None = None,
    cache_dir: Path | None | bool = True,
    cancel: CancelFlag = None,
    version: str | None = None,
) -> Generator[Progress, None, list[Group]]:
    """Prepared tumour slices of synthetic glioma cases, one group per seed; a generator.

    Yields one progress report per synthetic case made (nothing when cached),
    checking ``cancel`` before each, so the first, slow build can be followed
    and cancelled like the rest of an adaptation.

    Args:
        seeds: the synthetic cases' seeds.
        model_config: the network the slices are prepared for (only its input
            layout matters: depth, 2.5D context).
        preprocessing: its preprocessing (default settings if None).
        per_case: slices per case, spread over the tumour.
        shape: the synthetic grid (default: the BraTS 1 mm grid).
        cache_dir: the cache folder; True for :func:`default_cache_dir`, None or False for none.
        cancel: a threading.Event or callable; a cancel raises Cancelled.
        version: the generator version that draws the cases (None: the default, ``GENERATOR_VERSION``).
    """
    preprocessing = preprocessing or PreprocessingConfig()
    folder = default_cache_dir() if cache_dir is True else (cache_dir or None)
    shape = tuple(int(n) for n in shape) if shape is not None else None
    layout = (model_config.depth, model_config.context, preprocessing.crop_margin)
    key = (tuple(seeds), shape, per_case, layout, folder, version)
    if key in _MEMORY:
        return list(_MEMORY[key])
    path = None
    groups: list[Group] | None = None
    if folder is not None:
        path = folder / f"source-slices-{_cache_key(tuple(seeds), shape, per_case, layout, version)}.npz"
        groups = _read_cache(path) if path.is_file() else None
    if groups is None:
        # Width, architecture and temperature do not change the input: build for the layout only.
        config = ModelConfig(depth=layout[0], context=layout[1])
        clock = Clock(len(seeds), PHASE_PREPARING_SOURCE, cancel)
        groups = []
        for seed in seeds:
            clock.check()
            groups.append(
                _source_case_slices(seed, shape, per_case, config, PreprocessingConfig(crop_margin=layout[2]), version)
            )
            yield clock.tick(detail=f"synthetic {DOMAIN} {seed}")
        if path is not None:
            _write_cache(path, groups)
    if len(_MEMORY) >= _MEMORY_ENTRIES:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = tuple(groups)
    return list(groups)


def source_slices(
    seeds: Sequence[int], model_config: ModelConfig, preprocessing: PreprocessingConfig | None = None, **options: Any
) -> list[Group]:
    """:func:`source_slices_steps` run to its end (same arguments)."""
    return drive(source_slices_steps(seeds, model_config, preprocessing, **options))


def anchor_set_steps(
    model_config: ModelConfig,
    preprocessing: PreprocessingConfig | None = None,
    *,
    seeds: Sequence[int] = ANCHOR_SEEDS,
    per_case: int = ANCHOR_SLICES_PER_CASE,
    shape: tuple[int, int, int] | None = None,
    cache_dir: Path | None | bool = True,
    cancel: CancelFlag = None,
) -> Generator[Progress, None, EvalSet]:
    """The guard's fixed source anchor set, as a generator (see :func:`source_slices_steps`)."""
    groups = yield from source_slices_steps(
        seeds, model_config, preprocessing, per_case=per_case, shape=shape, cache_dir=cache_dir, cancel=cancel
    )
    description = {
        "domain": f"synthetic {DOMAIN}",
        "seeds": list(seeds),
        "slices_per_case": per_case,
        "shape": list(shape) if shape else "BraTS 1 mm",
        "names": [n for _, _, names in groups for n in names],
    }
    return EvalSet(ANCHOR_SET, tuple((inputs, labels) for inputs, labels, _ in groups), description)


def anchor_set(model_config: ModelConfig, preprocessing: PreprocessingConfig | None = None, **options: Any) -> EvalSet:
    """The guard's fixed source anchor set (the arguments of :func:`anchor_set_steps`)."""
    return drive(anchor_set_steps(model_config, preprocessing, **options))


def faint_calibration_set_steps(
    model_config: ModelConfig,
    preprocessing: PreprocessingConfig | None = None,
    *,
    shape: tuple[int, int, int] | None = None,
    cache_dir: Path | None | bool = True,
    cancel: CancelFlag = None,
) -> Generator[Progress, None, EvalSet]:
    """The faintly enhancing phantoms the absent-class correction also keeps, as a generator (see the anchor's)."""
    groups = yield from source_slices_steps(
        FAINT_CALIBRATION_SEEDS, model_config, preprocessing, per_case=1, shape=shape, cache_dir=cache_dir,
        cancel=cancel, version=REPLAY_FAINT_VERSION)
    description = {"domain": f"synthetic {DOMAIN}, generator version {REPLAY_FAINT_VERSION}, faint enhancement",
                   "seeds": list(FAINT_CALIBRATION_SEEDS), "names": [n for _, _, names in groups for n in names]}
    return EvalSet(FAINT_CALIBRATION_SET, tuple((inputs, labels) for inputs, labels, _ in groups), description)


def calibration_sets_steps(
    config: AdaptConfig, model_config: ModelConfig, preprocessing: PreprocessingConfig | None = None, **options: Any
) -> Generator[Progress, None, list[EvalSet]]:
    """The sets ``config``'s absent-class correction keeps besides the anchor (options as the anchor's)."""
    if not (config.keep_absent and config.keep_absent_faint):
        return []
    return [(yield from faint_calibration_set_steps(model_config, preprocessing, **options))]


def calibration_sets(
    config: AdaptConfig, model_config: ModelConfig, preprocessing: PreprocessingConfig | None = None, **options: Any
) -> list[EvalSet]:
    """:func:`calibration_sets_steps` run to its end (same arguments)."""
    return drive(calibration_sets_steps(config, model_config, preprocessing, **options))


def replay_pools_steps(
    count: int,
    model_config: ModelConfig,
    preprocessing: PreprocessingConfig | None = None,
    *,
    per_case: int = REPLAY_SLICES_PER_CASE,
    shape: tuple[int, int, int] | None = None,
    cache_dir: Path | None | bool = True,
    cancel: CancelFlag = None,
    faint: bool = False,
) -> Generator[Progress, None, list[SlicePool]]:
    """``count`` source slices to replay, as SlicePools (one per case); none for count 0.

    Args:
        count: replay slices wanted (at most len(REPLAY_SEEDS) * per_case).
        model_config, preprocessing, per_case, shape, cache_dir, cancel: as for :func:`source_slices_steps`.
        faint: the last case replayed is REPLAY_FAINT_SEED drawn by generator version 7, whose enhancing
            tumour enhances faintly (``AdaptConfig.replay_faint``); with one case only, that case.
    """
    if count <= 0:
        return []
    cases = min(-(-count // per_case), len(REPLAY_SEEDS))
    options = {"per_case": per_case, "shape": shape, "cache_dir": cache_dir, "cancel": cancel}
    bright = REPLAY_SEEDS[: cases - 1] if faint else REPLAY_SEEDS[:cases]
    groups = (yield from source_slices_steps(bright, model_config, preprocessing, **options)) if bright else []
    if faint:
        groups += yield from source_slices_steps(
            (REPLAY_FAINT_SEED,), model_config, preprocessing, version=REPLAY_FAINT_VERSION, **options)
    pools, remaining = [], count
    for inputs, labels, names in groups:
        take = min(remaining, len(names))
        if take:
            pools.append(SlicePool.from_arrays(inputs[:take], labels[:take], names[:take]))
        remaining -= take
    return pools


def replay_pools(
    count: int, model_config: ModelConfig, preprocessing: PreprocessingConfig | None = None, **options: Any
) -> list[SlicePool]:
    """The replay set (the arguments of :func:`replay_pools_steps`)."""
    return drive(replay_pools_steps(count, model_config, preprocessing, **options))
