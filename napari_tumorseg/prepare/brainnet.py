"""The brain-mask network: a small 2.5D U-Net on axial slices at 2 mm, trained on synthetic heads only.

Brain extraction in the SynthStrip way (Hoopes et al. 2022): a network that
learnt the brain from synthetic heads of random contrast works on any
sequence. Ours sees one sequence at a time (its slice and ``context``
neighbours on each side), resampled to about 2 mm and scaled by a robust
maximum; it outputs brain / not brain. On a case with several co-registered
sequences the probabilities of all of them are averaged.

The checkpoint is a safetensors file with its configuration in the header
(nothing is unpickled); its card lies beside it (``brain-mask.card.json``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from ..resources import resource_path

if TYPE_CHECKING:
    from torch import nn

FORMAT = "napari-tumorseg-brain-mask/1"
SHIPPED = ("models", "brain", "brain-mask.safetensors")
# A network's threshold is calibrated for it and travels in its file (the card's ``brain_threshold``, set by
# :func:`set_threshold` once chosen); this one is for a network whose threshold was never chosen. The shipped
# network's is 0.6: chosen on eight validation heads (glioma 9000-9004, metastasis 9000-9002) prepared from
# raw files as bench-prepare does, by a rule written before measuring (docs/results/brain-mask-full): the best
# mean brain Dice among the thresholds that miss no more brain than they keep outside it, since segmentation
# runs only inside the mask (at 0.6: 38 ml kept outside against 36 ml missed, Dice 0.974).
BRAIN_THRESHOLD = 0.5
SCALE_PERCENTILE = 99.0  # intensities are divided by this percentile of the non-zero voxels
INPUT_CLIP = 2.0  # and clipped to [0, this]


@dataclass(frozen=True)
class BrainNetConfig:
    """The brain-mask network's architecture and input.

    Args:
        base_width: feature maps at full resolution.
        depth: 2x down-samplings (slices are padded to a multiple of ``2**depth``).
        context: neighbouring slices on each side given as extra channels.
        spacing_mm: the isotropic voxel size volumes are resampled to.
    """

    base_width: int = 16
    depth: int = 4
    context: int = 2
    spacing_mm: float = 2.0

    def __post_init__(self) -> None:
        from ..models.config import ModelConfig

        # The tumour networks' bounds: a header cannot make us build an absurd network.
        ModelConfig(base_width=self.base_width, depth=self.depth, context=self.context, num_modalities=1, num_classes=2)
        if not 0.5 <= float(self.spacing_mm) <= 8.0:
            raise ValueError(f"spacing_mm must be 0.5..8, got {self.spacing_mm}")

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1

    @property
    def size_multiple(self) -> int:
        return 2**self.depth


def build_brain_net(config: BrainNetConfig) -> nn.Module:
    """A freshly initialised brain-mask U-Net (seed torch first for reproducibility)."""
    from ..models.unet import UNet2D

    model = UNet2D(config.in_channels, 2, config.base_width, config.depth)
    model.brain_config = config
    return model


def normalise(volume: np.ndarray) -> np.ndarray:
    """A volume scaled for the network: divided by a robust maximum of its non-zero voxels, clipped to [0, 2].

    Works alike on a head (air around it) and on a skull-stripped brain (0 around it).
    """
    volume = np.asarray(volume, dtype=np.float32)
    values = volume[volume > 0]
    if values.size > 200_000:
        values = values[:: values.size // 200_000]
    scale = float(np.percentile(values, SCALE_PERCENTILE)) if values.size else 1.0
    if scale <= 0:
        return np.zeros_like(volume)
    return np.clip(volume / np.float32(scale), 0.0, INPUT_CLIP)


def slice_stack(volume: np.ndarray, indices: np.ndarray, context: int) -> np.ndarray:
    """``(len(indices), 2 * context + 1, H, W)``: each slice with its neighbours (zeros beyond the volume)."""
    depth = volume.shape[0]
    out = np.zeros((len(indices), 2 * context + 1, *volume.shape[1:]), dtype=np.float32)
    for slot, offset in enumerate(range(-context, context + 1)):
        source = np.asarray(indices) + offset
        inside = (source >= 0) & (source < depth)
        out[inside, slot] = volume[source[inside]]
    return out


def save_brain_net(path: str | PathLike[str], model: nn.Module, config: BrainNetConfig, card: dict[str, Any]) -> Path:
    """Write the network as float16 safetensors with its config and card in the header (atomic)."""
    import torch
    from safetensors.torch import save as safetensors_bytes

    from ..io.atomic import atomic_write_bytes

    tensors = {name: t.detach().to("cpu", torch.float16).contiguous().clone() if t.is_floating_point()
               else t.detach().to("cpu").contiguous().clone() for name, t in model.state_dict().items()}
    header = {"format": FORMAT, "config": json.dumps(asdict(config)), "card": json.dumps(card)}
    return atomic_write_bytes(path, safetensors_bytes(tensors, metadata=header), overwrite=True, make_folder=True)


def threshold_of(card: dict[str, Any]) -> float:
    """The brain threshold calibrated for a network (its card's ``brain_threshold``), else :data:`BRAIN_THRESHOLD`."""
    return float(card.get("brain_threshold", BRAIN_THRESHOLD))


def set_threshold(path: str | PathLike[str], threshold: float, why: str) -> Path:
    """Write the threshold chosen for a network into its file's card, with the reason (atomic, same weights)."""
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"a brain threshold lies between 0 and 1, got {threshold}")
    model, config, card = load_brain_net(path)
    return save_brain_net(path, model, config, {**card, "brain_threshold": float(threshold), "threshold_note": why})


