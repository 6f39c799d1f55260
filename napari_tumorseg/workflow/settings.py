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
    suggestions: int = 5

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or settings_file()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()  # first run, or a file we cannot trust: defaults
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and isinstance(v, type(getattr(cls(), k)))}
        return cls(**values)

    def save(self, path: Path | None = None) -> None:
        path = path or settings_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(asdict(self), indent=2).encode(), overwrite=True)
