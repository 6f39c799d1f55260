"""Settings that persist between sessions (last folder, method, device), as a small JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..io.atomic import atomic_write_bytes
from ..paths import settings_file


@dataclass
class Settings:
    last_folder: str = ""
    method: str = "active"
    device: str = "auto"
    mirror: str = "auto"
    keep_uncertain: bool = False
    suggestions: int = 5
    auto_prepare: bool = True

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or settings_file()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            return cls()  # first run, or a file we cannot trust: defaults
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and isinstance(v, type(getattr(cls(), k)))}
        return cls(**values)

    def save(self, path: Path | None = None) -> None:
        path = path or settings_file()
        atomic_write_bytes(path, json.dumps(asdict(self), indent=2).encode(), overwrite=True, make_folder=True)

    def save_quietly(self, path: Path | None = None) -> None:
        """Save, ignoring any failure: settings are a convenience and must never break the workflow."""
        try:
            self.save(path)
        except Exception:  # noqa: BLE001 - a read-only home, a full disk: the next save may work
            pass
