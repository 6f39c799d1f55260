"""Atomic file writes: a temporary file beside the target, fsync, then rename.

A crash, a full disk or an exception mid-write leaves either the old state
(no file, or the previous file when overwriting) or the complete new file,
never half of one; the temporary file is removed on failure.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import BinaryIO

from ..errors import CaseError

_EXISTS = "already exists; pass overwrite=True (or --overwrite) to replace it"


def atomic_write_bytes(path: str | PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically.

    Args:
        path: the target file; its folder must exist.
        data: the complete file content.
        overwrite: replace an existing file; when False an existing file is an error.

    Returns:
        The target path.

    Raises:
        CaseError: the target exists (and overwrite is False), or the folder
            cannot be written.
    """
    return atomic_write_stream(path, lambda stream: _write_all(stream, data), overwrite=overwrite)


def atomic_write_stream(
    path: str | PathLike[str], write: Callable[[BinaryIO], object], *, overwrite: bool = False
) -> Path:
    """Let ``write`` fill a binary stream, then publish it at ``path`` atomically.

    For content made by a library that writes to a file (``np.savez``,
    ``json.dump`` through a text wrapper) without first building the whole
    file in memory. Arguments, return value and errors as :func:`atomic_write_bytes`.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise CaseError(target, "cannot write: the folder does not exist")
    if target.is_dir():
        raise CaseError(target, "cannot write: a folder has that name")
    if not overwrite and target.exists():
        raise CaseError(target, _EXISTS)
    try:
        # Same folder, so the final rename never crosses file systems; the
        # leading dot keeps half-written files out of folder listings.
        handle, temporary_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise CaseError(target, f"cannot write: {error.strerror or error}") from None
    temporary = Path(temporary_name)
    try:
        _set_mode(handle, target)
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        _publish(temporary, target, overwrite)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CaseError(target, f"cannot write: {error.strerror or error}") from None
        raise
    fsync_folder(folder)
    return target


def atomic_write_text(path: str | PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write UTF-8 text atomically, making the folder if needed (results, JSON records)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _set_mode(handle: int, target: Path) -> None:
    """Give the temporary file the permissions the target would get (mkstemp makes it 0600).

    A replaced file keeps its mode; a new one gets 0666 minus the umask, as open() would.
    """
    if not hasattr(os, "fchmod"):
        return  # Windows: no POSIX modes
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_current_umask()
    os.fchmod(handle, mode)


def _current_umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _write_all(stream: object, data: bytes) -> None:
    """Write the bytes in chunks (a separate function so tests can make it fail midway)."""
    view = memoryview(data)
    chunk = 1 << 22
    for start in range(0, len(view), chunk):
        stream.write(view[start : start + chunk])  # type: ignore[attr-defined]


def _publish(temporary: Path, target: Path, overwrite: bool) -> None:
    """Move the finished temporary file to its name, without clobbering unless asked."""
    if overwrite:
        os.replace(temporary, target)
        return
    try:
        # A hard link fails if the target appeared meanwhile: no race with another writer.
        os.link(temporary, target)
    except FileExistsError:
        raise CaseError(target, _EXISTS) from None
    except OSError:
        # File systems without hard links (FAT, some network shares): check, then rename.
        if target.exists():
            raise CaseError(target, _EXISTS) from None
        os.replace(temporary, target)
        return
    temporary.unlink()


def fsync_folder(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
