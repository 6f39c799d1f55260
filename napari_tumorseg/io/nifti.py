"""NIfTI files via nibabel: read volumes with their grid, encode volumes to write.

Every nibabel failure (bad magic, truncated gzip, short data block...) turns
into a one-line CaseError naming the file, so no traceback reaches the user.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import CaseError
from .case import Geometry
from .labels import LabelConvention
from .naming import nifti_suffix
from .volumes import clean_image, read_label_values, squeeze_to_3d

# qform_code / sform_code 1 = "scanner anatomical": coordinates in the scanner's RAS+ mm space.
_XFORM_SCANNER = 1
# nibabel's default for .nii.gz; higher levels cost much time for little space on masks.
_GZIP_LEVEL = 1
# A brain MRI volume is a few million voxels; a header may declare anything (32767^3 in 352 bytes).
MAX_VOXELS = 512**3
# Deflate never compresses more than about 1032:1, so a .gz file cannot hold more than this many bytes per byte.
_MAX_GZIP_RATIO = 1100


def load_nifti(path: str | PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file fully: the voxel array as stored (scaled if the header says so) and the affine.

    Args:
        path: a .nii or .nii.gz file.

    Raises:
        CaseError: missing, unreadable, truncated or corrupt file, or an unusable affine.
    """
    path = Path(path)
    if not path.exists():
        raise CaseError(path, "no such file")
    if not path.is_file():
        raise CaseError(path, "is not a file")
    try:
        data, affine = _read_voxels(path)
    except CaseError:
        raise
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - nibabel, gzip, zlib and numpy all raise their own types
        raise CaseError(path, f"unreadable, truncated or corrupt NIfTI file ({_reason(error)})") from None
    if data.ndim < 3:
        raise CaseError(path, f"the image is {data.ndim}D with shape {data.shape}, expected a 3D volume")
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise CaseError(path, "the header's affine is singular or not finite")
    return data, affine


@contextmanager
def _quiet_nibabel() -> Iterator[None]:
    """nibabel reports header repairs on stderr ("pixdim[1,2,3] should be non-zero..."): not the user's concern.

    Our own messages say what matters, on one line; the problems nibabel cannot repair become a CaseError.
    """
    logger = logging.getLogger("nibabel.global")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_declared_size(path: Path, header: object) -> None:
    """Refuse a header that declares more voxels than the file can hold, or than any brain volume has.

    Checked before the data are read, so a 352-byte file that declares 32767^3
    voxels costs nothing.
    """
    shape = tuple(int(n) for n in header.get_data_shape())  # type: ignore[attr-defined]
    voxels = int(np.prod(shape, dtype=np.float64)) if shape else 0
    declared = voxels * header.get_data_dtype().itemsize  # type: ignore[attr-defined]
    size = path.stat().st_size
    shape_text = "x".join(str(n) for n in shape)
    if voxels > MAX_VOXELS:
        raise CaseError(path, f"the header declares {shape_text} voxels, more than any MRI volume "
                              f"(at most {MAX_VOXELS:,}); corrupt or not an image")
    if path.name.lower().endswith(".gz"):
        if declared > size * _MAX_GZIP_RATIO:
            raise CaseError(path, f"unreadable, truncated or corrupt NIfTI file (the header declares {shape_text} "
                                  f"voxels, {declared:,} bytes, more than a {size:,}-byte compressed file holds)")
    elif int(header.get_data_offset()) + declared > size:  # type: ignore[attr-defined]
        raise CaseError(path, f"unreadable, truncated or corrupt NIfTI file (the header declares {shape_text} "
                              f"voxels, {declared:,} bytes, in a file of {size:,} bytes)")


