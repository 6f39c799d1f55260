"""Model versions as data: statuses, file names, the version record and how it is checked.

See ``registry`` for the folder layout and the operations on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PRETRAINED, CANDIDATE, REJECTED, CORRUPT = "pretrained", "candidate", "rejected", "corrupt"
STORED_STATUSES = (CANDIDATE, REJECTED)
VERSION_FORMAT = "napari-tumorseg-version/1"
WEIGHTS_FILE, VERSION_FILE, REPORT_FILE, ACTIVE_FILE = "weights.safetensors", "version.json", "report.json", "active"
STALE_STAGING_SECONDS = 3600
# The pretrained model used when nothing was activated yet, by preference.
PREFERRED_PRETRAINED_ARCH = "unet"
# A version file is a few kB; anything much larger is not one (and is not read whole).
MAX_VERSION_FILE_BYTES = 1 << 20
# The type of every field a version file may hold (None allowed where listed).
VERSION_FIELDS: dict[str, tuple[type, ...]] = {
    "parent": (str, type(None)),
    "method": (str, type(None)),
    "arch": (str, type(None)),
    "hyperparameters": (dict,),
    "corrections_hash": (str, type(None)),
    "metrics": (dict,),
    "created": (str,),
    "reason": (str,),
}


def default_registry_root() -> Path:
    """``$TUMORSEG_HOME/models``, else the platform's user data folder + ``models``."""
    from ..paths import models_dir

    return models_dir()


def shipped_model_dirs() -> list[Path]:
    """The folder of shipped pretrained models (``resources/models``), if this install has one."""
    from ..resources import resources_root

    try:
        folder = resources_root() / "models"
    except FileNotFoundError:
        return []
    return [folder] if folder.is_dir() else []


@dataclass
class ModelVersion:
    """One entry of the registry.

    Args:
        id: the version id (a pretrained model's file stem, or ``vYYYYmmdd-HHMMSS-xxxx``).
        status: "pretrained", "candidate" (passed the guard or forced),
            "rejected" (kept, failed the guard) or "corrupt".
        weights: the checkpoint file.
        parent: the id of the version it was adapted from.
        method: the adaptation method ("naive", "passive", "active", "dycnn").
        arch: "unet" or "dycnn".
        hyperparameters: the AdaptConfig of the run.
        corrections_hash: SHA-256 of the corrections it learned from.
        metrics: Dice before -> after per evaluation set, and the guard's numbers.
        created: ISO 8601 time (UTC).
        reason: why it was accepted, forced or rejected.
        active: whether it is the active version.
        read_only: pretrained models cannot be deleted.
        error: for a corrupt entry, what is wrong.
    """

    id: str
    status: str
    weights: Path
    parent: str | None = None
    method: str | None = None
    arch: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    corrections_hash: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    reason: str = ""
    active: bool = False
    read_only: bool = False
    error: str | None = None

    @property
    def display_status(self) -> str:
        return f"active ({self.status})" if self.active else self.status

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["weights"] = str(self.weights)
        return data


def check_version_record(data: Any) -> dict[str, Any]:
    """The fields of a version file, or ValueError saying what is wrong with it.

    Args:
        data: the parsed JSON of ``version.json``.
    """
    if not isinstance(data, dict) or data.get("format") != VERSION_FORMAT:
        raise ValueError("not a napari-tumorseg version file")
    status = data.get("status")
    if status not in STORED_STATUSES:
        raise ValueError(f"unknown status {str(status)[:40]!r}")
    for name, types in VERSION_FIELDS.items():
        value = data.get(name, types[0]())
        if not isinstance(value, types):
            raise ValueError(f"field {name!r} is a {type(value).__name__}, expected {types[0].__name__}")
    return data
