"""Training data: a cache of prepared slices, and random batches drawn from it.

Preparing a slice costs far more than training on it (a synthetic case takes
seconds to make, a BraTS case seconds to read), so the cases are prepared
once into a :class:`SliceCache`: for each case, the slices the network sees
(brain-cropped, z-scored inside the brain, padded to the network's multiple:
exactly :mod:`napari_tumorseg.inference.preprocess`), tumour slices and a few
tumour-free brain slices, stored as float16 in one ``.npz``.

:func:`sample_batch` draws a batch as a pure function of ``(seed, step)``:
tumour-biased random crops, flips, intensity jitter, and random modality
dropout (a dropped modality's image channels are zeroed and its availability
plane is 0, exactly what a case without that modality gives the segmenter),
so any non-empty subset of modalities segments, T2 + FLAIR included. Drawing
from ``(seed, step)`` alone makes a resumed run see the batches an
uninterrupted one would.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..io.case import MODALITIES, Case
from ..inference.preprocess import prepare_case, slices_to_input
from .intensity import randomise_appearance, smooth_like_resampling

CACHE_FORMAT = "napari-tumorseg-slice-cache/1"
_SUBSETS = [  # every non-empty proper subset of the four modalities, as keep-masks
    np.array([(bits >> c) & 1 for c in range(len(MODALITIES))], dtype=bool) for bits in range(1, 2 ** len(MODALITIES) - 1)
]


@dataclass(frozen=True)
class SliceCache:
    """Prepared slices of several cases; each case keeps its own brain-box size.

    Args:
        images: per case, ``(n, (2 * context + 1) * 4, H, W)`` float16 normalised image planes.
        labels: per case, ``(n, H, W)`` uint8 internal labels.
        availability: per case, ``(4,)`` 1 for modalities the case has.
        names: per case, its name.
        context: neighbouring slices on each side in the image planes.
    """

    images: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    availability: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    context: int

    def __post_init__(self) -> None:
        if not self.images:
            raise ValueError("a slice cache needs at least one case")
        # Flat index of every slice, and of the slices that hold tumour.
        index = np.array([(c, s) for c, lab in enumerate(self.labels) for s in range(len(lab))], dtype=np.int64)
        tumour = np.array([bool(self.labels[c][s].any()) for c, s in index], dtype=bool)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_tumour", tumour)

    @property
    def num_slices(self) -> int:
        return len(self._index)

    @property
    def num_tumour_slices(self) -> int:
        return int(self._tumour.sum())

    @property
    def image_channels(self) -> int:
        return int(self.images[0].shape[1])

    def slice_at(self, flat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image planes (float32), labels and availability of one slice by flat index."""
        case, local = self.locate(flat)
        return self.images[case][local].astype(np.float32), self.labels[case][local], self.availability[case]

    def locate(self, flat: int) -> tuple[int, int]:
        """The case and the slice within it of a flat index."""
        case, local = self._index[flat]
        return int(case), int(local)

    def save(self, path: str | os.PathLike[str], *, file_format: str = CACHE_FORMAT,
             per_case: dict[str, Sequence[np.ndarray]] | None = None) -> Path:
        """Write the cache atomically as an uncompressed ``.npz`` (fast to load).

        ``file_format`` and ``per_case`` (more arrays, one per case, by name) let a file that extends the
        cache (the mined hard negatives) share its layout.
        """
        from ..io.atomic import atomic_write_stream

        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(file_format), "context": np.array(self.context), "names": np.array(self.names),
        }
        columns = {"images": self.images, "labels": self.labels, "availability": self.availability,
                   **(per_case or {})}
        for key, values in columns.items():
            arrays.update({f"{key}_{i}": value for i, value in enumerate(values)})
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_stream(path, lambda stream: np.savez(stream, **arrays), overwrite=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SliceCache:
        """Read a cache written by :meth:`save`; ValueError if it is not one."""
        with np.load(path, allow_pickle=False) as data:
            return cls.from_npz(data, path, CACHE_FORMAT)

    @classmethod
    def from_npz(cls, data: Mapping[str, np.ndarray], path: str | os.PathLike[str], file_format: str) -> SliceCache:
        """The cache in an open ``.npz`` of ``file_format``; ValueError naming ``path`` if it is another."""
        if str(data["format"]) != file_format:
            raise ValueError(f"{path}: not a {file_format} file")
        names = tuple(str(n) for n in data["names"])
        return cls(
            images=tuple(data[f"images_{i}"] for i in range(len(names))),
            labels=tuple(data[f"labels_{i}"] for i in range(len(names))),
            availability=tuple(data[f"availability_{i}"] for i in range(len(names))),
            names=names,
            context=int(data["context"]),
        )


class FocusedSlices(Protocol):
    """Slices with, per slice, the voxels a crop must hold (``hard_negatives.HardNegatives`` is one).

    A protocol, so that this module does not import the miner that builds on it.
    """

    slices: SliceCache

    @property
    def num_slices(self) -> int: ...

    def focus_at(self, flat: int) -> np.ndarray: ...


def pick_slices(label: np.ndarray, brain_slices: np.ndarray, tumour_slices: int, empty_slices: int, rng: np.random.Generator) -> np.ndarray:
    """Which slices of a prepared case to keep: some with tumour, some brain without.

    Args:
        label: ``(z, H, W)`` cropped reference.
        brain_slices: ``(z,)`` whether each slice holds brain.
        tumour_slices: how many slices with tumour (all if fewer; 0 for none).
        empty_slices: how many brain slices without tumour.
        rng: the draw.
    """
    has_tumour = label.reshape(len(label), -1).any(axis=1)
    with_tumour = np.flatnonzero(has_tumour)
    without = np.flatnonzero(brain_slices & ~has_tumour)
    chosen = [
        rng.choice(pool, size=min(count, len(pool)), replace=False)
        for pool, count in ((with_tumour, tumour_slices), (without, empty_slices))
        if count > 0 and len(pool)
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)


def prepare_training_case(
    case: Case, *, multiple: int, margin: int, context: int, tumour_slices: int, empty_slices: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One case's training slices: ``(n, C, H, W)`` float16 images, ``(n, H, W)`` uint8 labels, ``(4,)`` availability.

    Args:
        case: a case with a reference mask.
        multiple: H and W are padded to a multiple of this (the network's ``2**depth``).
        margin: brain-box margin (the preprocessing's crop margin).
        context: neighbouring slices on each side (2.5D).
        tumour_slices: slices with tumour to keep.
        empty_slices: tumour-free brain slices to keep.
        seed: the draw of the slices.
    """
    if case.label is None:
        raise ValueError(f"case {case.name} has no reference mask to train on")
    prepared = prepare_case(case, multiple=multiple, margin=margin)
    label = prepared.crop.crop(case.label)
    picks = pick_slices(label, prepared.plan.brain_slices, tumour_slices, empty_slices, np.random.default_rng(seed))
    planes = slices_to_input(prepared.images, prepared.availability, picks, context)
    image_channels = (2 * context + 1) * len(MODALITIES)
    return planes[:, :image_channels].astype(np.float16), label[picks].astype(np.uint8), prepared.availability.copy()


def build_slice_cache(
    cases: Iterable[Case], *, multiple: int, margin: int = 4, context: int = 0, tumour_slices: int = 20,
    empty_slices: int = 4, seed: int = 0,
) -> SliceCache:
    """Prepare every case's training slices (see :func:`prepare_training_case`); case i draws with ``seed + i``."""
    images, labels, availability, names = [], [], [], []
    for i, case in enumerate(cases):
        img, lab, avail = prepare_training_case(
            case, multiple=multiple, margin=margin, context=context, tumour_slices=tumour_slices,
            empty_slices=empty_slices, seed=seed + i,
        )
        if len(lab):
            images.append(img), labels.append(lab), availability.append(avail), names.append(case.name)
    return SliceCache(tuple(images), tuple(labels), tuple(availability), tuple(names), context)


@dataclass(frozen=True)
class Augmentation:
    """How random batches are drawn.

    Args:
        crop: side of the square crops (a multiple of the network's 2**depth).
        tumour_crop_prob: chance a crop is centred near a tumour voxel (else anywhere in a random slice).
        flip_prob: chance of each flip (left-right, anterior-posterior).
        intensity_jitter: per modality, brain voxels become ``x * (1 + u) + v``, u, v uniform in +-this.
        modality_dropout: chance a sample keeps only a random non-empty proper subset of its modalities.
        appearance: chance a sample's modalities each get a random contrast curve, bias, blur
            and noise (:mod:`.intensity`); 0 draws nothing, so older runs replay exactly.
        smoothing: chance a sample's modalities are each made as smooth as a resampled sequence
            (after the appearance, noise included); 0 draws nothing, so older runs replay exactly.
        hard_negative_prob: chance a sample is a mined hard slice, cropped around the false tumour a
            model marked there (:mod:`.hard_negatives`); used only when the batch is given mined
            slices, and 0 draws nothing, so older runs replay exactly.
    """

    crop: int = 128
    tumour_crop_prob: float = 0.8
    flip_prob: float = 0.5
    intensity_jitter: float = 0.1
    modality_dropout: float = 0.35
    appearance: float = 0.0
    smoothing: float = 0.0
    hard_negative_prob: float = 0.0


def _crop_origin(size: int, crop: int, centre: int | None, rng: np.random.Generator) -> int:
    """Top-left corner of a crop along one axis; near ``centre`` (inside the crop) if given."""
    if size <= crop:
        return 0
    if centre is None:
        return int(rng.integers(0, size - crop + 1))
    low, high = max(0, centre - crop + 1), min(size - crop, centre)
    return int(rng.integers(low, high + 1))


def _cropped(array: np.ndarray, y0: int, x0: int, crop: int) -> np.ndarray:
    """``(..., H, W)`` -> ``(..., crop, crop)``, zero-padded where the slice is smaller."""
    part = array[..., y0 : y0 + crop, x0 : x0 + crop]
    if part.shape[-2:] == (crop, crop):
        return part
    out = np.zeros((*array.shape[:-2], crop, crop), dtype=array.dtype)
    out[..., : part.shape[-2], : part.shape[-1]] = part
    return out


def keep_mask(availability: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random non-empty proper subset of the present modalities (all of them if only one is present)."""
    present = np.asarray(availability) > 0
    options = [keep for keep in _SUBSETS if (keep & present).any() and (keep & present).sum() < present.sum()]
    if not options:
        return present
    return options[int(rng.integers(len(options)))] & present


def _random_voxel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A random ``(y, x)`` where ``mask`` is set."""
    ys, xs = np.nonzero(mask)
    pick = int(rng.integers(len(ys)))
    return int(ys[pick]), int(xs[pick])


def _draw_slice(
    cache: SliceCache, hard: FocusedSlices | None, aug: Augmentation, tumour_pool: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int] | None]:
    """One sample's slice (image, labels, availability) and the voxel its crop must hold, if any."""
    if hard is not None and aug.hard_negative_prob > 0 and rng.random() < aug.hard_negative_prob:
        flat = int(rng.integers(hard.num_slices))
        image, label, availability = hard.slices.slice_at(flat)
        return image, label, availability, _random_voxel(hard.focus_at(flat), rng)
    near_tumour = len(tumour_pool) > 0 and rng.random() < aug.tumour_crop_prob
    flat = int(rng.choice(tumour_pool) if near_tumour else rng.integers(cache.num_slices))
    image, label, availability = cache.slice_at(flat)
    return image, label, availability, _random_voxel(label, rng) if near_tumour else None


def sample_batch(
    cache: SliceCache, step: int, seed: int, batch_size: int, augmentation: Augmentation,
    hard: FocusedSlices | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A training batch, a pure function of ``(seed, step)``.

    Args:
        cache: the prepared slices.
        step: the optimisation step.
        seed: the run's seed.
        batch_size: samples in the batch.
        augmentation: crop size and random transforms.
        hard: mined hard slices (``hard_negatives.HardNegatives``), drawn with chance
            ``augmentation.hard_negative_prob``; None for none.

    Returns:
        ``(B, C + 4, crop, crop)`` float32 inputs (image planes, then availability
        planes) and ``(B, crop, crop)`` int64 labels.
    """
    rng = np.random.default_rng([seed, step])
    aug, crop = augmentation, augmentation.crop
    num_mod = len(MODALITIES)
    inputs = np.zeros((batch_size, cache.image_channels + num_mod, crop, crop), dtype=np.float32)
    targets = np.zeros((batch_size, crop, crop), dtype=np.int64)
    tumour_pool = np.flatnonzero(cache._tumour)
    for b in range(batch_size):
        image, label, availability, centre = _draw_slice(cache, hard, aug, tumour_pool, rng)
        y0 = _crop_origin(label.shape[0], crop, None if centre is None else centre[0], rng)
        x0 = _crop_origin(label.shape[1], crop, None if centre is None else centre[1], rng)
        image, label = _cropped(image, y0, x0, crop), _cropped(label, y0, x0, crop)
        if rng.random() < aug.flip_prob:
            image, label = image[..., ::-1], label[..., ::-1]
        if rng.random() < aug.flip_prob:
            image, label = image[..., ::-1, :], label[..., ::-1, :]
        image = image.reshape(-1, num_mod, crop, crop).copy()  # (context slots, modality, H, W)
        if aug.appearance > 0 and rng.random() < aug.appearance:
            for modality in range(num_mod):
                image[:, modality] = randomise_appearance(image[:, modality], rng)
        if aug.smoothing > 0 and rng.random() < aug.smoothing:
            for modality in range(num_mod):
                image[:, modality] = smooth_like_resampling(image[:, modality], rng)
        scale = 1 + rng.uniform(-aug.intensity_jitter, aug.intensity_jitter, num_mod)
        shift = rng.uniform(-aug.intensity_jitter, aug.intensity_jitter, num_mod)
        brain = image != 0  # background stays exactly 0, as the preprocessing leaves it
        image = np.where(brain, image * scale[None, :, None, None] + shift[None, :, None, None], 0.0)
        keep = availability > 0
        if rng.random() < aug.modality_dropout:
            keep = keep_mask(availability, rng)
        image[:, ~keep] = 0.0
        inputs[b, : cache.image_channels] = image.reshape(-1, crop, crop)
        inputs[b, cache.image_channels :] = keep.astype(np.float32)[:, None, None]
        targets[b] = label
    return inputs, targets


def validation_slices(cache: SliceCache, per_case: int = 8) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Whole tumour slices of each case, as network inputs with every modality the case has.

    Args:
        cache: the validation cases' slices.
        per_case: tumour slices per case, evenly spread.

    Returns per case ``(n, C + 4, H, W)`` float32 inputs and ``(n, H, W)`` labels.
    """
    inputs, labels = [], []
    for images, lab, availability in zip(cache.images, cache.labels, cache.availability):
        tumour = np.flatnonzero(lab.reshape(len(lab), -1).any(axis=1))
        if not len(tumour):
            continue
        picks = tumour[np.unique(np.linspace(0, len(tumour) - 1, min(per_case, len(tumour))).round().astype(int))]
        planes = images[picks].astype(np.float32)
        avail = np.broadcast_to(availability[None, :, None, None], (len(picks), len(availability), *planes.shape[-2:]))
        inputs.append(np.concatenate([planes, avail], axis=1).astype(np.float32))
        labels.append(lab[picks])
    return inputs, labels


def seed_range(text: str) -> list[int]:
    """``"A:B"`` -> seeds A..B-1; ``"A,B,C"`` -> those seeds. ValueError otherwise."""
    text = text.strip()
    if ":" in text:
        start, stop = (int(v) for v in text.split(":", 1))
        seeds = list(range(start, stop))
    else:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    if not seeds or min(seeds) < 0:
        raise ValueError(f"expected seeds as A:B (B > A >= 0) or a comma list, got {text!r}")
    return seeds


def overlapping(seeds: Sequence[int], reserved: Iterable[int]) -> list[int]:
    """The seeds among ``seeds`` that are also in ``reserved``."""
    reserved = set(reserved)
    return [s for s in seeds if s in reserved]
