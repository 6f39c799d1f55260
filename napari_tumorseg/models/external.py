"""Bring your own model: an ONNX or TorchScript file with its JSON description, or a MONAI bundle folder.

:func:`load_imported` turns a path into an :class:`ImportedModel`: a network
to call on numpy batches plus its :class:`~.sidecar.ModelSpec` (sequences,
labels, input layout). ``inference.external.ImportedSegmenter`` runs it on
a case like the built-in segmenter.

Untrusted files:

- ONNX: onnxruntime runs a graph of standard operators, no Python; the file
  is handed over as bytes, so a model naming "external data" files (which
  could point anywhere on disk) fails to load instead of reading them.
- TorchScript: ``torch.jit.load`` runs the code stored in the file, by
  design. It is loaded only with an explicit ``trust=True``
  (``--trust-model`` on the command line; the dock asks).
- MONAI bundle: the network is built from its configuration read as data:
  only known MONAI network classes, plain arguments (a ``$`` expression,
  which MONAI would run as Python, is refused), and the weights are read
  with ``torch.load(weights_only=True)``, which unpickles no code.

Sizes are bounded (the file, the description, the network's parameters),
and every failure is one :class:`ModelError` line naming the file.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from .imported import (
    KINDS,
    MAX_MODEL_BYTES,
    NOT_ADAPTABLE,
    ImportedModel,
    _check_size,
    _fail,
    _first_line,
)
from .sidecar import ModelSpec, read_sidecar, sidecar_path

__all__ = ["KINDS", "MAX_MODEL_BYTES", "NOT_ADAPTABLE", "ImportedModel", "load_imported", "model_kind"]

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")


def model_kind(path: str | PathLike[str]) -> str | None:
    """What an imported model's path holds ("onnx", "torchscript", "monai-bundle"), or None if none of them."""
    path = Path(path)
    if path.is_dir():
        return "monai-bundle" if (path / "configs").is_dir() else None
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if path.suffix.lower() in TORCHSCRIPT_SUFFIXES and sidecar_path(path).exists():
        return "torchscript"  # a .pt with a description beside it; a bare .pt is a weights-only checkpoint
    return None


def load_imported(path: str | PathLike[str], *, trust: bool = False, spec: ModelSpec | None = None) -> ImportedModel:
    """Load an imported model (see the module's docstring for what is trusted).

    Args:
        path: an ``.onnx`` file, a TorchScript file (``.pt``, ``.ts``...) with its ``.json``, or a bundle folder.
        trust: allow TorchScript, which runs code from the file.
        spec: the description, instead of the file beside the model.

    Raises:
        ModelError: one line naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such model file or folder")
    kind = model_kind(path)
    if kind == "monai-bundle":
        from .bundle import load_bundle

        return load_bundle(path, spec=spec)
    if kind is None:
        raise _fail(path, "not a model this program imports: an .onnx file, a TorchScript file with a .json "
                          "description beside it, or a MONAI bundle folder (configs/, models/)")
    _check_size(path)
    spec = spec or read_sidecar(sidecar_path(path))
    if kind == "onnx":
        return ImportedModel(path, kind, spec, session=_onnx_session(path))
    if not trust:
        raise _fail(path, "a TorchScript model runs code stored in the file; load it only if you trust its "
                          "source (command line: --trust-model; the dock asks)")
    return ImportedModel(path, kind, spec, module=_torchscript(path))


def _onnx_session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise _fail(path, "ONNX models need onnxruntime: pip install onnxruntime") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are not the user's concern
    from ..machine import usable_cores

    options.intra_op_num_threads = max(1, usable_cores())
    try:
        session = onnxruntime.InferenceSession(path.read_bytes(), sess_options=options,
                                               providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
        raise _fail(path, f"not a loadable ONNX model ({_first_line(error)})") from None
    if len(session.get_inputs()) != 1:
        raise _fail(path, f"the ONNX model has {len(session.get_inputs())} inputs; one image batch is expected")
    return session


def _torchscript(path: Path) -> Any:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:  # torch raises RuntimeError and others for a bad archive
        raise _fail(path, f"not a loadable TorchScript model ({_first_line(error)})") from None
    return module.eval()


