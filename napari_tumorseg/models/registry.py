"""Model versions: every adapted model kept with its provenance; one of them is active.

Layout of the registry folder (``<user data>/models``; ``TUMORSEG_HOME`` or
the constructor's ``root`` override it)::

    active                      the id of the active version (one line)
    versions/<id>/weights.safetensors   a self-describing checkpoint (models.checkpoint)
    versions/<id>/version.json  parent, method, hyper-parameters, corrections hash,
                                metrics, time, status, reason
    versions/<id>/report.json   the full adaptation report
    .staging/                   versions being written or deleted

The shipped pretrained models (``*.safetensors`` in ``resources/models``) are
read-only versions whose id is the file's stem; they cannot be deleted.

Every change is one atomic rename: a version is written completely in
``.staging`` and renamed into ``versions/``; the active pointer is written to
a temporary file and ``os.replace``d. A crash or a cancel leaves the registry
as it was (at worst a leftover in ``.staging``, which listing ignores and the
next registry cleans once it is an hour old). A corrupt entry (unreadable
JSON, missing weights) is listed with status "corrupt" and its error; using
it raises :class:`ModelError` naming the file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from ..io.atomic import atomic_write_json, atomic_write_text, fsync_folder
from .versions import (
    ACTIVE_FILE,
    CANDIDATE,
    CORRUPT,
    MAX_VERSION_FILE_BYTES,
    PREFERRED_PRETRAINED_ARCH,
    PRETRAINED,
    REJECTED,
    REPORT_FILE,
    STALE_STAGING_SECONDS,
    STORED_STATUSES,
    VERSION_FILE,
    VERSION_FORMAT,
    WEIGHTS_FILE,
    ModelVersion,
    check_version_record,
    default_registry_root,
    shipped_model_dirs,
)

__all__ = [
    "ACTIVE_FILE",
    "CANDIDATE",
    "CORRUPT",
    "PRETRAINED",
    "REJECTED",
    "ModelRegistry",
    "ModelVersion",
    "default_registry_root",
    "shipped_model_dirs",
]

if TYPE_CHECKING:
    from torch import nn

    from .checkpoint import LoadedCheckpoint


class ModelRegistry:
    """The user's model versions and the shipped pretrained ones.

    Args:
        root: the registry folder (default: :func:`default_registry_root`).
        pretrained_dirs: folders of shipped ``*.safetensors`` models (default:
            :func:`shipped_model_dirs`); pass ``[]`` for none.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, pretrained_dirs: Sequence[Path] | None = None):
        self.root = Path(root) if root is not None else default_registry_root()
        self.pretrained_dirs = [Path(p) for p in (shipped_model_dirs() if pretrained_dirs is None else pretrained_dirs)]
        self._clean_stale_staging()

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    # ----------------------------------------------------------------- reading

    def _pretrained(self) -> list[ModelVersion]:
        found: dict[str, ModelVersion] = {}
        for folder in self.pretrained_dirs:
            for path in sorted(folder.glob("*.safetensors")):
                if path.stem not in found:
                    found[path.stem] = self._read_pretrained(path)
        return list(found.values())

    def _read_pretrained(self, path: Path) -> ModelVersion:
        from .checkpoint import read_checkpoint_info

        try:
            info = read_checkpoint_info(path)
        except ModelError as error:
            return ModelVersion(path.stem, CORRUPT, path, read_only=True, error=str(error))
        metrics = info.metadata.get("metrics", {}) if isinstance(info.metadata, dict) else {}
        # The file's time says when it was copied (a clone, an install), not when the model was made: the
        # card's training date is used where there is one.
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime))
        # The model card beside the weights (``<stem>.card.json``) has the metrics recorded after training.
        try:
            card = json.loads(path.with_name(f"{path.stem}.card.json").read_text(encoding="utf-8"))
            metrics = card.get("metrics", metrics) if isinstance(card, dict) else metrics
            finished = card.get("training", {}).get("finished") if isinstance(card, dict) else None
            created = finished if isinstance(finished, str) and finished else created
        except (OSError, ValueError, RecursionError, AttributeError):
            pass  # no card, or an unreadable one: the weights are still usable
        if not isinstance(metrics, dict):
            metrics = {}
        return ModelVersion(
            path.stem,
            PRETRAINED,
            path,
            arch=info.config.arch,
            metrics=metrics,
            created=created,
            reason="shipped pretrained model",
            read_only=True,
        )

    def _read_user_version(self, folder: Path) -> ModelVersion:
        weights = folder / WEIGHTS_FILE
        meta_path = folder / VERSION_FILE
        try:
            if meta_path.stat().st_size > MAX_VERSION_FILE_BYTES:
                raise ValueError(f"larger than {MAX_VERSION_FILE_BYTES} bytes")
            # UnicodeDecodeError is a ValueError; a deeply nested file raises RecursionError.
            data = check_version_record(json.loads(meta_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, RecursionError) as error:
            problem = "missing" if isinstance(error, FileNotFoundError) else f"unreadable ({_short(error)})"
            return ModelVersion(folder.name, CORRUPT, weights, error=f"{meta_path}: version file {problem}")
        status = data["status"]
        if not weights.is_file():
            return ModelVersion(folder.name, CORRUPT, weights, error=f"{weights}: weights file missing")
        return ModelVersion(
            id=folder.name,
            status=status,
            weights=weights,
            parent=data.get("parent"),
            method=data.get("method"),
            arch=data.get("arch"),
            hyperparameters=data.get("hyperparameters", {}),
            corrections_hash=data.get("corrections_hash"),
            metrics=data.get("metrics", {}),
            created=data.get("created", ""),
            reason=data.get("reason", ""),
        )

    def _user_versions(self) -> list[ModelVersion]:
        if not self.versions_dir.is_dir():
            return []
        folders = sorted(p for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        return [self._read_user_version(folder) for folder in folders]

    def list(self) -> list[ModelVersion]:
        """Every version: pretrained first, then the user's by creation; corrupt ones included."""
        versions = self._pretrained() + self._user_versions()
        active = self._resolve_active(versions)
        for version in versions:
            version.active = version.id == active
        return versions

    def _pointer(self) -> str | None:
        """The id the active pointer names; None when it is missing or unreadable (then the default is active)."""
        try:
            with open(self.root / ACTIVE_FILE, "rb") as stream:
                text = stream.read(256).decode("utf-8").strip()
        except (OSError, ValueError):
            return None
        return text or None

    def _resolve_active(self, versions: list[ModelVersion]) -> str | None:
        usable = {v.id: v for v in versions if v.status != CORRUPT}
        pointer = self._pointer()
        if pointer in usable:
            return pointer
        # No choice made yet (or the chosen one is gone): the shipped model, U-Net first.
        pretrained = [v for v in usable.values() if v.status == PRETRAINED]
        pretrained.sort(key=lambda v: (v.arch != PREFERRED_PRETRAINED_ARCH, v.id))
        return pretrained[0].id if pretrained else None

    def active_id(self) -> str | None:
        """The id of the active version (the pointer, else the preferred pretrained model)."""
        return self._resolve_active(self._pretrained() + self._user_versions())

    def get(self, version_id: str) -> ModelVersion:
        """The version ``version_id``. Raises ModelError if it is unknown or corrupt."""
        for version in self.list():
            if version.id == version_id:
                if version.status == CORRUPT:
                    raise ModelError(f"model version {version_id} is corrupt: {version.error}")
                return version
        raise ModelError(f"no model version {version_id!r} in {self.root}; see `tumorseg models list`")

    def active(self) -> ModelVersion:
        """The active version. Raises ModelError when there is none (no pretrained model, nothing activated)."""
        active = self.active_id()
        if active is None:
            raise ModelError(f"no model is active in {self.root} and no pretrained model was found")
        return self.get(active)

    def load(self, version_id: str | None = None, device: str = "cpu") -> tuple[LoadedCheckpoint, ModelVersion]:
        """Load a version's network (default: the active one), eval mode.

        Raises ModelError naming the file if the weights cannot be loaded.
        """
        from .checkpoint import load_checkpoint

        version = self.active() if version_id is None else self.get(version_id)
        return load_checkpoint(version.weights, device=device), version

    # ----------------------------------------------------------------- writing

    def new_version_id(self) -> str:
        return f"v{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"

    def add(
        self,
        model: nn.Module,
        *,
        parent: str | None,
        method: str,
        hyperparameters: dict[str, Any],
        corrections_hash: str,
        metrics: dict[str, Any],
        status: str,
        reason: str,
        report: dict[str, Any] | None = None,
        preprocessing: Any = None,
        version_id: str | None = None,
    ) -> ModelVersion:
        """Store a new version atomically (it is not activated; see :meth:`activate`).

        Args:
            model: the adapted network (built by ``models.build_model``: it carries ``.config``).
            parent: the version it was adapted from.
            method: the adaptation method.
            hyperparameters: the run's AdaptConfig as a dict.
            corrections_hash: ``Corrections.digest()``.
            metrics: before/after Dice and the guard's numbers.
            status: "candidate" or "rejected".
            reason: the guard's explanation.
            report: the full adaptation report (JSON-serialisable), kept beside the weights.
            preprocessing: the PreprocessingConfig the parent was trained with.
            version_id: an explicit id (default: a new time-stamped one).
        """
        from .checkpoint import model_config_of, save_checkpoint

        if status not in STORED_STATUSES:
            raise ValueError(f"status must be one of {STORED_STATUSES}, got {status!r}")
        version_id = version_id or self.new_version_id()
        target = self.versions_dir / version_id
        if target.exists():
            raise ModelError(f"{target}: a model version with that id already exists")
        data = {
            "format": VERSION_FORMAT,
            "id": version_id,
            "parent": parent,
            "method": method,
            "arch": model_config_of(model).arch,
            "hyperparameters": hyperparameters,
            "corrections_hash": corrections_hash,
            "metrics": metrics,
            "status": status,
            "reason": reason,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{version_id}.", dir=self.staging_dir))
        try:
            provenance = {k: data[k] for k in ("id", "parent", "method", "corrections_hash", "created")}
            save_checkpoint(staging / WEIGHTS_FILE, model, preprocessing=preprocessing, metadata=provenance)
            if report is not None:
                atomic_write_json(staging / REPORT_FILE, report, sort_keys=True)
            atomic_write_json(staging / VERSION_FILE, data, sort_keys=True)
            fsync_folder(staging)
            os.rename(staging, target)  # the one step that makes the version exist
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_folder(self.versions_dir)
        return self._read_user_version(target)

    def activate(self, version_id: str, *, force: bool = False) -> ModelVersion:
        """Make ``version_id`` the active version (atomic pointer replace).

        Raises ModelError if it is unknown or corrupt, or was rejected by the
        guard and ``force`` is False.
        """
        version = self.get(version_id)
        if version.status == REJECTED and not force:
            raise ModelError(
                f"model version {version_id} was rejected ({version.reason}); use --force to activate it anyway"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / ACTIVE_FILE, version_id + "\n", overwrite=True)
        version.active = True
        return version

    def rollback(self) -> ModelVersion:
        """Activate the parent of the active version; returns the parent.

        Raises ModelError if the active version has no parent (a pretrained
        model) or its parent is gone or corrupt.
        """
        current = self.active()
        if current.parent is None:
            raise ModelError(f"model version {current.id} has no parent to roll back to")
        try:
            return self.activate(current.parent, force=True)
        except ModelError as error:
            raise ModelError(f"cannot roll back {current.id} to its parent: {error}") from None

    def delete(self, version_id: str) -> None:
        """Remove a user version (atomic: renamed out of ``versions/`` first).

        Raises ModelError for a pretrained or unknown version, or the active one.
        A corrupt version can be deleted.
        """
        versions = {v.id: v for v in self.list()}
        version = versions.get(version_id)
        if version is None:
            raise ModelError(f"no model version {version_id!r} in {self.root}; see `tumorseg models list`")
        if version.read_only:
            raise ModelError(f"{version.weights}: {version_id} is a shipped pretrained model and cannot be deleted")
        if version.active:
            raise ModelError(f"model version {version_id} is active; activate another or roll back first")
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        doomed = self.staging_dir / f"deleted-{version_id}.{secrets.token_hex(4)}"
        os.rename(self.versions_dir / version_id, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def _clean_stale_staging(self) -> None:
        """Remove what a crashed writer left in ``.staging`` (only old entries: a live writer may be busy)."""
        if not self.staging_dir.is_dir():
            return
        now = time.time()
        for entry in self.staging_dir.iterdir():
            try:
                if now - entry.stat().st_mtime > STALE_STAGING_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
            except OSError:
                continue


def _short(error: BaseException) -> str:
    """An exception as a few words on one line (a JSON error can quote a whole line of the file)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:120]
