"""Checkpoints: weights as safetensors, configs as JSON in the safetensors metadata.

One self-describing file: the header carries the model config (architecture
and every hyper-parameter, hence the input channels and context), the
preprocessing the weights expect, the label convention of the outputs and any
provenance the caller adds. Loading never runs code: safetensors holds only
tensors, and the legacy ``.pt``/``.pth`` form is read with
``torch.load(weights_only=True)``. Every failure is a :class:`ModelError` with
a one-line message naming the file. Writes are atomic (temporary file in the
same folder, fsync, rename), so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from .config import LABEL_CONVENTION, ModelConfig, PreprocessingConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .unet import UNet2D

FORMAT = "napari-tumorseg-checkpoint/1"
LEGACY_SUFFIXES = (".pt", ".pth")


def _fail(path: str | PathLike[str], problem: str) -> ModelError:
    return ModelError(" ".join(f"{path}: {problem}".split()))


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself, read without building a network."""

    path: Path
    config: ModelConfig
    preprocessing: PreprocessingConfig
    label_convention: str = LABEL_CONVENTION
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedCheckpoint:
    """A network rebuilt from a checkpoint, in eval mode, with what it was saved with."""

    model: UNet2D
    info: CheckpointInfo

    @property
    def config(self) -> ModelConfig:
        return self.info.config

    @property
    def preprocessing(self) -> PreprocessingConfig:
        return self.info.preprocessing


def model_config_of(model: nn.Module, config: ModelConfig | None = None) -> ModelConfig:
    """The config to save for ``model``, with the temperature its dynamic convolutions have now."""
    from .dynconv import get_temperature

    config = config or getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise ValueError("the model has no .config; pass config= (build models with build_model)")
    temperature = get_temperature(model)
    return config if temperature is None else replace(config, temperature=temperature)


def save_checkpoint(
    path: str | PathLike[str],
    model: nn.Module,
    *,
    config: ModelConfig | None = None,
    preprocessing: PreprocessingConfig | None = None,
    metadata: dict[str, Any] | None = None,
    half_precision: bool = False,
) -> Path:
    """Write ``model`` atomically as a self-describing safetensors file.

    Args:
        path: destination (conventionally ``*.safetensors``).
        model: the network (its ``.config`` is used unless ``config`` is given).
        config: the architecture, when the model does not carry one.
        preprocessing: the preprocessing it was trained with (default settings if None).
        metadata: JSON-serialisable provenance (training command, data, metrics...).
        half_precision: store float tensors as float16 (half the file; loading
            casts back to float32), e.g. for weights shipped in the package.

    Returns the path written. Raises ModelError for metadata that is not JSON, WriteError
    if the file cannot be written.
    """
    import torch
    from safetensors.torch import save as safetensors_bytes

    path = Path(path)
    config = model_config_of(model, config)
    preprocessing = preprocessing or PreprocessingConfig()
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if half_precision and tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
        tensors[name] = tensor.contiguous().clone()
    try:
        header = {
            "format": FORMAT,
            "config": json.dumps(config.to_dict()),
            "preprocessing": json.dumps(preprocessing.to_dict()),
            "label_convention": LABEL_CONVENTION,
            # Derived from the config; spelled out for readers of the header alone.
            "input": json.dumps(
                {
                    "channels": config.in_channels,
                    "context": config.context,
                    "size_multiple": config.size_multiple,
                    "layout": f"(B, {config.in_channels}, H, W): modalities {list(preprocessing.modalities)} "
                    f"of slices z-{config.context}..z+{config.context}, then 4 availability planes",
                }
            ),
            "metadata": json.dumps(metadata or {}),
        }
    except (TypeError, ValueError) as error:
        raise _fail(path, f"metadata is not JSON-serialisable ({error})") from error
    from ..io.atomic import atomic_write_bytes

    return atomic_write_bytes(path, safetensors_bytes(tensors, metadata=header), overwrite=True, make_folder=True)


def _parse_info(path: Path, header: dict[str, str]) -> CheckpointInfo:
    if "config" not in header:
        raise _fail(path, "no model config in the file; not a napari-tumorseg checkpoint")
    try:
        config = ModelConfig.from_dict(json.loads(header["config"]))
        preprocessing = PreprocessingConfig.from_dict(json.loads(header.get("preprocessing", "{}")))
        metadata = json.loads(header.get("metadata", "{}"))
    except (ValueError, TypeError) as error:
        raise _fail(path, f"invalid configuration in the checkpoint ({error})") from error
    return CheckpointInfo(
        path=path,
        config=config,
        preprocessing=preprocessing,
        label_convention=header.get("label_convention", LABEL_CONVENTION),
        metadata=metadata if isinstance(metadata, dict) else {"value": metadata},
    )


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise _fail(path, "no such checkpoint file")
    if not path.is_file():
        raise _fail(path, "is not a file")


