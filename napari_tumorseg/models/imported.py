"""An imported model as the rest of the program sees it: the network to call, what it expects, its limits.

Shared by the loaders (``models.external`` for ONNX and TorchScript files,
``models.bundle`` for MONAI bundle folders); no torch or onnxruntime here.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .sidecar import ModelSpec

MAX_MODEL_BYTES = 2 * 1024**3
KINDS = {"onnx": "ONNX", "torchscript": "TorchScript", "monai-bundle": "MONAI bundle"}
NOT_ADAPTABLE = ("adaptation trains this program's own 2D/2.5D networks and stores them as its checkpoints; "
                 "an imported {kind} model segments as it is (import a napari-tumorseg checkpoint to adapt)")


@dataclass
class ImportedModel:
    """A network from outside, with what it expects and returns.

    Args:
        path: the file or bundle folder.
        kind: "onnx", "torchscript" or "monai-bundle".
        spec: its description.
        module: the torch module (TorchScript, MONAI), or None.
        session: the onnxruntime session (ONNX), or None.
    """

    path: Path
    kind: str
    spec: ModelSpec
    module: Any = None
    session: Any = None

    @property
    def label(self) -> str:
        return f"{self.spec.name} ({KINDS[self.kind]})"

    @property
    def adaptable(self) -> bool:
        return False

    @property
    def not_adaptable_reason(self) -> str:
        return NOT_ADAPTABLE.format(kind=KINDS[self.kind])

    def forward(self, batch: np.ndarray, device: Any = None) -> np.ndarray:
        """The raw network output of a float32 batch ``(B, C, ...)``, as float32 numpy."""
        if self.session is not None:
            name = self.session.get_inputs()[0].name
            return np.asarray(self.session.run(None, {name: np.ascontiguousarray(batch, np.float32)})[0], np.float32)
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32))
            if device is not None:
                x = x.to(device)
            out = self.module(x)
            if isinstance(out, (tuple, list)):  # e.g. deep supervision heads: the first is the prediction
                out = out[0]
            return out.float().cpu().numpy()


def _fail(path: str | PathLike[str], problem: str) -> ModelError:
    return ModelError(" ".join(f"{path}: {problem}".split()))


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise _fail(path, f"{size / 1024**3:.1f} GB; imported models are at most {MAX_MODEL_BYTES / 1024**3:.0f} GB")
    if size == 0:
        raise _fail(path, "the file is empty")


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]
