"""``read_case``: every supported input form -> one Case in the canonical layout.

Forms, chosen by what ``path`` is and which keywords are given:

- a BraTS 2020 folder (``*_flair``, ``*_t1``, ``*_t1ce``, ``*_t2``, ``*_seg``)
  or a BraTS 2023 folder (``*-t2f``, ``*-t1n``, ``*-t1c``, ``*-t2w``, ``*-seg``);
- explicit files, ``modality_files={"t1": ..., "flair": ...}`` (+ ``seg=``);
- a single 3D NIfTI file (its modality from ``modality=`` or its name);
- a 4D NIfTI file with one modality per volume (``order=`` names them);
- a folder of DICOM series, one per modality.

Any non-empty subset of the modalities is a case; the missing ones are
absent from ``Case.images``. Every file must lie on the grid of the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import CaseError
from .assemble import SourceSet, SourceVolume
from .case import MODALITIES, Case, Geometry
from .folders import CaseFiles, contains_dicom, find_case_files, visible_entries
from .labels import LabelConvention
from .naming import SEG_ROLE, brats_role, guess_modality, nifti_stem, nifti_suffix, normalize_modality
from .nifti import load_nifti, read_nifti_image
from .volumes import clean_image, squeeze_to_3d

PathArg = str | PathLike[str]
_NO_MODALITY_IN_NAME = "no recognisable modality in the file name; say which (flair, t1, t1c or t2)"


def read_case(
    path: PathArg | None = None,
    *,
    modality_files: Mapping[str, PathArg] | Sequence[PathArg] | None = None,
    seg: PathArg | None = None,
    order: Sequence[str] | None = None,
    modality: str | None = None,
    name: str | None = None,
) -> Case:
    """Read a case from any supported input form; every file must lie on one grid.

    Arguments as :func:`read_sources`, which reads the same files without
    asking them to share a grid (the Prepare step co-registers them).

    Raises:
        CaseError: the input cannot be read, or its files are on different grids; the message names the file.
    """
    return read_sources(path, modality_files=modality_files, seg=seg, order=order, modality=modality,
                        name=name).assemble()


def read_sources(
    path: PathArg | None = None,
    *,
    modality_files: Mapping[str, PathArg] | Sequence[PathArg] | None = None,
    seg: PathArg | None = None,
    order: Sequence[str] | None = None,
    modality: str | None = None,
    name: str | None = None,
) -> SourceSet:
    """Read the volumes of a case from any supported input form, each on its own grid.

    Args:
        path: a case folder (BraTS or DICOM), or one NIfTI file (3D or 4D).
            With ``modality_files``, an optional folder that relative paths
            are taken from.
        modality_files: explicit files, modality (any spelling: 't1ce',
            't2f', 'FLAIR'...) -> path, a "seg" key taken as ``seg``; or a
            list of files whose names say their role (``x_t1.nii.gz``,
            ``flair.nii``, ``x-seg.nii.gz``), as when files are dropped on napari.
        seg: a reference mask; for a folder, it replaces the one found there.
        order: for a 4D file, the modality of each volume, e.g.
            ``("flair", "t1", "t1c", "t2")``.
        modality: for a single 3D file whose name does not say it.
        name: the case id; by default from the BraTS names, folder or file stem.

    Raises:
        CaseError: the input cannot be read; the message names the file.
    """
    if modality_files is not None:
        base = Path(path) if path is not None else None
        return _read_explicit(modality_files, seg, base, name)
    if path is None:
        raise CaseError(None, "give a case folder, a NIfTI file or modality_files")
    path = Path(path)
    if not path.exists():
        raise CaseError(path, "no such file or folder")
    if path.is_dir():
        return _read_folder(path, seg, name)
    return _read_single_file(path, seg, order, modality, name)


def _read_folder(folder: Path, seg: PathArg | None, name: str | None) -> SourceSet:
    if not visible_entries(folder):
        raise CaseError(folder, "the folder is empty")
    found = find_case_files(folder)
    if seg is not None:
        found.files[SEG_ROLE] = Path(seg)
    if found.modalities:
        return _read_named_files(found, name)
    if contains_dicom(folder):
        from .dicom import read_dicom_sources

        return read_dicom_sources(folder, name=name, seg=found.seg)
    if found.seg is not None:
        raise CaseError(folder, f"only a reference mask ({found.seg.name}), no image of any modality")
    raise CaseError(
        folder,
        "no recognisable modality: expected BraTS names (*_flair, *_t1, *_t1ce, *_t2 or "
        "*-t2f, *-t1n, *-t1c, *-t2w, as .nii or .nii.gz) or DICOM series",
    )


def _read_named_files(found: CaseFiles, name: str | None) -> SourceSet:
    volumes = {key: _read_image(found.files[key]) for key in found.modalities}
    return SourceSet(name or found.name, volumes, found.seg, found.convention_hint)


def _roles_from_names(paths: Sequence[PathArg]) -> dict[str, PathArg]:
    """A list of files -> role -> file, each role read from its file name."""
    roles: dict[str, PathArg] = {}
    for file in paths:
        role_info = brats_role(file)
        role = role_info[0] if role_info is not None else guess_modality(nifti_stem(file))
        if role is None:
            raise CaseError(file, _NO_MODALITY_IN_NAME)
        if role in roles:
            raise CaseError(file, f"two files for {role}: {roles[role]} and {file}")
        roles[role] = file
    return roles


def _read_explicit(
    modality_files: Mapping[str, PathArg] | Sequence[PathArg],
    seg: PathArg | None,
    base: Path | None,
    name: str | None,
) -> SourceSet:
    if not isinstance(modality_files, Mapping):
        if isinstance(modality_files, (str, PathLike)):
            modality_files = [modality_files]
        modality_files = _roles_from_names(modality_files)
    def located(file: PathArg) -> Path:
        return Path(file) if base is None else base / Path(file)

    seg_path = located(seg) if seg is not None else None
    files: dict[str, Path] = {}
    for key, file in modality_files.items():
        file_path = located(file)
        if key.lower() in (SEG_ROLE, "label", "labels"):
            seg_path = file_path
            continue
        modality = normalize_modality(key)
        if modality is None:
            raise CaseError(file_path, f"unknown modality {key!r}; expected one of {', '.join(MODALITIES)}")
        if modality in files:
            raise CaseError(file_path, f"two files given for {modality}: {files[modality]} and {file_path}")
        files[modality] = file_path
    if not files:
        raise CaseError(base, "no modality file given (a reference mask alone is not a case)")
    volumes = {key: _read_image(files[key]) for key in MODALITIES if key in files}
    first = next(iter(volumes.values())).path
    named = [*files.values(), *([seg_path] if seg_path is not None else [])]
    return SourceSet(name or _stem_case_name(first), volumes, seg_path, _convention_hint(named))


def _convention_hint(paths: Sequence[Path]) -> LabelConvention:
    """BraTS 2023 when the files carry 2023 names only (t2f, t1n...), else BraTS 2020."""
    schemes = {role[2] for role in map(brats_role, paths) if role is not None and role[2] != "both"}
    return LabelConvention.BRATS2023 if schemes == {"brats2023"} else LabelConvention.BRATS2020


def _read_single_file(
    path: Path, seg: PathArg | None, order: Sequence[str] | None, modality: str | None, name: str | None
) -> SourceSet:
    if nifti_suffix(path) is None:
        raise CaseError(path, "not a NIfTI file (.nii or .nii.gz) nor a case folder")
    role = brats_role(path)
    if role is not None and role[0] == SEG_ROLE and modality is None and order is None:
        raise CaseError(path, "is a reference mask; open the case folder or give the image files too")
    data, affine = load_nifti(path)
    while data.ndim > 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 5 and data.shape[3] == 1:
        # NIfTI keeps vector components in the 5th dimension, time (the 4th) left at 1.
        data = data[:, :, :, 0, :]
    if data.ndim == 4 and data.shape[3] > 1:
        return _read_4d(path, data, affine, seg, order, name)
    data = squeeze_to_3d(data, path)
    key = _single_modality(path, order, modality)
    volume = SourceVolume(clean_image(data, path), Geometry(affine, data.shape), path)
    return SourceSet(name or _stem_case_name(path), {key: volume}, _optional_path(seg))


def _read_4d(
    path: Path,
    data: np.ndarray,
    affine: np.ndarray,
    seg: PathArg | None,
    order: Sequence[str] | None,
    name: str | None,
) -> SourceSet:
    count = data.shape[3]
    if order is None:
        raise CaseError(path, f"is 4D with {count} volumes; give their modality order (e.g. flair,t1,t1c,t2)")
    if len(order) != count:
        raise CaseError(path, f"has {count} volumes but the order names {len(order)}: {', '.join(order)}")
    keys = [_modality_or_error(path, spelled) for spelled in order]
    if len(set(keys)) != len(keys):
        raise CaseError(path, f"the order names a modality twice: {', '.join(order)}")
    geometry = Geometry(affine, data.shape[:3])
    volumes = {
        key: SourceVolume(clean_image(data[..., index], path), geometry, path)
        for index, key in enumerate(keys)
    }
    return SourceSet(name or _stem_case_name(path), volumes, _optional_path(seg))


def _optional_path(path: PathArg | None) -> Path | None:
    return None if path is None else Path(path)


def _read_image(path: Path) -> SourceVolume:
    data, geometry = read_nifti_image(path)
    return SourceVolume(data, geometry, path)


def _single_modality(path: Path, order: Sequence[str] | None, modality: str | None) -> str:
    if modality is not None:
        return _modality_or_error(path, modality)
    if order is not None:
        if len(order) != 1:
            raise CaseError(path, f"is 3D (one volume) but the order names {len(order)}: {', '.join(order)}")
        return _modality_or_error(path, order[0])
    guessed = guess_modality(nifti_stem(path))
    if guessed is None:
        raise CaseError(path, _NO_MODALITY_IN_NAME)
    return guessed


def _modality_or_error(path: Path, spelled: str) -> str:
    key = normalize_modality(spelled)
    if key is None:
        raise CaseError(path, f"unknown modality {spelled!r}; expected one of {', '.join(MODALITIES)}")
    return key


def _stem_case_name(path: Path) -> str:
    role = brats_role(path)
    if role is not None and role[1].rstrip("_-."):
        return role[1].rstrip("_-.")
    return nifti_stem(path)
