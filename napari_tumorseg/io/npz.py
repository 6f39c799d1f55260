"""Reading ``.npz`` files the project wrote, without trusting them: bounded memory, no pickles.

An ``.npz`` member declares its shape in a small header; ``np.load`` allocates
whatever it says. :func:`read_npz` checks every declared size against a limit
before reading, so a damaged or hostile file costs a one-line error, not the
machine's memory.
"""

from __future__ import annotations

import math
import zipfile
from os import PathLike
from pathlib import Path

import numpy as np


class NpzProblem(ValueError):
    """The file is not an ``.npz`` of plain arrays within the size limit (the message says why)."""


def read_npz(path: str | PathLike[str], max_bytes: int) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, each at most ``max_bytes`` as declared.

    Args:
        path: the file.
        max_bytes: the largest array the caller can expect (e.g. a case's voxels).

    Raises:
        FileNotFoundError: there is no such file.
        NpzProblem: not a zip of ``.npy`` arrays, an array of objects, or one larger than ``max_bytes``.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return {_key(name): _read_member(archive, name, max_bytes) for name in archive.namelist()}
    except FileNotFoundError:
        raise
    except NpzProblem:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError) as error:
        raise NpzProblem(_reason(error)) from None


def _key(name: str) -> str:
    return name[: -len(".npy")] if name.endswith(".npy") else name


def _read_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> np.ndarray:
    with archive.open(name) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        raise NpzProblem(f"array {_key(name)!r} holds Python objects")
    declared = math.prod(shape) * dtype.itemsize
    if declared > max_bytes:
        raise NpzProblem(f"array {_key(name)!r} declares {declared:,} bytes; at most {max_bytes:,} expected")
    with archive.open(name) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:160]
