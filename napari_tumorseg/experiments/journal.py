"""A journal of finished units, so an interrupted experiment resumes where it stopped.

Each finished unit (one adaptation scored) is appended to a JSON-lines file
with its key. A rerun with the same identity (the model's weights and every
setting that changes a unit's result) takes the units it finds there instead
of running them again; each unit is independent and seeded by itself, so the
resumed results equal those of an uninterrupted run. A journal with another
identity is ignored and replaced. The experiment deletes it once its results
are written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from torch import nn

from .common import json_ready

JOURNAL_FORMAT = "napari-tumorseg-experiment-journal/1"


def model_digest(model: nn.Module) -> str:
    """SHA-256 of a model's state (names, shapes and float32 values), independent of the device."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}\0".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


class Journal:
    """Finished units keyed by a tuple, in a JSON-lines file (or only in memory when ``path`` is None).

    Args:
        path: the journal file, or None for none.
        identity: everything that must match for stored units to be reused (JSON-ready).
    """

    def __init__(self, path: Path | None, identity: dict[str, Any]) -> None:
        self.path = None if path is None else Path(path)
        self.identity = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        self.units: dict[str, dict[str, Any]] = {}
        if self.path is None:
            return
        if self.path.is_file() and not self._load():
            self.path.unlink()
        if not self.path.is_file():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"format": JOURNAL_FORMAT, "identity": self.identity})

    def _load(self) -> bool:
        """Read the units of a journal with this identity; False if it belongs to another run."""
        lines = self.path.read_text(encoding="utf-8").splitlines()  # type: ignore[union-attr]
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            return False
        if header.get("format") != JOURNAL_FORMAT or header.get("identity") != self.identity:
            return False
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a crash: everything before it is good
            self.units[entry["key"]] = entry["record"]
        return True

    def _append(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as stream:  # type: ignore[arg-type]
            stream.write(json.dumps(entry, allow_nan=False) + "\n")
            stream.flush()

    @staticmethod
    def key(unit: tuple) -> str:
        return json.dumps(list(unit))

    def get(self, unit: tuple) -> dict[str, Any] | None:
        """The stored record of a finished unit, or None."""
        return self.units.get(self.key(unit))

    def add(self, unit: tuple, record: dict[str, Any]) -> None:
        """Store a finished unit (appended at once, so a crash right after keeps it)."""
        self.units[self.key(unit)] = record
        if self.path is not None:
            self._append({"key": self.key(unit), "record": json_ready(record)})

    def discard(self) -> None:
        """Delete the journal file (the results it fed are written)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
