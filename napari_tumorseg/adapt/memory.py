"""The memory of the user's past corrections, by case, replayed so that adapting to case N keeps cases 1..N-1.

Replay of source slices alone keeps what the model knew before the user
came (synthetic glioma); it does nothing for the cases the user taught it
since. After every adaptation the corrected slices of each case are kept
here, network-ready, and every later adaptation on *another* case replays a
few of them at every step beside the source slices (``Replay``'s memory).

On disk: ``<registry root>/memory/<case key>.npz``, one file per case (its
content fingerprint, so a moved folder is the same case), holding the
inputs (float16), the corrected labels, the slice indices, the case name
and the network input layout they were prepared for. Each file is written
by the atomic writer (``io/atomic.py``) and only ever replaced whole, so a
crash leaves the old entry or the new one, never half; there is no index
to corrupt. A damaged file is skipped (and listed as such), never deleted:
the next adaptation of that case replaces it. Entries prepared for another
input layout (another network's 2.5D context) are kept but not replayed. At
most ``max_cases`` cases are kept, the least recently adapted dropped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.npz import NpzProblem, read_npz
from .corrections import CaseCorrections
from .sampling import SlicePool

MEMORY_FOLDER = "memory"
FORMAT = "napari-tumorseg-correction-memory/1"
MAX_CASES = 32
# A memory entry is a few corrected slices: far below this (refuse anything bigger unread).
MAX_ARRAY_BYTES = 512 * 1024 * 1024


def layout_of(inputs: np.ndarray, context: int) -> tuple[int, int]:
    """What makes stored inputs usable by a network: (input channels, 2.5D context)."""
    return int(inputs.shape[1]), int(context)


@dataclass(frozen=True)
class MemoryEntry:
    """One case in the memory (as listed; the arrays are read only when replayed)."""

    key: str
    case_name: str
    slices: tuple[int, ...]
    layout: tuple[int, int]
    path: Path
    error: str = ""


class CorrectionMemory:
    """The per-case memory of corrections in ``folder``.

    Args:
        folder: where the entries live (see :meth:`beside`).
        max_cases: cases kept; the least recently written are dropped beyond it.
    """

    def __init__(self, folder: str | os.PathLike[str], max_cases: int = MAX_CASES) -> None:
        self.folder = Path(folder)
        self.max_cases = int(max_cases)

    @classmethod
    def beside(cls, registry_root: str | os.PathLike[str], **options: int) -> CorrectionMemory:
        """The memory kept beside a model registry (``<root>/memory``)."""
        return cls(Path(registry_root) / MEMORY_FOLDER, **options)

    def _path(self, key: str) -> Path:
        safe = "".join(c for c in key if c.isalnum() or c in "-_")[:64] or "case"
        return self.folder / f"{safe}.npz"

    def put(self, case: CaseCorrections, context: int) -> Path:
        """Keep ``case``'s corrected slices (replacing what was kept for it); returns the file.

        Raises:
            WriteError: the file cannot be written (the caller decides whether that matters).
        """
        from ..io.atomic import atomic_write_stream

        channels, context = layout_of(case.inputs, context)
        arrays = {
            "format": np.array(FORMAT),
            "key": np.array(case.case_key),
            "case_name": np.array(case.case_name),
            "inputs": case.inputs.astype(np.float16),
            "labels": case.labels.astype(np.uint8),
            "indices": np.asarray(case.slice_indices, dtype=np.int64),
            "layout": np.asarray([channels, context], dtype=np.int64),
        }
        path = self._path(case.case_key)
        atomic_write_stream(path, lambda stream: np.savez_compressed(stream, **arrays), overwrite=True,
                            make_folder=True)
        self._forget_oldest()
        return path

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted((p for p in self.folder.glob("*.npz") if not p.name.startswith(".")), key=_mtime)

    def entries(self) -> list[MemoryEntry]:
        """Every case kept, most recently written last; damaged files listed with their error."""
        return [_read(path)[0] for path in self._files()]

    def pools(self, layout: tuple[int, int], exclude: Collection[str] = ()) -> list[SlicePool]:
        """The kept corrections as replay pools, one per case, for a network of ``layout``.

        Args:
            layout: (input channels, 2.5D context) of the network being adapted (see :func:`layout_of`).
            exclude: case keys to leave out (the cases being adapted now: their
                corrections are the tasks, not the memory).
        """
        pools = []
        for path in self._files():
            entry, arrays = _read(path)
            if entry.error or entry.key in set(exclude) or tuple(entry.layout) != tuple(layout):
                continue
            names = [f"{entry.case_name}:z{z}" for z in entry.slices]
            pools.append(SlicePool.from_arrays(arrays["inputs"].astype(np.float32), arrays["labels"], names))
        return pools

    def _forget_oldest(self) -> None:
        """Drop the least recently written cases beyond ``max_cases`` (renamed aside first, then removed)."""
        kept = self._files()
        for path in kept[: max(len(kept) - self.max_cases, 0)]:
            doomed = path.with_name(f".forgotten-{secrets.token_hex(4)}-{path.name}")
            try:
                os.rename(path, doomed)
                os.unlink(doomed)
            except OSError:
                continue  # another process got there first, or a read-only folder: harmless


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read(path: Path) -> tuple[MemoryEntry, dict[str, np.ndarray]]:
    """The entry and its arrays; a damaged file gives an entry with its error and no arrays."""
    try:
        arrays = read_npz(path, MAX_ARRAY_BYTES)
        return _entry(path, arrays), arrays
    except (FileNotFoundError, NpzProblem, KeyError, ValueError) as error:
        return MemoryEntry(path.stem, "?", (), (0, 0), path, error=f"unreadable ({error})"), {}


def _entry(path: Path, arrays: dict[str, np.ndarray]) -> MemoryEntry:
    if str(arrays["format"]) != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    inputs, labels, indices = arrays["inputs"], arrays["labels"], arrays["indices"]
    if inputs.ndim != 4 or labels.shape != (inputs.shape[0], *inputs.shape[2:]) or len(indices) != len(inputs):
        raise ValueError("arrays of mismatched shapes")
    layout = tuple(int(v) for v in arrays["layout"])
    return MemoryEntry(str(arrays["key"]), str(arrays["case_name"]), tuple(int(z) for z in indices),
                       (layout[0], layout[1]), path)


def memory_summary(entries: Sequence[MemoryEntry]) -> str:
    """One line: how many cases and slices the memory holds."""
    usable = [e for e in entries if not e.error]
    slices = sum(len(e.slices) for e in usable)
    damaged = len(entries) - len(usable)
    text = f"{len(usable)} case(s), {slices} corrected slice(s)"
    return text + (f"; {damaged} unreadable" if damaged else "")
