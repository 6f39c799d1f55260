"""The training state beside a run's output: weights, optimiser, step, schedule, as safetensors + JSON.

One file, ``<output stem>.train-state`` (safetensors format, but not named
``*.safetensors`` so the model registry never lists it as a model): the
float32 weights as ``model.<name>``, their running average (if kept) as
``average.<name>``, every optimiser state tensor as
``optim.<param index>.<key>``, and in the header a JSON document with the
step, the optimiser's param groups, the temperature annealer, the run's
settings and its history. Random draws are functions of ``(seed, step)``
(see :func:`napari_tumorseg.training.data.sample_batch`), so the step and the
seed are the whole random state. Nothing is pickled; loading runs no code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError

if TYPE_CHECKING:
    import torch

STATE_FORMAT = "napari-tumorseg-train-state/1"
STATE_SUFFIX = ".train-state"


def state_path_for(output: str | os.PathLike[str]) -> Path:
    """``runs/glioma-unet.safetensors`` -> ``runs/glioma-unet.train-state``."""
    output = Path(output)
    return output.with_name(output.stem + STATE_SUFFIX)


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped.

    Args:
        step: optimisation steps done.
        model: the network's float32 state dict.
        optimizer: the optimiser's state dict (tensors and param groups).
        info: JSON-serialisable facts: settings, annealer state, history, wall time.
        average: the running average of the weights (``training.averaging``), when the run keeps one.
    """

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    average: dict[str, torch.Tensor] | None = None


def _flatten_optimizer(optimizer: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import torch

    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in optimizer["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": optimizer["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], described: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    for index, entries in described.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": described["param_groups"]}


def save_training_state(path: str | os.PathLike[str], state: TrainingState) -> Path:
    """Write the state atomically (temporary file in the same folder, then rename)."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in state.model.items()}
    for name, tensor in (state.average or {}).items():
        tensors[f"average.{name}"] = tensor.detach().cpu().contiguous().clone()
    optim_tensors, optim_rest = _flatten_optimizer(state.optimizer)
    tensors.update(optim_tensors)
    header = {
        "format": STATE_FORMAT,
        "state": json.dumps({"step": state.step, "optimizer": optim_rest, "info": state.info}),
    }
    from ..io.atomic import atomic_write_bytes

    atomic_write_bytes(path, save(tensors, metadata=header), overwrite=True, make_folder=True)
    return path


def load_training_state(path: str | os.PathLike[str]) -> TrainingState:
    """Read a state written by :func:`save_training_state`; ModelError (naming the file) otherwise."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such training-state file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        if header.get("format") != STATE_FORMAT:
            raise ValueError("not a napari-tumorseg training state")
        described = json.loads(header["state"])
    except Exception as error:  # safetensors raises its own types for damaged files
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: not a readable training state ({message})") from error
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    optim = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    average = {k[len("average."):]: v for k, v in tensors.items() if k.startswith("average.")}
    return TrainingState(
        step=int(described["step"]),
        model=model,
        optimizer=_unflatten_optimizer(optim, described["optimizer"]),
        info=described.get("info", {}),
        average=average or None,
    )
