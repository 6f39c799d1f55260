"""What a path holds, judged from names only (no voxel is read): BraTS folders, NIfTI, DICOM.

napari's ``get_reader`` must answer at once, so :func:`looks_like_case`
lists a folder (and at most a few DICOM preambles) and nothing more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from ..errors import CaseError
from .case import MODALITIES
from .labels import LabelConvention
from .naming import SEG_ROLE, brats_role, nifti_suffix

# How deep and how many files looks_like_case inspects for DICOM: a case
# folder holds one subfolder per series, so two levels are enough.
_DICOM_SEARCH_DEPTH = 2
_DICOM_PROBES_PER_FOLDER = 8


@dataclass
class CaseFiles:
    """The NIfTI files of a folder that BraTS naming recognises.

    Args:
        folder: the folder scanned.
        files: role (modality key or "seg") -> file.
        scheme: "brats2020", "brats2023" or None when the names do not say.
        name: the case id the names share (or the folder's name).
    """

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    scheme: str | None = None
    name: str = ""

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.files)

    @property
    def seg(self) -> Path | None:
        return self.files.get(SEG_ROLE)

    @property
    def convention_hint(self) -> LabelConvention:
        """The label convention the naming suggests (BraTS 2020 unless the names are 2023-style)."""
        return LabelConvention.BRATS2023 if self.scheme == "brats2023" else LabelConvention.BRATS2020


def visible_entries(folder: Path) -> list[Path]:
    """The entries of a folder, sorted, without hidden ones (dot files, half-written temporaries).

    Args:
        folder: an existing folder.
    """
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(entry.path) for entry in entries if not entry.name.startswith("."))
    except OSError as error:
        raise CaseError(folder, f"cannot list the folder ({error.strerror or error})") from None


def find_case_files(folder: str | PathLike[str]) -> CaseFiles:
    """The BraTS-named NIfTI files directly in ``folder`` (names only, nothing is opened).

    Args:
        folder: a case folder.

    Raises:
        CaseError: two files claim one role (e.g. both ``x_t1.nii`` and ``x_t1.nii.gz``).
    """
    folder = Path(folder)
    found = CaseFiles(folder=folder)
    schemes: set[str] = set()
    prefixes: set[str] = set()
    for entry in visible_entries(folder):
        if not entry.is_file():
            continue
        role_info = brats_role(entry)
        if role_info is None:
            continue
        role, prefix, scheme = role_info
        if role in found.files:
            raise CaseError(folder, f"two files for {role}: {found.files[role].name} and {entry.name}")
        found.files[role] = entry
        prefixes.add(prefix.rstrip("_-."))
        if scheme != "both":
            schemes.add(scheme)
    # A folder mixing both namings is still readable; its convention is then
    # decided by the label values alone.
    found.scheme = schemes.pop() if len(schemes) == 1 else None
    only_prefix = prefixes.pop() if len(prefixes) == 1 else ""
    found.name = only_prefix or folder.resolve().name
    return found


def is_dicom_file(path: Path) -> bool:
    """Whether a file is DICOM: a .dcm name, or the 'DICM' magic after the 128-byte preamble.

    Args:
        path: a file.
    """
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as stream:
            head = stream.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def contains_dicom(folder: Path, depth: int = _DICOM_SEARCH_DEPTH) -> bool:
    """Whether ``folder`` or its subfolders (to ``depth`` levels) hold a DICOM file; cheap probes only.

    Args:
        folder: the folder to inspect.
        depth: how many levels of subfolders to descend.
    """
    try:
        entries = visible_entries(folder)
    except CaseError:
        return False
    probed = 0
    for entry in entries:
        if entry.is_file() and probed < _DICOM_PROBES_PER_FOLDER:
            probed += 1
            if is_dicom_file(entry):
                return True
    if depth > 0:
        return any(contains_dicom(entry, depth - 1) for entry in entries if entry.is_dir())
    return False


def looks_like_case(path: str | PathLike[str]) -> bool:
    """Whether ``read_case(path)`` is worth trying, from names (and a few DICOM preambles) only.

    Args:
        path: a file or folder.
    """
    path = Path(path)
    if path.is_file():
        role = brats_role(path)
        return nifti_suffix(path) is not None and (role is None or role[0] != SEG_ROLE)
    if not path.is_dir():
        return False
    try:
        if find_case_files(path).modalities:
            return True
    except CaseError:
        # Ambiguous names are still a case: read_case will say what is wrong.
        return True
    return contains_dicom(path)
