"""File names: NIfTI suffixes, BraTS 2020 / 2023 patterns, modality guessing.

Pure string work on names, no file is opened, so ``looks_like_case`` and
napari's ``get_reader`` can answer at once.

Two levels of strictness:

- :func:`brats_role` reads the BraTS suffix at the *end* of a file stem
  (``..._t1ce``, ``...-t2f``, ``..._seg``); it is what folder scanning uses,
  so ``_t1`` never matches ``_t1ce`` and a stray ``notes_t1.txt`` is ignored.
- :func:`guess_modality` reads free text (a lone file name, a DICOM
  SeriesDescription such as ``"AX T2 FLAIR"`` or ``"T1 POST GD"``).
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

from .case import MODALITIES

NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")
SEG_ROLE = "seg"

# File-name suffix -> modality key (or "seg"), for each BraTS naming scheme.
BRATS2020_SUFFIXES: dict[str, str] = {
    "flair": "flair",
    "t1": "t1",
    "t1ce": "t1c",
    "t2": "t2",
    "seg": SEG_ROLE,
}
BRATS2023_SUFFIXES: dict[str, str] = {
    "t2f": "flair",
    "t1n": "t1",
    "t1c": "t1c",
    "t2w": "t2",
    "seg": SEG_ROLE,
}
# The file-name suffix each layout writes for each role (the inverse maps).
LAYOUT_SUFFIXES: dict[str, dict[str, str]] = {
    "brats2020": {role: suffix for suffix, role in BRATS2020_SUFFIXES.items()},
    "brats2023": {role: suffix for suffix, role in BRATS2023_SUFFIXES.items()},
}
LAYOUT_SEPARATORS: dict[str, str] = {"brats2020": "_", "brats2023": "-"}

# Every spelling a user may give for a modality (CLI, 4D order, explicit files).
MODALITY_ALIASES: dict[str, str] = {
    "flair": "flair",
    "t2f": "flair",
    "t2flair": "flair",
    "t1": "t1",
    "t1n": "t1",
    "t1w": "t1",
    "t1c": "t1c",
    "t1ce": "t1c",
    "t1gd": "t1c",
    "t1post": "t1c",
    "t2": "t2",
    "t2w": "t2",
}

_ALL_SUFFIXES = {**BRATS2020_SUFFIXES, **BRATS2023_SUFFIXES}
# Longest first so that the alternation prefers "t1ce" to "t1"; the "$" anchor
# is what really keeps "_t1" from matching "_t1ce".
_BRATS_PATTERN = re.compile(
    r"(?:^|[_\-.])(" + "|".join(sorted(_ALL_SUFFIXES, key=len, reverse=True)) + r")$",
    re.IGNORECASE,
)


def nifti_suffix(path: str | PathLike[str]) -> str | None:
    """'.nii.gz' or '.nii' when the name ends so (any case), else None.

    Args:
        path: a file name or path.
    """
    name = Path(path).name.lower()
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def nifti_stem(path: str | PathLike[str]) -> str:
    """The file name without '.nii' or '.nii.gz'.

    Args:
        path: a file name or path ending in a NIfTI suffix (others keep their name).
    """
    name = Path(path).name
    suffix = nifti_suffix(name)
    return name[: -len(suffix)] if suffix else name


def brats_role(path: str | PathLike[str]) -> tuple[str, str, str] | None:
    """The BraTS role of a NIfTI file from its name, or None.

    Args:
        path: a file name or path.

    Returns:
        ``(role, case_prefix, scheme)``: role is a modality key or "seg",
        case_prefix the stem before the separator and suffix (the BraTS case id, may be
        empty), scheme "brats2020", "brats2023" or "both" for "seg".
    """
    if nifti_suffix(path) is None:
        return None
    stem = nifti_stem(path)
    match = _BRATS_PATTERN.search(stem)
    if match is None:
        return None
    suffix = match.group(1).lower()
    in_2020, in_2023 = suffix in BRATS2020_SUFFIXES, suffix in BRATS2023_SUFFIXES
    scheme = "both" if in_2020 and in_2023 else "brats2020" if in_2020 else "brats2023"
    return _ALL_SUFFIXES[suffix], stem[: match.start()], scheme


def normalize_modality(name: str) -> str | None:
    """A modality key from a user's spelling ('T1ce', 't2f', 'FLAIR'...), or None.

    Args:
        name: the spelling to interpret.
    """
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return MODALITY_ALIASES.get(key)


def guess_modality(text: str) -> str | None:
    """Best guess of the modality named in free text, or None when it names none or several.

    Args:
        text: a file stem, folder name or DICOM SeriesDescription.
    """
    lowered = text.lower()
    strict = _BRATS_PATTERN.search(lowered)
    if strict and _ALL_SUFFIXES[strict.group(1)] in MODALITIES:
        return _ALL_SUFFIXES[strict.group(1)]
    # FLAIR first: "T2 FLAIR" and "t2f" also contain "t2".
    if "flair" in lowered or re.search(r"(?<![a-z0-9])t2f(?![a-z0-9])", lowered):
        return "flair"
    t1 = re.search(r"(?<![a-z0-9])t1", lowered)
    t2 = re.search(r"(?<![a-z0-9])t2", lowered)
    if t1 and t2:
        return None
    if t1:
        contrast = re.search(r"t1[\s_\-]*(ce|c|gd|gad)(?![a-z])|\+\s*c|gad|gd|post|contrast", lowered)
        return "t1c" if contrast else "t1"
    if t2:
        return "t2"
    return None


def case_file_name(name: str, role: str, layout: str, suffix: str = ".nii.gz") -> str:
    """The BraTS file name of one role ('flair'... or 'seg') for a case.

    Args:
        name: the case id, e.g. 'BraTS20_Training_001'.
        role: a modality key or "seg".
        layout: "brats2020" or "brats2023".
        suffix: ".nii.gz" or ".nii".
    """
    if layout not in LAYOUT_SUFFIXES:
        raise ValueError(f"layout must be one of {sorted(LAYOUT_SUFFIXES)}, got {layout!r}")
    return f"{name}{LAYOUT_SEPARATORS[layout]}{LAYOUT_SUFFIXES[layout][role]}{suffix}"
