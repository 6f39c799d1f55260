"""Models brought by the user, in the plugin's model box beside the registry's versions (no Qt).

- an ONNX, TorchScript or MONAI-bundle model (``models.external``) is listed
  as an "imported" version: it segments, it is not adapted (the Adapt panel
  says why);
- a napari-tumorseg checkpoint file becomes a version of the registry, so it
  can be adapted like the shipped models.

Loading is slow enough (a bundle builds its network) to run off the GUI
thread: :func:`load_model` there, ``ReviewState.add_imported`` back on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError

if TYPE_CHECKING:
    from ..models.external import ImportedModel
    from ..models.registry import ModelRegistry, ModelVersion

IMPORTED = "imported"
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")


@dataclass
class Loaded:
    """What :func:`load_model` found: an imported model, or the version a checkpoint became."""

    imported: ImportedModel | None = None
    version: ModelVersion | None = None


def load_model(path: str | PathLike[str], registry: ModelRegistry, *, trust: bool = False) -> Loaded:
    """Load a model file or bundle folder (see the module's docstring).

    Raises:
        ModelError: one line naming the file.
    """
    from ..models.external import load_imported, model_kind

    path = Path(path)
    if model_kind(path) is not None or path.is_dir():
        return Loaded(imported=load_imported(path, trust=trust))
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        return Loaded(version=import_checkpoint(path, registry))
    raise ModelError(f"{path}: not a model this program imports (.onnx, TorchScript with its .json, a MONAI "
                     "bundle folder, or a napari-tumorseg .safetensors checkpoint)")


def import_checkpoint(path: Path, registry: ModelRegistry) -> ModelVersion:
    """A napari-tumorseg checkpoint file stored as a new registry version (not activated)."""
    from ..models.checkpoint import load_checkpoint

    loaded = load_checkpoint(path)
    return registry.add(loaded.model, parent=None, method=IMPORTED, hyperparameters={}, corrections_hash="",
                        metrics={}, status="candidate", reason=f"imported from {path}",
                        preprocessing=loaded.preprocessing)


def imported_version(imported: ImportedModel, taken: set[str]) -> ModelVersion:
    """The model box's entry for an imported model (an id not ``taken``)."""
    from ..models.registry import ModelVersion

    base = imported.label
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} #{n}"
    return ModelVersion(id=name, status=IMPORTED, weights=imported.path, arch=imported.kind, read_only=True,
                        reason=imported.not_adaptable_reason)


def adaptable(version: ModelVersion | None) -> tuple[bool, str]:
    """Whether a version can be adapted, and if not, one line saying why."""
    if version is None:
        return False, "no model chosen"
    if version.status == IMPORTED:
        return False, version.reason
    return True, ""
