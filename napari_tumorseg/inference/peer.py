"""MONAI's SegResNet run as its BraTS bundle runs it: the yardstick for ``tumorseg bench --peer segresnet``.

Source of the configuration: MONAI Model Zoo, ``models/brats_mri_segmentation/
configs/inference.json`` (Project-MONAI/model-zoo):

- network: ``SegResNet(blocks_down=[1, 2, 2, 4], blocks_up=[1, 1, 1],
  init_filters=16, in_channels=4, out_channels=3, dropout_prob=0.2)``;
- preprocessing: ``LoadImaged`` (the 4-channel BraTS volume as stored,
  240x240x155 on the (x, y, z) voxel axes), ``NormalizeIntensityd(nonzero=True,
  channel_wise=True)``;
- inferer: ``SlidingWindowInferer(roi_size=[240, 240, 160], sw_batch_size=1,
  overlap=0.5)``;
- postprocessing: sigmoid, threshold 0.5, the three channels (TC, WT, ET) to
  BraTS labels 1/2/4. (``Invertd`` undoes nothing: the preprocessing has no
  spatial transform.) The bundle's ``amp`` applies to CUDA only; on the CPU it
  runs in float32, as here.

Only the time matters, so the weights are random (seeded): nothing is
downloaded. MONAI is an optional extra (``pip install "napari-tumorseg[bench]"``),
imported only here and only when a peer is timed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..io.case import Case

PEERS = ("segresnet",)
BUNDLE_SOURCE = "MONAI Model Zoo brats_mri_segmentation, configs/inference.json"
BUNDLE_NETWORK = {"blocks_down": (1, 2, 2, 4), "blocks_up": (1, 1, 1), "init_filters": 16, "in_channels": 4,
                  "out_channels": 3, "dropout_prob": 0.2}
BUNDLE_ROI = (240, 240, 160)
BUNDLE_SW_BATCH, BUNDLE_OVERLAP = 1, 0.5
# The bundle's channels: the Medical Segmentation Decathlon's BraTS order FLAIR, T1w, T1gd, T2w.
BUNDLE_CHANNELS = ("flair", "t1", "t1c", "t2")


def monai_available() -> bool:
    """Whether MONAI can be imported (it is an optional extra)."""
    return importlib.util.find_spec("monai") is not None


def bundle_input(case: Case) -> np.ndarray:
    """``(4, X, Y, Z)`` float32: the case as the bundle loads a BraTS volume (missing modalities zero)."""
    shape = case.shape[::-1]
    out = np.zeros((len(BUNDLE_CHANNELS), *shape), dtype=np.float32)
    for channel, key in enumerate(BUNDLE_CHANNELS):
        if key in case.images:
            # Canonical (z, y, x) -> the stored (x, y, z) axes: the roi's 160 then covers the 155 axial slices.
            out[channel] = case.images[key].transpose(2, 1, 0)
    return out


class SegResNetPeer:
    """SegResNet with the bundle's network, preprocessing, sliding window and postprocessing.

    Args:
        roi_size: the sliding window (default the bundle's 240x240x160); a
            smaller one only for quick tests of the command itself.
        seed: seed of the random weights.
        device: torch device.
    """

    name = "SegResNet (MONAI BraTS bundle)"

    def __init__(self, roi_size: Sequence[int] | None = None, seed: int = 0, device: str = "cpu") -> None:
        import torch
        from monai.networks.nets import SegResNet

        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.roi_size = tuple(int(v) for v in (roi_size or BUNDLE_ROI))
        self.network = SegResNet(**BUNDLE_NETWORK).to(self.device).eval()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "source": BUNDLE_SOURCE, "network": {k: list(v) if isinstance(v, tuple) else v
                                                                     for k, v in BUNDLE_NETWORK.items()},
            "roi_size": list(self.roi_size), "bundle_roi_size": self.roi_size == BUNDLE_ROI,
            "sw_batch_size": BUNDLE_SW_BATCH, "overlap": BUNDLE_OVERLAP, "weights": "random (timing only)",
            "parameters": sum(p.numel() for p in self.network.parameters()),
        }

    def segment(self, case: Case) -> np.ndarray:
        """BraTS 2020 labels (0, 1, 2, 4) on the ``(X, Y, Z)`` grid, as the bundle writes them."""
        import torch
        from monai.inferers import sliding_window_inference
        from monai.transforms import NormalizeIntensity

        image = NormalizeIntensity(nonzero=True, channel_wise=True)(torch.from_numpy(bundle_input(case)))
        with torch.inference_mode():
            logits = sliding_window_inference(image[None].to(self.device), self.roi_size, BUNDLE_SW_BATCH,
                                              self.network, overlap=BUNDLE_OVERLAP)
            channels = torch.sigmoid(logits[0]).cpu() > 0.5  # TC, WT, ET
            labels = torch.where(channels[2], 4, torch.where(channels[0], 1, torch.where(channels[1], 2, 0)))
        return labels.to(torch.uint8).numpy()
