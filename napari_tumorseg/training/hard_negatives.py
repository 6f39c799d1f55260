"""Hard negatives: the slices where a trained model marks tumour on normal anatomy, to train against.

The training slices are drawn blindly (some tumour slices, a few tumour-free
ones per case), so the normal anatomy a model confuses with tumour (a
periventricular cap as bright as oedema, the rim of the fourth ventricle, a
white-matter hyperintensity beside the lesion) turns up in a crop only by
chance. Mining, as in bootstrapping for detectors (Sung & Poggio 1998) and
online hard example mining (Shrivastava et al., CVPR 2016), runs the model
over training cases, keeps per case the slices with the most false tumour
voxels, and remembers where they are (the *focus*), so that a fine-tuning can
centre some of its crops on them (``Augmentation.hard_negative_prob``).

Only training cases are mined: the seeds are the training run's own.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..inference.preprocess import prepare_case, slices_to_input
from ..io.case import MODALITIES
from .data import SliceCache

HARD_NEGATIVES_FORMAT = "napari-tumorseg-hard-negatives/1"


@dataclass(frozen=True)
class HardNegatives:
    """Mined slices and, per slice, where the model's false tumour lies.

    Args:
        slices: the mined slices, prepared as training slices are.
        focus: per case, ``(n, H, W)`` bool: the false tumour voxels of each slice.
    """

    slices: SliceCache
    focus: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        shapes = [lab.shape for lab in self.slices.labels]
        if [f.shape for f in self.focus] != shapes:
            raise ValueError("each case's focus must have its labels' shape")
        if not all(f.reshape(len(f), -1).any(axis=1).all() for f in self.focus):
            raise ValueError("every mined slice needs at least one focus voxel")

    @property
    def num_slices(self) -> int:
        return self.slices.num_slices

    def focus_at(self, flat: int) -> np.ndarray:
        """The focus of one slice by flat index (the slice cache's order)."""
        case, local = self.slices.locate(flat)
        return self.focus[case][local]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically as an uncompressed ``.npz``: the slice cache's layout plus each case's focus."""
        return self.slices.save(path, file_format=HARD_NEGATIVES_FORMAT, per_case={"focus": self.focus})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HardNegatives:
        """Read a file written by :meth:`save`; ValueError if it is not one."""
        with np.load(path, allow_pickle=False) as data:
            slices = SliceCache.from_npz(data, path, HARD_NEGATIVES_FORMAT)
            return cls(slices, tuple(data[f"focus_{i}"].astype(bool) for i in range(len(slices.names))))


def false_tumour_slices(false_tumour: np.ndarray, per_case: int, min_voxels: int) -> np.ndarray:
    """The (at most ``per_case``) slices with the most false tumour voxels, each at least ``min_voxels``, in order.

    Args:
        false_tumour: ``(z, H, W)`` bool.
        per_case: how many slices at most.
        min_voxels: a slice with fewer false voxels is not hard.
    """
    counts = false_tumour.reshape(len(false_tumour), -1).sum(axis=1)
    ranked = np.argsort(-counts, kind="stable")[:per_case]
    return np.sort(ranked[counts[ranked] >= min_voxels])


def mine_case(
    segmenter, case, *, context: int, per_case: int, min_voxels: int, margin_mm: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One case's hard slices: images, labels, availability and focus, prepared as training slices.

    Args:
        segmenter: an ``inference.Segmenter`` (the model whose mistakes to mine, with the product's clean-up).
        case: a case with a reference mask.
        context: neighbouring slices on each side (the training layout's).
        per_case: at most this many slices.
        min_voxels: least false tumour voxels for a slice to count.
        margin_mm: count only false tumour at least this far from the true tumour (0: all of it).
    """
    if case.label is None:
        raise ValueError(f"case {case.name} has no reference mask to mine")
    predicted = segmenter.segment(case).labels
    prepared = prepare_case(case, multiple=segmenter.config.size_multiple, margin=segmenter.preprocessing.crop_margin)
    label = prepared.crop.crop(case.label)
    false_tumour = prepared.crop.crop((predicted > 0) & away_from_tumour(case.label, case.geometry.spacing, margin_mm))
    picks = false_tumour_slices(false_tumour, per_case, min_voxels)
    planes = slices_to_input(prepared.images, prepared.availability, picks, context)
    image_channels = (2 * context + 1) * len(MODALITIES)
    return (planes[:, :image_channels].astype(np.float16), label[picks].astype(np.uint8),
            prepared.availability.copy(), false_tumour[picks])


def away_from_tumour(label: np.ndarray, spacing: Sequence[float], margin_mm: float) -> np.ndarray:
    """Voxels outside the true tumour and, when ``margin_mm`` > 0, at least that far from it (in mm)."""
    outside = label == 0
    if margin_mm <= 0 or outside.all():
        return outside
    from scipy import ndimage

    return ndimage.distance_transform_edt(outside, sampling=spacing) >= margin_mm


def _mine_synthetic(model: str, domain: str, seed: int, version: str, shape: tuple[int, int, int] | None,
                    per_case: int, min_voxels: int, margin_mm: float, own_process: bool) -> tuple:
    """Make one synthetic case and mine it (with one torch thread when it runs in a worker process of its own)."""
    import torch

    from ..inference.segmenter import Segmenter
    from ..synth.generate import make_case

    if own_process:
        torch.set_num_threads(1)
    segmenter = Segmenter.from_checkpoint(model, device="cpu", mirror="none")
    grid = {} if shape is None else {"shape": shape}
    case = make_case(domain, seed, version=version, **grid)
    parts = mine_case(segmenter, case, context=segmenter.config.context, per_case=per_case, min_voxels=min_voxels,
                      margin_mm=margin_mm)
    return (*parts, case.name)


def mining_key(model: str | os.PathLike[str], domain: str, seeds: Sequence[int], version: str,
               shape: tuple[int, int, int] | None, per_case: int, min_voxels: int, margin_mm: float = 0.0) -> str:
    """A short hash naming the file of one mining (the model's bytes included)."""
    digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    described = f"{digest}|{domain}|{list(seeds)}|{version}|{shape and list(shape)}|{per_case}|{min_voxels}"
    if margin_mm > 0:  # added later: the files of a mining without a margin keep their names
        described += f"|margin {margin_mm:g}"
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def mine_synthetic(
    model: str | os.PathLike[str], domain: str, seeds: Sequence[int], *, version: str,
    shape: tuple[int, int, int] | None = None, per_case: int = 4, min_voxels: int = 20, margin_mm: float = 0.0,
    cache_dir: Path | None = None, workers: int | None = None,
) -> HardNegatives:
    """Hard slices of synthetic training cases, mined in parallel and kept in ``cache_dir``.

    Args:
        model: the trained model (.safetensors) whose false tumour to mine.
        domain: "glioma" or "metastasis".
        seeds: the training cases to mine.
        version: generator version.
        shape: synthetic grid (default: the BraTS 1 mm grid).
        per_case: at most this many slices per case.
        min_voxels: least false tumour voxels for a slice to count.
        margin_mm: mine only false tumour at least this far from the true tumour (0: all of it).
        cache_dir: where the file lives (keyed by the model's bytes and these settings); None for no file.
        workers: processes (default one per CPU).
    """
    from .sources import die_with_parent

    path = None
    if cache_dir is not None:
        key = mining_key(model, domain, seeds, version, shape, per_case, min_voxels, margin_mm)
        path = Path(cache_dir) / f"hard-{domain}-{key}.npz"
        if path.is_file():
            try:
                return HardNegatives.load(path)
            except (OSError, ValueError, KeyError):
                pass  # damaged: mine again
    workers = max(1, min(workers or os.cpu_count() or 1, len(seeds)))
    n = len(seeds)
    arguments = [[str(model)] * n, [domain] * n, list(seeds), [version] * n, [shape] * n, [per_case] * n,
                 [min_voxels] * n, [margin_mm] * n, [workers > 1] * n]
    if workers == 1:
        parts = [_mine_synthetic(*row) for row in zip(*arguments)]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=die_with_parent) as pool:
            parts = list(pool.map(_mine_synthetic, *arguments))
    parts = [p for p in parts if len(p[1])]
    if not parts:
        raise ModelError(f"{model}: marks no false tumour on {domain} seeds {seeds[0]}..{seeds[-1]}: nothing to mine")
    slices = SliceCache(images=tuple(p[0] for p in parts), labels=tuple(p[1] for p in parts),
                        availability=tuple(p[2] for p in parts), names=tuple(p[4] for p in parts),
                        context=(parts[0][0].shape[1] // len(MODALITIES) - 1) // 2)
    mined = HardNegatives(slices, tuple(p[3] for p in parts))
    if path is not None:
        mined.save(path)
    return mined


def describe_mining(mined: HardNegatives) -> dict:
    """Counts for the model card and the log."""
    voxels = [int(f.sum()) for f in mined.focus]
    return {"cases": len(mined.slices.names), "slices": mined.num_slices, "false_tumour_voxels": int(sum(voxels))}