def load_brain_net(path: str | PathLike[str] | None = None) -> tuple[nn.Module, BrainNetConfig, dict[str, Any]]:
    """The brain-mask network (the shipped one by default), in eval mode, float32; its config and card.

    Raises:
        ModelError: a missing, corrupt or foreign file (one line naming it).
    """
    from safetensors import safe_open

    path = Path(path) if path is not None else resource_path(*SHIPPED)
    if not path.is_file():
        raise ModelError(f"{path}: no brain-mask network there (regenerate it with scripts/train_brain_mask.sh)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name).float() for name in handle.keys()}
        if header.get("format") != FORMAT:
            raise ValueError(f"format {header.get('format')!r}, expected {FORMAT!r}")
        config = BrainNetConfig(**json.loads(header["config"]))
        card = json.loads(header.get("card", "{}"))
        if not 0.0 < threshold_of(card) < 1.0:
            raise ValueError(f"brain threshold {threshold_of(card)} outside (0, 1)")
        model = build_brain_net(config)
        model.load_state_dict(tensors)
    except Exception as error:  # safetensors, json and torch each raise their own types
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelError(f"{path}: not a usable brain-mask network ({first})") from None
    return model.eval(), config, card


def predict_probability(
    model: nn.Module, config: BrainNetConfig, volume: np.ndarray, spacing: tuple[float, float, float],
    batch_size: int = 8,
) -> np.ndarray:
    """Brain probability of every voxel of one canonical volume (any spacing), float32 on its grid.

    The volume is resampled to the network's spacing (linear), run slice by
    slice, and the probabilities resampled back (linear).
    """
    return probability_back(predict_at_net_spacing(model, config, volume, spacing, batch_size), volume.shape)


def predict_at_net_spacing(
    model: nn.Module, config: BrainNetConfig, volume: np.ndarray, spacing: tuple[float, float, float],
    batch_size: int = 8,
) -> np.ndarray:
    """The brain probability on the network's grid (``volume`` zoomed to ``config.spacing_mm``), float32.

    Volumes of one shape and spacing give probabilities on one grid: their mean can be brought back
    once (:func:`probability_back`), as linear interpolation commutes with the mean.
    """
    import torch
    from scipy import ndimage as ndi

    spacing = np.asarray(spacing, dtype=np.float64)
    zoom = spacing / config.spacing_mm
    small = ndi.zoom(np.asarray(volume, np.float32), zoom, order=1, grid_mode=True, mode="grid-constant")
    small = normalise(small)
    multiple = config.size_multiple
    height, width = (max(2 * multiple, -(-n // multiple) * multiple) for n in small.shape[1:])
    oy, ox = (height - small.shape[1]) // 2, (width - small.shape[2]) // 2
    padded = np.zeros((small.shape[0], height, width), dtype=np.float32)
    padded[:, oy : oy + small.shape[1], ox : ox + small.shape[2]] = small
    probability = np.zeros(padded.shape, dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, padded.shape[0], batch_size):
            indices = np.arange(start, min(start + batch_size, padded.shape[0]))
            logits = model(torch.from_numpy(slice_stack(padded, indices, config.context)))
            probability[indices] = torch.softmax(logits, dim=1)[:, 1].numpy()
    return probability[:, oy : oy + small.shape[1], ox : ox + small.shape[2]]


def probability_back(probability: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A probability on the network's grid brought back onto the volume's grid of ``shape`` (linear)."""
    from scipy import ndimage as ndi

    back = np.asarray(shape) / np.asarray(probability.shape)
    full = ndi.zoom(probability, back, order=1, grid_mode=True, mode="nearest")
    return _fit(full, shape)


def _fit(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Crop or edge-pad ``array`` to ``shape`` (zoom may be off by one voxel)."""
    array = array[tuple(slice(0, n) for n in shape)]
    pad = [(0, n - m) for n, m in zip(shape, array.shape)]
    return np.pad(array, pad, mode="edge") if any(p[1] for p in pad) else array


def mask_from_probability(probability: np.ndarray, threshold: float = BRAIN_THRESHOLD) -> np.ndarray:
    """The brain: voxels above ``threshold``, the largest connected piece, holes filled."""
    from scipy import ndimage as ndi

    mask = probability > threshold
    labels, count = ndi.label(mask)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(sizes.argmax())
    return ndi.binary_fill_holes(mask)
