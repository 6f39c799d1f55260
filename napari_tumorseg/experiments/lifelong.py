"""Paper 004's experiment on synthetic glioma: lifelong training on a stream of alternating modalities.

Setting. Each training patient has one modality only, T2 or FLAIR (half
each; the other three are absent: zeroed, availability 0, exactly what the
segmenter is given for such a case). The patients arrive as a stream of
batches whose modality alternates, T2-only then FLAIR-only, ...:

- ``large``: few batches of many patients;
- ``small``: many batches of few patients;
- ``joint``: the reference without a stream: all patients mixed at every step.

Each batch gets ``steps_per_patient`` optimiser steps per patient in it, so
every setting and both networks get the same number of gradient steps and
samples; within a batch only its own patients are seen (no replay). The
crops of step t are a pure function of (seed, t) and the batch, so the static
U-Net and the Dy-CNN see exactly the same samples.

Networks start from scratch, as in the paper, which trains the models through
the stream ("LL-based training approach is used to train the models"); the
shipped networks were trained on all four modalities with modality dropout,
so they already segment T2-only and FLAIR-only input and would hide what the
stream does. The Dy-CNN's attention temperature is annealed 30 -> 1 over the
first ``anneal_fraction`` of the steps, as in ``tumorseg train``.

After every batch both test sets (T2-only patients, FLAIR-only patients,
disjoint as in the paper) are scored: Dice of WT, TC, ET over pooled voxels.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..io.case import MODALITIES
from ..jobs import Clock, Progress
from .common import (
    LIFELONG_TEST_SEEDS,
    LIFELONG_TRAIN_SEEDS,
    check_seeds,
    seed_list,
)
from .journal import Journal

STREAM_MODALITIES: tuple[str, str] = ("t2", "flair")
SETTINGS: tuple[str, ...] = ("joint", "large", "small")


@dataclass
class LifelongConfig:
    """Everything that defines a lifelong experiment (recorded in results.json).

    Args:
        shape: synthetic grid (default 78x120x120: 2 mm voxels over the BraTS field of view).
        train_patients: stream patients (seeds from 40000), alternately T2-only and FLAIR-only.
        test_patients: test patients (seeds from 41000): the first half T2-only, the rest FLAIR-only.
        test_slices: tumour slices scored per test patient.
        tumour_slices: tumour slices kept per training patient.
        empty_slices: tumour-free brain slices kept per training patient.
        settings: from SETTINGS.
        large_batch: patients per batch in the "large" setting.
        small_batch: patients per batch in the "small" setting (and the joint run's scoring interval).
        steps_per_patient: optimiser steps per patient in a batch.
        batch_size: crops per step.
        crop: crop side (a multiple of 2**depth).
        lr: AdamW learning rate (constant after a warm-up: a stream has no known end).
        warmup_steps: linear warm-up.
        weight_decay: AdamW's weight decay.
        archs: "unet" and/or "dycnn".
        base_width: width of both networks.
        depth: down-samplings.
        num_kernels: the Dy-CNN's K.
        anneal_fraction: part of the steps over which the Dy-CNN's temperature goes 30 -> 1.
        seeds: repeats (initial weights and crops), ``seed``, ``seed + 1``, ...
        seed: the first repeat seed.
        workers: processes making synthetic cases (None: one per core).
        availability: give the networks the availability planes, as the segmenter has (True),
            or constant planes, so a network cannot tell which modality it is shown (False,
            closer to the paper's networks, whose only input was the image).
    """

    shape: tuple[int, int, int] = (78, 120, 120)
    train_patients: int = 24
    test_patients: int = 8
    test_slices: int = 6
    tumour_slices: int = 16
    empty_slices: int = 2
    settings: tuple[str, ...] = SETTINGS
    large_batch: int = 6
    small_batch: int = 2
    steps_per_patient: int = 10
    batch_size: int = 8
    crop: int = 64
    lr: float = 2e-3
    warmup_steps: int = 10
    weight_decay: float = 1e-4
    archs: tuple[str, ...] = ("unet", "dycnn")
    base_width: int = 16
    depth: int = 4
    num_kernels: int = 4
    anneal_fraction: float = 0.1
    seeds: int = 3
    seed: int = 0
    workers: int | None = None
    availability: bool = True

    def __post_init__(self) -> None:
        self.shape = tuple(int(n) for n in self.shape)
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise ValueError(f"unknown settings {unknown}; expected some of {SETTINGS}")
        for name, size in (("large_batch", self.large_batch), ("small_batch", self.small_batch)):
            if size < 1 or self.train_patients % (2 * size):
                raise ValueError(f"train_patients ({self.train_patients}) must be a multiple of 2 * {name} ({size})")
        if self.test_patients < 2 or self.test_patients % 2:
            raise ValueError("test_patients must be even (half T2-only, half FLAIR-only)")
        if self.crop % 2**self.depth:
            raise ValueError(f"crop {self.crop} is not a multiple of 2**depth = {2**self.depth}")

    @classmethod
    def quick(cls, **changes: Any) -> LifelongConfig:
        """The smoke-test setting: a tiny grid and network, 4 stream patients, a few steps."""
        base = cls(shape=(32, 48, 48), train_patients=4, test_patients=2, test_slices=2, tumour_slices=4,
                   empty_slices=1, large_batch=2, small_batch=1, steps_per_patient=2, batch_size=4, crop=16,
                   base_width=4, depth=2, num_kernels=2, seeds=2, workers=1)
        return replace(base, **changes)

    def batch_patients(self, setting: str) -> int:
        return self.large_batch if setting == "large" else self.small_batch

    @property
    def total_steps(self) -> int:
        return self.train_patients * self.steps_per_patient

    def units(self) -> int:
        runs = len(self.archs) * self.seeds
        return 2 + runs * sum(self.train_patients // self.batch_patients(s) for s in self.settings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def restrict(cache: Any, cases: Sequence[int], modality: str | Sequence[str], availability: bool = True) -> Any:
    """A SliceCache of some cases, each with one modality present and the others absent.

    Args:
        cache: the prepared slices (all four modalities).
        cases: indices of the cases to keep.
        modality: "t2" or "flair" for every case, or one per case: the other image
            channels are zeroed and their availability is 0.
        availability: False sets every availability plane to 1 whatever is present (the
            network is not told which modality it sees).
    """
    from ..training.data import SliceCache

    per_case = [modality] * len(cases) if isinstance(modality, str) else list(modality)
    if len(per_case) != len(cases):
        raise ValueError(f"{len(per_case)} modalities for {len(cases)} cases")
    images, flags = [], []
    for c, name in zip(cases, per_case):
        index = MODALITIES.index(name)
        planes = cache.images[c].copy()
        keep = np.zeros(planes.shape[1], dtype=bool)
        keep[index :: len(MODALITIES)] = True  # this modality in every context slot
        planes[:, ~keep] = 0
        images.append(planes)
        present = np.arange(len(MODALITIES)) == index if availability else np.ones(len(MODALITIES), dtype=bool)
        flags.append(present.astype(np.float32))
    return SliceCache(tuple(images), tuple(cache.labels[c] for c in cases), tuple(flags),
                      tuple(cache.names[c] for c in cases), cache.context)


def stream_batches(
    config: LifelongConfig, setting: str, modalities: Sequence[str]
) -> list[tuple[str | None, list[int]]]:
    """The stream: (modality or None for mixed, training case indices) per batch, in arrival order.

    Args:
        config: the experiment.
        setting: "joint", "large" or "small".
        modalities: the modality of each training case (alternating T2, FLAIR by seed).
    """
    size = config.batch_patients(setting)
    if setting == "joint":
        everyone = list(range(len(modalities)))
        return [(None, everyone) for _ in range(len(modalities) // size)]
    queues = {m: [i for i, mod in enumerate(modalities) if mod == m] for m in STREAM_MODALITIES}
    batches = []
    for b in range(len(modalities) // size):
        modality = STREAM_MODALITIES[b % 2]
        batches.append((modality, [queues[modality].pop(0) for _ in range(size)]))
    return batches


def _score(model: Any, test: tuple[list[np.ndarray], list[np.ndarray]], device: Any) -> dict[str, float]:
    import torch

    from ..models.labels import class_map
    from ..models.losses import region_dice

    model.eval()
    predictions, references = [], []
    with torch.inference_mode():
        for inputs, labels in zip(*test):
            for start in range(0, len(inputs), 8):
                batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + 8])).to(device)
                predictions.append(class_map(model(batch)).to(torch.uint8).cpu().numpy().ravel())
            references.append(labels.ravel())
    scores = region_dice(np.concatenate(predictions), np.concatenate(references))
    scores["mean"] = float(np.mean(list(scores.values())))
    return {k: round(float(v), 6) for k, v in scores.items()}


def train_stream(
    arch: str, setting: str, seed: int, config: LifelongConfig, train: Any, modalities: Sequence[str],
    tests: dict[str, Any], device: Any, clock: Clock,
) -> Generator[Progress, None, dict[str, Any]]:
    """Train one network from scratch through one stream; score both test sets after every batch."""
    import torch

    from ..models.losses import dice_ce_loss
    from ..models import build_model
    from ..models.dynconv import TemperatureAnnealer
    from ..training.data import Augmentation, sample_batch

    torch.manual_seed(seed)
    hparams: dict[str, Any] = dict(base_width=config.base_width, depth=config.depth)
    if arch == "dycnn":
        hparams["num_kernels"] = config.num_kernels
    model = build_model(arch, **hparams).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    annealer = None
    if arch == "dycnn":
        annealer = TemperatureAnnealer(model, 30.0, 1.0, int(round(config.total_steps * config.anneal_fraction)))
    augmentation = Augmentation(crop=config.crop, modality_dropout=0.0)
    step, losses, curve = 0, [], []
    started = time.perf_counter()
    for number, (modality, cases) in enumerate(stream_batches(config, setting, modalities), start=1):
        clock.check()
        # Joint: the same single-modality patients, all of them mixed in every step.
        data = restrict(train, cases, modality if modality is not None else [modalities[c] for c in cases],
                        config.availability)
        for _ in range(config.steps_per_patient * config.small_batch if setting == "joint"
                       else config.steps_per_patient * len(cases)):
            inputs, targets = sample_batch(data, step, seed, config.batch_size, augmentation)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * min(1.0, (step + 1) / max(config.warmup_steps, 1))
            model.train()
            loss = dice_ce_loss(model(torch.from_numpy(inputs).to(device)), torch.from_numpy(targets).to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if annealer is not None:
                annealer.step()
            losses.append(round(float(loss.detach()), 5))
            step += 1
        curve.append({"batch": number, "step": step, "modality": modality or "mixed",
                      **{name: _score(model, test, device) for name, test in tests.items()}})
        yield clock.tick(f"{arch} {setting} seed {seed}: batch {number} ({modality or 'mixed'})", phase="training")
    return {"arch": arch, "setting": setting, "seed": seed, "curve": curve, "losses": losses,
            "seconds": round(time.perf_counter() - started, 2)}


def run_lifelong(
    config: LifelongConfig,
    *,
    device: Any = "cpu",
    cache_dir: Path | None = None,
    cancel: Any = None,
    journal: Journal | None = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """Run every (arch, setting, seed); yields progress, returns the raw runs (see ``lifelong_analysis``).

    Args:
        config: the experiment's settings.
        device: where the networks train.
        cache_dir: folder of the cached training and test slices (None: no cache).
        cancel: a threading.Event or a callable returning True to stop (jobs.Cancelled).
        journal: finished runs to reuse and to record (see ``journal``); None keeps none.
    """
    from ..training.data import validation_slices
    from ..training.sources import SliceLayout, synthetic_slice_cache

    clock = Clock(config.units(), cancel=cancel)
    train_seeds = seed_list(LIFELONG_TRAIN_SEEDS, config.train_patients)
    test_seeds = seed_list(LIFELONG_TEST_SEEDS, config.test_patients)
    check_seeds({"train": ("glioma", train_seeds), "test": ("glioma", test_seeds)})
    tick = time.perf_counter()
    multiple = 2**config.depth
    common = dict(shape=config.shape, cache_dir=cache_dir, workers=config.workers)
    train = synthetic_slice_cache("glioma", train_seeds, SliceLayout(
        multiple=multiple, tumour_slices=config.tumour_slices, empty_slices=config.empty_slices), **common)
    yield clock.tick(f"{len(train.names)} training patients", phase="preparing")
    test = synthetic_slice_cache("glioma", test_seeds, SliceLayout(
        multiple=multiple, tumour_slices=3 * config.test_slices, empty_slices=0), **common)
    yield clock.tick(f"{len(test.names)} test patients", phase="preparing")
    if len(train.names) != config.train_patients or len(test.names) != config.test_patients:
        raise ValueError("a synthetic glioma case without tumour slices: use a finer grid")
    half = config.test_patients // 2
    tests = {
        "t2": validation_slices(restrict(test, range(half), "t2", config.availability), per_case=config.test_slices),
        "flair": validation_slices(restrict(test, range(half, config.test_patients), "flair", config.availability),
                                   per_case=config.test_slices),
    }
    # Alternate by seed order so each modality gets every other synthetic case.
    modalities = [STREAM_MODALITIES[i % 2] for i in range(config.train_patients)]
    preparing = time.perf_counter() - tick
    journal = journal or Journal(None, {})
    runs, reused = [], 0
    for seed in seed_list(config.seed, config.seeds):
        for setting in config.settings:
            for arch in config.archs:
                run = journal.get((seed, setting, arch))
                if run is None:
                    run = yield from train_stream(arch, setting, seed, config, train, modalities, tests, device, clock)
                    journal.add((seed, setting, arch), run)
                else:  # finished before an interruption: count its batches as done
                    reused += 1
                    yield clock.tick(f"{arch} {setting} seed {seed}: from the journal", phase="training",
                                     units=len(run["curve"]))
                runs.append(run)
    return {
        "runs": runs,
        "runs_from_journal": reused,
        "data": {
            "train": [{"name": n, "modality": m} for n, m in zip(train.names, modalities)],
            "test": {"t2": list(test.names[:half]), "flair": list(test.names[half:])},
            "test_slices": {name: int(sum(len(x) for x in t[0])) for name, t in tests.items()},
            "streams": {s: [{"modality": m or "mixed", "patients": len(c)} for m, c in
                            stream_batches(config, s, modalities)] for s in config.settings},
        },
        "timings": {"preparing_s": round(preparing, 2), "total_s": round(clock.elapsed, 2)},
    }