def read_checkpoint_info(path: str | PathLike[str]) -> CheckpointInfo:
    """The configs and provenance of a checkpoint, from the header only (fast, no torch)."""
    path = Path(path)
    _check_exists(path)
    if path.suffix in LEGACY_SUFFIXES:
        return _read_legacy(path)[1]
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for corrupt headers
        raise _fail(path, f"not a readable safetensors checkpoint ({_first_line(error)})") from error
    return _parse_info(path, header)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], CheckpointInfo]:
    if path.suffix in LEGACY_SUFFIXES:
        return _read_legacy(path)
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:
        raise _fail(path, f"not a readable safetensors checkpoint ({_first_line(error)})") from error
    return tensors, _parse_info(path, header)


def _read_legacy(path: Path) -> tuple[dict[str, torch.Tensor], CheckpointInfo]:
    """A ``.pt`` file: {"state_dict": ..., "config": {...}, "preprocessing": {...}}, no pickled code."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are not the user's concern
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises loading with weights_only=False: the one thing never to do with it.
        raise _fail(path, "holds pickled Python code, not plain weights; it was not loaded (use a .safetensors "
                          "checkpoint, or a .pt file of tensors only)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise _fail(path, f"not a loadable weights-only torch file ({_first_line(error)})") from None
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise _fail(path, "a .pt checkpoint must be a dict with 'state_dict' and 'config'")
    header = {
        "config": json.dumps(blob["config"]),
        "preprocessing": json.dumps(blob.get("preprocessing", {})),
        "metadata": json.dumps(blob.get("metadata", {})),
    }
    return dict(blob["state_dict"]), _parse_info(path, header)


def _check_fits(path: Path, arch: str, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> None:
    import torch

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise _fail(path, f"weights do not fit architecture '{arch}': tensors {'; '.join(parts)}")
    for name, want in expected.items():
        got = found[name]
        if tuple(got.shape) != tuple(want.shape):
            raise _fail(
                path,
                f"tensor '{name}' has shape {tuple(got.shape)}, architecture '{arch}' expects {tuple(want.shape)}",
            )
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise _fail(path, f"tensor '{name}' holds NaN or infinite values")


def load_checkpoint(
    path: str | PathLike[str], *, device: str | torch.device = "cpu", expect_arch: str | None = None
) -> LoadedCheckpoint:
    """Rebuild the network a checkpoint describes and load its weights (eval mode, float32).

    Args:
        path: a ``.safetensors`` checkpoint (or a weights-only ``.pt``/``.pth``).
        device: where to put the model.
        expect_arch: if given, a checkpoint of another architecture is an error.

    Raises ModelError (one line, naming the file) if the file is missing or
    corrupt, or its weights do not fit the architecture it declares.
    """
    from .unet import model_from_config

    path = Path(path)
    _check_exists(path)
    tensors, info = _read_tensors(path)
    if expect_arch is not None and info.config.arch != expect_arch:
        raise _fail(path, f"checkpoint architecture '{info.config.arch}' is not the expected '{expect_arch}'")
    model = model_from_config(info.config)
    _check_fits(path, info.config.arch, model.state_dict(), tensors)
    model.load_state_dict(tensors)
    model.to(device).eval()
    return LoadedCheckpoint(model=model, info=info)


def load_weights_into(model: nn.Module, path: str | PathLike[str]) -> CheckpointInfo:
    """Load a checkpoint's weights into an existing network of the same config.

    The temperature of a Dy-CNN is set to the saved one. Raises ModelError if
    the architectures or any tensor shape differ.
    """
    from .dynconv import set_temperature

    path = Path(path)
    _check_exists(path)
    tensors, info = _read_tensors(path)
    own = getattr(model, "config", None)
    if isinstance(own, ModelConfig) and replace(own, temperature=1.0) != replace(info.config, temperature=1.0):
        differing = [
            f"{key}={value!r} (model: {getattr(own, key)!r})"
            for key, value in info.config.to_dict().items()
            if key != "temperature" and getattr(own, key) != value
        ]
        raise _fail(path, f"checkpoint does not match the model's architecture: {', '.join(differing)}")
    arch = info.config.arch
    _check_fits(path, arch, model.state_dict(), tensors)
    model.load_state_dict(tensors)
    if arch == "dycnn":
        set_temperature(model, info.config.temperature)
    return info
