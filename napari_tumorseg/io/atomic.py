"""The one atomic writer: a temporary file beside the target, fsync, then rename.

A crash, a full disk or an exception mid-write leaves either the old state
(no file, or the previous file when overwriting) or the complete new file,
never half of one; the temporary file is removed on failure. Every failure is
a :class:`~napari_tumorseg.errors.WriteError` naming the file. Every file the
project writes goes through here; :func:`check_writable` lets a command refuse
a bad output before minutes of work rather than after.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import BinaryIO

from ..errors import WriteError

_EXISTS = "already exists; pass overwrite=True (or --overwrite) to replace it"


def atomic_write_bytes(
    path: str | PathLike[str], data: bytes, *, overwrite: bool = False, make_folder: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically.

    Args:
        path: the target file.
        data: the complete file content.
        overwrite: replace an existing file; when False an existing file is an error.
        make_folder: create the target's folder (and its parents) when missing.

    Returns:
        The target path.

    Raises:
        WriteError: the target exists (and overwrite is False), or it cannot be written.
    """
    return atomic_write_stream(
        path, lambda stream: _write_all(stream, data), overwrite=overwrite, make_folder=make_folder
    )


def atomic_write_text(
    path: str | PathLike[str], text: str, *, overwrite: bool = False, make_folder: bool = False
) -> Path:
    """Write UTF-8 text atomically (arguments and errors as :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite, make_folder=make_folder)


def atomic_write_json(
    path: str | PathLike[str],
    data: object,
    *,
    overwrite: bool = False,
    make_folder: bool = False,
    sort_keys: bool = False,
) -> Path:
    """Write ``data`` as indented JSON with a final newline (arguments as :func:`atomic_write_bytes`)."""
    text = json.dumps(data, indent=2, sort_keys=sort_keys) + "\n"
    return atomic_write_text(path, text, overwrite=overwrite, make_folder=make_folder)


def atomic_write_stream(
    path: str | PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    overwrite: bool = False,
    make_folder: bool = False,
) -> Path:
    """Let ``write`` fill a binary stream, then publish it at ``path`` atomically.

    For content made by a library that writes to a file (``np.savez``,
    ``json.dump`` through a text wrapper) without first building the whole
    file in memory. Arguments, return value and errors as :func:`atomic_write_bytes`.
    """
    target = check_writable(path, overwrite=overwrite, make_folder=make_folder)
    if make_folder:
        _make_folder(target)
    folder = target.parent
    try:
        # Same folder, so the final rename never crosses file systems; the
        # leading dot keeps half-written files out of folder listings.
        handle, temporary_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise WriteError(target, f"cannot write: {error.strerror or error}") from None
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
            raise WriteError(target, f"cannot write: {error.strerror or error}") from None
        raise
    fsync_folder(folder)
    return target


def check_writable(path: str | PathLike[str], *, overwrite: bool = False, make_folder: bool = False) -> Path:
    """Refuse a target that could not be written, before any work is done for it.

    Args:
        path: the file a command will write.
        overwrite: an existing file may be replaced.
        make_folder: a missing folder will be made when the file is written
            (only checked here: nothing is made before the work succeeds).

    Returns:
        The target as a Path.

    Raises:
        WriteError: a folder has that name, the file exists (and overwrite is
            False), or its folder is missing (and make_folder is False) or a file has its name.
    """
    target = Path(path)
    if target.is_dir():
        raise WriteError(target, "cannot write: a folder has that name")
    if not overwrite and (target.exists() or target.is_symlink()):
        raise WriteError(target, _EXISTS)
    folder = target.parent
    if not folder.is_dir():
        existing = next((p for p in folder.parents if p.exists()), None) if make_folder else None
        if existing is None or not existing.is_dir() or folder.exists():
            problem = "is a file" if folder.exists() else "does not exist"
            raise WriteError(target, f"cannot write: the folder {problem}")
    return target


def _make_folder(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(target, f"cannot make its folder: {error.strerror or error}") from None


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
        raise WriteError(target, _EXISTS) from None
    except OSError:
        # File systems without hard links (FAT, some network shares): check, then rename.
        if target.exists():
            raise WriteError(target, _EXISTS) from None
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
