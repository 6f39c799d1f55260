"""Undo and redo of every edit of the labels, kept in the case's session folder so a crash keeps them.

Layout (inside the session folder, beside ``corrections.npz``)::

    history/index.json   the entries in order and how many of them are applied ("position")
    history/e<id>.npz    one edit each: flat indices, old and new values (a sparse diff)

Crash safety:

- every write is atomic, and an entry file is never rewritten: each edit gets
  a new id, so a file on disk is always a whole edit;
- an edit is written in this order: its entry file, the corrections (by the
  caller), the index; an undo or redo: the corrections, then the index;
- on opening, the labels restored from the corrections decide: the position
  moves down while the entry below it is not applied, up while the one above
  it is, and an entry file newer than the index whose edit the labels hold
  already is adopted (a crash after the corrections, before the index);
- an entry whose voxels no longer hold either its old or its new values
  (something the history did not see changed them) cuts the history there:
  undo never writes values that do not follow from the labels on screen;
- a damaged index is renamed aside, never overwritten; unreferenced entry
  files are removed only after an index that no longer names them is written.

Bounds: at most ``max_entries`` undo steps and ``max_voxels`` changed voxels
in all (the oldest steps go first), so the folder stays a few MB.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io.npz import NpzProblem, read_npz
from ..prompts.edits import LabelEdit
from .writer import SessionWriter

FORMAT = "napari-tumorseg-history/1"
INDEX_FILE = "index.json"
MAX_ENTRIES = 100
MAX_VOXELS = 4_000_000
MAX_INDEX_BYTES = 1_000_000


class HistoryMismatch(ValueError):
    """An undo or redo no longer fits the labels (its voxels were changed by something else)."""


@dataclass(frozen=True)
class Entry:
    """One step of the history, as the index lists it."""

    id: int
    what: str
    voxels: int


class EditHistory:
    """The undo/redo steps of one case.

    Args:
        folder: ``<session>/history``.
        shape: the case's grid.
        max_entries: undo steps kept.
        max_voxels: changed voxels kept over all steps.
    """

    def __init__(self, folder: Path, shape: tuple[int, int, int], max_entries: int = MAX_ENTRIES,
                 max_voxels: int = MAX_VOXELS, writer: SessionWriter | None = None) -> None:
        self.folder = Path(folder)
        self.shape = tuple(int(s) for s in shape)
        self.max_entries, self.max_voxels = max_entries, max_voxels
        self.writer = writer or SessionWriter()
        self.entries: list[Entry] = []
        self.position = 0  # entries[:position] are applied
        # The edits staged by this process, by id: an undo reads them here, as a background writer may
        # not have put their files on disk yet (and memory is faster than the disk anyway).
        self._staged: dict[int, LabelEdit] = {}
        self._last_id = 0

    # --- what the user sees -------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return self.position > 0

    @property
    def can_redo(self) -> bool:
        return self.position < len(self.entries)

    @property
    def undo_what(self) -> str:
        return self.entries[self.position - 1].what if self.can_undo else ""

    @property
    def redo_what(self) -> str:
        return self.entries[self.position].what if self.can_redo else ""

    # --- recording ----------------------------------------------------------------------

    def stage(self, edit: LabelEdit) -> Entry:
        """Write a new edit's entry file (under a name never used before); the index does not name it yet."""
        entry = Entry(self._next_id(), edit.what, edit.voxels)
        dtype = np.int32 if int(np.prod(self.shape)) < 2**31 else np.int64
        # An edit is never changed once made (applying it reads it; undo makes its inverse).
        self.writer.write_npz(self._file(entry.id), {"indices": edit.indices.astype(dtype), "old": edit.old,
                                                     "new": edit.new, "what": np.array(edit.what)}, make_folder=True)
        self._staged[entry.id] = edit
        self._last_id = entry.id
        return entry

    def commit(self, entry: Entry) -> None:
        """The labels now hold the staged edit: it becomes the newest step (a redo branch is dropped)."""
        self.entries = self.entries[: self.position] + [entry]
        self.position = len(self.entries)
        while len(self.entries) > 1 and (
            len(self.entries) > self.max_entries or sum(e.voxels for e in self.entries) > self.max_voxels
        ):
            self.entries.pop(0)
            self.position -= 1
        self._write_index()

    def peek_undo(self) -> LabelEdit:
        return self._read(self.entries[self.position - 1])

    def peek_redo(self) -> LabelEdit:
        return self._read(self.entries[self.position])

    def moved(self, step: int) -> None:
        """The labels were undone (-1) or redone (+1) by one step: record the new position."""
        self.position = min(max(self.position + step, 0), len(self.entries))
        self._write_index()

    def cut_below(self) -> None:
        """Forget the steps that can no longer be undone (those at and below the position)."""
        self.entries = self.entries[self.position :]
        self.position = 0
        self._write_index()

    def drop_redo(self) -> None:
        self.entries = self.entries[: self.position]
        self._write_index()

    # --- opening ------------------------------------------------------------------------

    def restore(self, labels: np.ndarray) -> list[str]:
        """Read the history and make it agree with ``labels`` (the labels restored from the corrections).

        Returns one line per problem found (a damaged index set aside, steps that no longer fit).
        """
        problems: list[str] = []
        self._read_index(problems)
        changed = self._reconcile(labels, problems)
        if changed:
            self._write_index()
        else:
            self._remove_unreferenced()
        return problems

    def _reconcile(self, labels: np.ndarray, problems: list[str]) -> bool:
        before = (list(self.entries), self.position)
        try:
            while self.position > 0 and self._state(self.entries[self.position - 1], labels) == "undone":
                self.position -= 1
            while self.position < len(self.entries) and self._state(self.entries[self.position], labels) == "applied":
                self.position += 1
            self._adopt_orphan(labels)
            if self.can_undo and self._state(self.entries[self.position - 1], labels) != "applied":
                problems.append(f"{self.folder}: the undo history no longer matches the saved labels; "
                                "earlier steps cannot be undone")
                self.entries, self.position = self.entries[self.position :], 0
            if self.can_redo and self._state(self.entries[self.position], labels) != "undone":
                self.entries = self.entries[: self.position]
        except (OSError, NpzProblem, KeyError, ValueError) as error:
            problems.append(f"{self.folder}: an undo step is unreadable ({error}); the history starts again")
            self.entries, self.position = [], 0
        return (self.entries, self.position) != before

    def _adopt_orphan(self, labels: np.ndarray) -> None:
        """An entry file newer than every step the index names, whose edit the labels hold: a crash
        came after the corrections were saved and before the index was; it is the newest step."""
        known = max((e.id for e in self.entries), default=0)
        newer = sorted(i for i in self._ids_on_disk() if i > known)
        if not newer:
            return
        edit = self._read_id(newer[0])
        if edit.shape == self.shape and not edit.empty and edit.is_applied(labels):
            self.entries = self.entries[: self.position] + [Entry(newer[0], edit.what, edit.voxels)]
            self.position = len(self.entries)

    def _state(self, entry: Entry, labels: np.ndarray) -> str:
        edit = self._read(entry)
        if edit.is_applied(labels):
            return "applied"
        return "undone" if edit.is_unapplied(labels) else "changed"

    # --- files --------------------------------------------------------------------------

    def _file(self, entry_id: int) -> Path:
        return self.folder / f"e{entry_id:06d}.npz"

    def _ids_on_disk(self) -> list[int]:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        return [int(n[1:7]) for n in names if len(n) == 11 and n.startswith("e") and n.endswith(".npz")
                and n[1:7].isdigit()]

    def _next_id(self) -> int:
        return max([self._last_id, *self._ids_on_disk(), *(e.id for e in self.entries)]) + 1

    def _read(self, entry: Entry) -> LabelEdit:
        staged = self._staged.get(entry.id)
        return staged if staged is not None else self._read_id(entry.id)

    def _read_id(self, entry_id: int) -> LabelEdit:
        size = int(np.prod(self.shape))
        arrays = read_npz(self._file(entry_id), max_bytes=size * 8)
        indices, old, new = arrays["indices"], arrays["old"], arrays["new"]
        if not (indices.ndim == old.ndim == new.ndim == 1 and len(indices) == len(old) == len(new)):
            raise ValueError(f"{self._file(entry_id).name} is not an edit")
        if indices.size and (indices.dtype.kind not in "iu" or indices.min() < 0 or indices.max() >= size):
            raise ValueError(f"{self._file(entry_id).name} lists voxels outside the case")
        return LabelEdit(str(arrays.get("what", "")), self.shape, indices.astype(np.int64),
                         old.astype(np.uint8), new.astype(np.uint8))

    def _write_index(self) -> None:
        data = {"format": FORMAT, "shape": list(self.shape), "position": self.position,
                "entries": [asdict(e) for e in self.entries]}
        self.writer.write_json(self.folder / INDEX_FILE, data, overwrite=True, make_folder=True)
        referenced = {e.id for e in self.entries}
        self._staged = {i: edit for i, edit in self._staged.items() if i in referenced or i > max([0, *referenced])}
        self.writer.run(lambda: self._remove_unreferenced(referenced))

    def _remove_unreferenced(self, referenced: set[int] | None = None) -> None:
        """Entry files no index names any more (dropped steps, a redo branch, a step never committed).

        ``referenced``: the ids the index just written names (captured when it was asked for).
        """
        referenced = {e.id for e in self.entries} if referenced is None else referenced
        newest = max([0, *referenced])
        for entry_id in self._ids_on_disk():
            # A file newer than every named step may be an edit being recorded right now: left alone.
            if entry_id not in referenced and entry_id < newest:
                try:
                    os.unlink(self._file(entry_id))
                except OSError:
                    pass

    def _read_index(self, problems: list[str]) -> None:
        path = self.folder / INDEX_FILE
        try:
            if path.stat().st_size > MAX_INDEX_BYTES:
                raise ValueError(f"{path.stat().st_size:,} bytes")
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = [Entry(int(e["id"]), str(e["what"]), int(e["voxels"])) for e in data["entries"]]
            position = int(data["position"])
            if data.get("format") != FORMAT or list(data["shape"]) != list(self.shape) \
                    or not 0 <= position <= len(entries):
                raise ValueError("not an undo history of this case")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
            problems.append(self._set_aside(path, f"undo history unreadable ({error})"))
            return
        self.entries, self.position = entries, position

    def _set_aside(self, path: Path, problem: str) -> str:
        aside = path.with_name(f"index.damaged-{time.strftime('%Y%m%d-%H%M%S')}.json")
        try:
            os.rename(path, aside)
        except OSError as error:
            return f"{path}: {problem}; left in place ({error.strerror or error})"
        return f"{path}: {problem}; kept as {aside.name}, the history starts again"
