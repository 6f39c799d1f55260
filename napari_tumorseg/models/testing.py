"""Small imported models made on the spot, for the tests and the README's examples (nothing downloaded).

- :func:`write_onnx_threshold_model`: an ONNX graph of one 1x1 convolution
  that calls a voxel oedema where the first sequence's z-score is above a
  threshold (so a test knows exactly what it must segment);
- :func:`write_torchscript_threshold_model`: the same as TorchScript;
- :func:`write_monai_bundle`: a MONAI bundle folder with the BraTS
  SegResNet configuration (smaller filters by default) and random weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np


def threshold_weights(in_channels: int, out_channels: int, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """1x1 convolution weights: logit of channel 2 (oedema, in 0/1/2/... numbering) = 4 * (x0 - threshold), the rest 0."""
    weight = np.zeros((out_channels, in_channels), np.float32)
    bias = np.zeros(out_channels, np.float32)
    weight[2, 0] = 4.0
    bias[2] = -4.0 * threshold
    return weight, bias


def write_onnx_threshold_model(path: str | PathLike[str], spec: dict[str, Any], *, dims: int = 2,
                               threshold: float = 0.5) -> Path:
    """An ONNX model (one 1x1 convolution) and its description ``spec`` beside it (``path`` with .json)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .sidecar import spec_from_dict

    parsed = spec_from_dict(spec, "test spec")
    weight, bias = threshold_weights(parsed.in_channels, parsed.out_channels, threshold)
    kernel = weight.reshape(weight.shape + (1,) * dims)
    spatial = ["d", "h", "w"][-dims:]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "weight", "bias"], ["y"])],
        "threshold",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", parsed.in_channels, *spatial])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", parsed.out_channels, *spatial])],
        [numpy_helper.from_array(kernel, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.write_bytes(model.SerializeToString())
    path.with_suffix(".json").write_text(json.dumps(spec, indent=1))
    return path


def write_torchscript_threshold_model(path: str | PathLike[str], spec: dict[str, Any], threshold: float = 0.5) -> Path:
    """The same 2D model as TorchScript (``torch.jit.script``), with its description beside it."""
    import torch

    from .sidecar import spec_from_dict

    parsed = spec_from_dict(spec, "test spec")
    weight, bias = threshold_weights(parsed.in_channels, parsed.out_channels, threshold)
    conv = torch.nn.Conv2d(parsed.in_channels, parsed.out_channels, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight[:, :, None, None]))
        conv.bias.copy_(torch.from_numpy(bias))
    path = Path(path)
    torch.jit.save(torch.jit.script(conv.eval()), str(path))
    path.with_suffix(".json").write_text(json.dumps(spec, indent=1))
    return path


BRATS_NETWORK = {"_target_": "SegResNet", "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1], "init_filters": 16,
                 "in_channels": 4, "out_channels": 3, "dropout_prob": 0.2}
BRATS_METADATA = {
    "name": "BraTS SegResNet (test weights)",
    "network_data_format": {
        "inputs": {"image": {"num_channels": 4, "spatial_shape": ["8*n", "8*n", "8*n"],
                             "channel_def": {"0": "T1c", "1": "T1", "2": "T2", "3": "FLAIR"}}},
        "outputs": {"pred": {"num_channels": 3,
                             "channel_def": {"0": "Tumor core", "1": "Whole tumor", "2": "Enhancing tumor"}}},
    },
}


def write_monai_bundle(folder: str | PathLike[str], *, init_filters: int = 8, roi: Sequence[int] = (32, 32, 32),
                       seed: int = 0, network: dict[str, Any] | None = None) -> Path:
    """A MONAI bundle with the BraTS SegResNet configuration (``init_filters`` smaller for speed), random weights."""
    import torch
    from monai.networks.nets import SegResNet

    folder = Path(folder)
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    (folder / "models").mkdir(exist_ok=True)
    definition = network or {**BRATS_NETWORK, "init_filters": init_filters}
    config = {
        "imports": ["$import glob"],
        "bundle_root": ".",
        "device": "$torch.device('cpu')",
        "network_def": definition,
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "NormalizeIntensityd", "keys": "image", "nonzero": True, "channel_wise": True}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": list(roi), "sw_batch_size": 1, "overlap": 0.5},
    }
    (folder / "configs" / "inference.json").write_text(json.dumps(config, indent=1))
    (folder / "configs" / "metadata.json").write_text(json.dumps(BRATS_METADATA, indent=1))
    torch.manual_seed(seed)
    arguments = {k: v for k, v in definition.items() if k != "_target_"}
    torch.save(SegResNet(**arguments).state_dict(), folder / "models" / "model.pt")
    return folder
