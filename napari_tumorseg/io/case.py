"""The Case: the volumes of one patient, in one canonical orientation, with the geometry to go back.

Every array in a Case is in the *canonical* layout ``(z, y, x)`` whose axes
point to (S, P, L): axis 0 runs inferior -> superior (napari's slider steps
through axial slices), rows run anterior -> posterior and columns run the
patient's right -> left. Shown as an image, an axial slice is then in the
radiological convention (anterior up, patient's right on the viewer's left).

The canonical layout is only a permutation and flips of the source voxel
grid, never a resampling, so ``Geometry.from_canonical`` is the exact inverse
of ``Geometry.to_canonical``: a mask written back lands voxel for voxel on the
source grid, whatever its orientation (LPS, RAS, flipped, oblique).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .labels import LabelConvention

# Modality keys in the order the networks take them as channels.
MODALITIES: tuple[str, ...] = ("flair", "t1", "t1c", "t2")
DISPLAY_NAMES: dict[str, str] = {"flair": "FLAIR", "t1": "T1", "t1c": "T1c", "t2": "T2"}

CANONICAL_AXCODES: tuple[str, str, str] = ("S", "P", "L")


@dataclass(frozen=True, eq=False)
class Geometry:
    """The voxel grid of the source files, and the map to and from the canonical layout.

    Args:
        source_affine: the 4x4 voxel-to-world (RAS+, mm) matrix of the file on disk.
        source_shape: the 3D shape of the volume on disk.
    """

    source_affine: np.ndarray
    source_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        affine = np.asarray(self.source_affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {affine.shape}")
        affine.setflags(write=False)
        object.__setattr__(self, "source_affine", affine)
        object.__setattr__(self, "source_shape", tuple(int(s) for s in self.source_shape))

    @cached_property
    def _to_canonical_ornt(self) -> np.ndarray:
        from nibabel import orientations as nio

        source = nio.io_orientation(self.source_affine)
        return nio.ornt_transform(source, nio.axcodes2ornt(CANONICAL_AXCODES))

    @cached_property
    def _from_canonical_ornt(self) -> np.ndarray:
        from nibabel import orientations as nio

        source = nio.io_orientation(self.source_affine)
        return nio.ornt_transform(nio.axcodes2ornt(CANONICAL_AXCODES), source)

    @property
    def source_axcodes(self) -> str:
        """Orientation code of the source file, e.g. 'LPS' or 'RAS' (nibabel's convention)."""
        from nibabel import orientations as nio

        return "".join(nio.aff2axcodes(self.source_affine))

    @cached_property
    def canonical_shape(self) -> tuple[int, int, int]:
        order = self._to_canonical_ornt[:, 0].astype(int)
        out = [0, 0, 0]
        for src_axis, dst_axis in enumerate(order):
            out[dst_axis] = self.source_shape[src_axis]
        return tuple(out)

    @cached_property
    def canonical_affine(self) -> np.ndarray:
        """Voxel (canonical index) -> world matrix, so world coordinates are unchanged."""
        from nibabel import orientations as nio

        # inv_ornt_aff maps indices of the transformed array back to source indices.
        affine = self.source_affine @ nio.inv_ornt_aff(self._to_canonical_ornt, self.source_shape)
        affine.setflags(write=False)
        return affine

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the canonical axes (z, y, x)."""
        return tuple(float(v) for v in np.sqrt((self.canonical_affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def source_spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the source file's axes."""
        return tuple(float(v) for v in np.sqrt((self.source_affine[:3, :3] ** 2).sum(axis=0)))

    def to_canonical(self, volume: np.ndarray) -> np.ndarray:
        """A volume on the source grid -> the canonical layout (a view when possible)."""
        from nibabel import orientations as nio

        volume = np.asarray(volume)
        if volume.shape[:3] != self.source_shape:
            raise ValueError(f"volume shape {volume.shape} does not match source grid {self.source_shape}")
        return nio.apply_orientation(volume, self._to_canonical_ornt)

    def from_canonical(self, volume: np.ndarray) -> np.ndarray:
        """The exact inverse of :meth:`to_canonical`."""
        from nibabel import orientations as nio

        volume = np.asarray(volume)
        if volume.shape[:3] != self.canonical_shape:
            raise ValueError(
                f"volume shape {volume.shape} does not match canonical grid {self.canonical_shape}"
            )
        return nio.apply_orientation(volume, self._from_canonical_ornt)

    def same_grid(self, other: Geometry, atol: float = 1e-3) -> bool:
        """Whether two files share a voxel grid (shape, and affine within ``atol`` mm)."""
        return self.source_shape == other.source_shape and bool(
            np.allclose(self.source_affine, other.source_affine, atol=atol)
        )

    def to_dict(self) -> dict:
        """Plain-Python form, for napari layer metadata and JSON."""
        return {
            "source_affine": np.asarray(self.source_affine).tolist(),
            "source_shape": list(self.source_shape),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Geometry:
        return cls(np.asarray(data["source_affine"], dtype=np.float64), tuple(data["source_shape"]))


@dataclass(eq=False)
class Case:
    """One patient: the modalities found, a reference mask if there is one, and the geometry.

    Args:
        name: a short identifier (the BraTS case id or the file stem).
        images: modality key (see MODALITIES) -> canonical float32 volume. Only the
            modalities that were found: a missing one is absent, never zero-filled.
        geometry: the shared voxel grid of every file of the case.
        label: canonical uint8 mask in internal labels (see labels.py), or None.
        label_convention: the convention masks of this case are written in
            (the reference's, when there is one).
        sources: modality key or "seg" -> the file (or DICOM folder) it came from.
        dicom_series: for a case read from DICOM, modality key -> the files of its
            series in the order of the source grid's third axis (a DICOM SEG
            export references them); empty otherwise.
    """

    name: str
    images: dict[str, np.ndarray]
    geometry: Geometry
    label: np.ndarray | None = None
    label_convention: LabelConvention = LabelConvention.BRATS2020
    sources: dict[str, Path] = field(default_factory=dict)
    dicom_series: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.images) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modality keys {sorted(unknown)}; expected some of {MODALITIES}")
        if not self.images:
            raise ValueError("a case needs at least one modality")
        shape = self.geometry.canonical_shape
        for key, volume in self.images.items():
            if volume.shape != shape:
                raise ValueError(f"{key} has shape {volume.shape}, the case grid is {shape}")
        if self.label is not None and self.label.shape != shape:
            raise ValueError(f"label has shape {self.label.shape}, the case grid is {shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.canonical_shape

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities present, in channel order."""
        return tuple(m for m in MODALITIES if m in self.images)

    @property
    def missing_modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m not in self.images)

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """All four channels as one (4, z, y, x) float32 array, and a (4,) availability vector.

        Missing modalities are zero channels with availability 0: the networks
        are trained with that signal, so zero never pretends to be an image.
        """
        out = np.zeros((len(MODALITIES), *self.shape), dtype=np.float32)
        available = np.zeros(len(MODALITIES), dtype=np.float32)
        for channel, key in enumerate(MODALITIES):
            if key in self.images:
                out[channel] = self.images[key]
                available[channel] = 1.0
        return out, available


def content_key(case: Case) -> str:
    """A short, stable fingerprint of a case's grid and voxels (not its path or name).

    A moved folder, or an in-memory synthetic case made again, gets the same
    key: the review session and the memory of past corrections find it again.
    """
    digest = hashlib.blake2b(digest_size=12)
    digest.update(json.dumps(case.geometry.to_dict(), sort_keys=True).encode())
    for key in case.modalities:
        volume = np.ascontiguousarray(case.images[key])
        digest.update(key.encode())
        # Every 7th voxel is plenty to tell cases apart and keeps this ~10 ms.
        digest.update(volume.reshape(-1)[::7].tobytes())
    return digest.hexdigest()
