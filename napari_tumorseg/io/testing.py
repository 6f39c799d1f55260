"""Building blocks for tests of anything that reads cases: grids in many orientations, files on disk.

The files are written with nibabel and SimpleITK directly, not with
``write_case``/``write_mask``, so a test of the writer never checks the
writer against itself.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

SMALL_SHAPE: tuple[int, int, int] = (20, 24, 16)


def _rotation(x_degrees: float, y_degrees: float, z_degrees: float) -> np.ndarray:
    """Rotation about x, then y, then z (right-handed, degrees)."""
    x, y, z = np.deg2rad([x_degrees, y_degrees, z_degrees])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _affine(linear: np.ndarray, origin: tuple[float, float, float]) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = origin
    return affine


# Voxel-to-RAS+ affines of every orientation a source file may have.
ORIENTATIONS: dict[str, np.ndarray] = {
    "RAS": _affine(np.diag([1.0, 1.0, 1.0]), (-10.0, -12.0, -8.0)),
    "LPS": _affine(np.diag([-1.0, -1.0, 1.0]), (10.0, 12.0, -8.0)),
    # Left-right and inferior-superior flipped (LAI), anisotropic.
    "flipped": _affine(np.diag([-0.9, 1.1, -2.5]), (9.0, -13.0, 20.0)),
    # Sagittal acquisition: voxel axes run A->P, S->I, R->L (axes permuted and flipped).
    "permuted": _affine(
        np.array([[0.0, 0.0, -1.2], [-1.0, 0.0, 0.0], [0.0, -1.5, 0.0]]), (9.5, 11.0, 17.0)
    ),
    "oblique": _affine(_rotation(17.0, -9.0, 24.0) @ np.diag([1.0, 1.3, 2.2]), (-7.25, 3.5, -11.0)),
    "anisotropic": _affine(np.diag([-0.5, -0.75, 4.0]), (5.0, 9.0, -30.0)),
    # A sheared grid: no quaternion can represent it (the writer sets qform_code 0).
    "sheared": _affine(np.array([[1.0, 0.25, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 2.0]]), (1.0, 2.0, 3.0)),
}


def label_volume(shape: tuple[int, int, int] = SMALL_SHAPE, enhancing: int = 4, seed: int = 0) -> np.ndarray:
    """A label volume with no symmetry (a flipped or permuted copy never matches it).

    Args:
        shape: the source grid shape.
        enhancing: the value for enhancing tumour (4 for BraTS 2020, 3 for 2023).
        seed: seed of the random part.
    """
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.uint8)
    i, j, k = (np.arange(size) for size in shape)
    # A block off-centre on every axis, with a random interior.
    block = (slice(2, shape[0] // 2 + 3), slice(1, shape[1] // 3 + 4), slice(shape[2] // 2, shape[2] - 1))
    labels[block] = rng.choice(np.array([1, 2, enhancing], dtype=np.uint8), size=labels[block].shape)
    labels[i[-1], j[0], k[0]] = enhancing  # a lone corner voxel tells any flip apart
    return labels


def image_volume(shape: tuple[int, int, int] = SMALL_SHAPE, seed: int = 0) -> np.ndarray:
    """A float32 image with a distinct value at each voxel.

    Args:
        shape: the source grid shape.
        seed: offset of the values, so modalities differ.
    """
    return (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + 1000.0 * seed) / 7.0


def save_nifti(path: str | PathLike[str], data: np.ndarray, affine: np.ndarray) -> Path:
    """Save ``data`` as a NIfTI-1 file with nibabel (sform and qform set as nibabel does).

    Args:
        path: the target (.nii or .nii.gz).
        data: the voxel array, saved in its own dtype.
        affine: the 4x4 voxel-to-RAS+ matrix.
    """
    import nibabel as nib

    image = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64))
    image.header.set_data_dtype(np.asarray(data).dtype)
    path = Path(path)
    nib.save(image, path)
    return path


def write_dicom_series(
    folder: str | PathLike[str],
    data: np.ndarray,
    affine: np.ndarray,
    *,
    description: str,
    series_number: int = 1,
) -> Path:
    """Write a volume as a DICOM MR series, one file per slice, with SimpleITK.

    Args:
        folder: the folder for the files (created).
        data: int16-compatible voxels indexed [i, j, k] as in NIfTI.
        affine: its voxel-to-RAS+ matrix (converted here to DICOM's LPS).
        description: the SeriesDescription; '' writes none.
        series_number: makes the SeriesInstanceUID unique within a study.
    """
    import SimpleITK as sitk

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    direction = lps[:3, :3] / spacing
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data).transpose(2, 1, 0)).astype(np.int16))
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    image.SetDirection(direction.ravel().tolist())
    row, column = direction[:, 0], direction[:, 1]
    tags = {
        "0008|0060": "MR",
        "0010|0020": "TEST",
        "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
        "0020|000e": f"1.2.826.0.1.3680043.2.1125.1.{series_number}",
        "0020|0052": "1.2.826.0.1.3680043.2.1125.2",  # Frame of Reference: the series of one study share it
        "0020|0011": str(series_number),
        "0020|0037": "\\".join(f"{value:.8f}" for value in (*row, *column)),
        "0018|0050": f"{spacing[2]:.6f}",
    }
    if description:
        tags["0008|103e"] = description
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for index in range(image.GetDepth()):
        slice_image = image[:, :, index]
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, index))
        slice_image.SetMetaData("0020|0032", "\\".join(f"{value:.6f}" for value in position))
        slice_image.SetMetaData("0020|0013", str(index + 1))
        writer.SetFileName(str(folder / f"slice{index:03d}.dcm"))
        writer.Execute(slice_image)
    return folder


def world_coordinates(affine: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """World (RAS+ mm) coordinates of voxel indices, one row per voxel.

    Args:
        affine: a 4x4 voxel-to-world matrix.
        indices: (N, 3) voxel indices.
    """
    indices = np.asarray(indices, dtype=np.float64)
    return indices @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def sample_at_world(volume: np.ndarray, affine: np.ndarray, world: np.ndarray) -> np.ndarray:
    """The voxels of ``volume`` at world points that must fall on its voxel centres.

    Args:
        volume: a 3D array on the grid ``affine``.
        affine: its voxel-to-world matrix.
        world: (N, 3) points.

    Raises:
        AssertionError: a point is not on a voxel centre (the grids differ).
    """
    inverse = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    continuous = world @ inverse[:3, :3].T + inverse[:3, 3]
    indices = np.rint(continuous).astype(int)
    assert np.abs(continuous - indices).max() < 1e-3, "points are not on the voxel centres of this grid"
    return volume[tuple(indices.T)]