def _read_voxels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The voxels as stored and the affine; nibabel's own errors pass through."""
    import nibabel as nib

    with _quiet_nibabel():
        # mmap=False reads the whole data block now, so truncation shows here
        # rather than later in some unrelated function holding a memmap.
        image = nib.load(path, mmap=False)
        if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            raise CaseError(path, f"is a {type(image).__name__}, not a NIfTI image")
        _check_declared_size(path, image.header)
        return np.asanyarray(image.dataobj), np.asarray(image.affine, dtype=np.float64)


def read_nifti_image(path: str | PathLike[str]) -> tuple[np.ndarray, Geometry]:
    """A 3D image file -> (float32 volume on the source grid, its Geometry).

    Args:
        path: a .nii or .nii.gz file holding one 3D volume.
    """
    data, affine = load_nifti(path)
    data = squeeze_to_3d(data, path)
    return clean_image(data, path), Geometry(affine, data.shape)


def read_nifti_label(
    path: str | PathLike[str], default: LabelConvention = LabelConvention.BRATS2020
) -> tuple[np.ndarray, LabelConvention, Geometry]:
    """A label file -> (internal uint8 labels on the source grid, the convention found, Geometry).

    Args:
        path: a .nii or .nii.gz label file (BraTS 2020 or 2023 numbering).
        default: the convention assumed when the values fit both.
    """
    data, affine = load_nifti(path)
    data = squeeze_to_3d(data, path, what="label")
    labels, convention = read_label_values(data, path, default)
    return labels, convention, Geometry(affine, data.shape)


def nifti_bytes(data: np.ndarray, affine: np.ndarray, suffix: str) -> bytes:
    """The complete content of a NIfTI-1 file holding ``data`` on the grid ``affine``.

    The sform carries the affine exactly (up to NIfTI's float32). The qform is
    set too, with the same code, when the affine is a rotation times voxel
    sizes, so tools that prefer the qform (ITK) place the volume identically;
    a sheared affine has no quaternion form, so its qform code is 0 and every
    reader falls back to the sform instead of a silently different matrix.

    Args:
        data: the voxel array in the file's own axis order, saved in its dtype.
        affine: the 4x4 voxel-to-RAS+ matrix.
        suffix: ".nii" or ".nii.gz".
    """
    import nibabel as nib

    affine = np.asarray(affine, dtype=np.float64)
    image = nib.Nifti1Image(np.asarray(data), affine)
    header = image.header
    header.set_data_dtype(data.dtype)
    header.set_xyzt_units("mm", "sec")
    image.set_sform(affine, code=_XFORM_SCANNER)
    if _has_quaternion_form(affine):
        image.set_qform(affine, code=_XFORM_SCANNER)
    else:
        image.set_qform(affine, code=0)
    # Integers and float32 are stored as they are: no slope/intercept scaling.
    header["scl_slope"] = 1.0
    header["scl_inter"] = 0.0
    content = image.to_bytes()
    if suffix == ".nii.gz":
        # mtime=0: the same mask gives the same bytes, which keeps outputs diffable.
        return gzip.compress(content, compresslevel=_GZIP_LEVEL, mtime=0)
    if suffix == ".nii":
        return content
    raise ValueError(f"suffix must be '.nii' or '.nii.gz', got {suffix!r}")


def require_nifti_suffix(path: str | PathLike[str]) -> str:
    """The NIfTI suffix of ``path``, or a CaseError saying which names are allowed.

    Args:
        path: the target file of a write.
    """
    suffix = nifti_suffix(path)
    if suffix is None:
        raise CaseError(path, "the file name must end in .nii or .nii.gz")
    return suffix


def _has_quaternion_form(affine: np.ndarray, tolerance: float = 1e-6) -> bool:
    """Whether the 3x3 part is an orthogonal matrix times positive column scales."""
    linear = affine[:3, :3]
    zooms = np.sqrt((linear**2).sum(axis=0))
    if np.any(zooms <= 0):
        return False
    rotation = linear / zooms
    return bool(np.allclose(rotation.T @ rotation, np.eye(3), atol=tolerance))


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
