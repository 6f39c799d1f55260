"""Corrections kept on disk as they are made, so a crash or a closed window loses nothing.

One folder per case (keyed by the case's content, not its path, so a moved
folder or an in-memory synthetic case is still recognised) holds:

- ``prediction.npz``: the model output the corrections are measured against,
  and the model version that made it;
- ``corrections.npz``: the corrected axial slices and their indices.

Every write is atomic; a torn or foreign file is reported and ignored, never
half-loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_bytes
from ..io.case import Case
from ..paths import sessions_dir
from .review import changed_slices


def case_key(case: Case) -> str:
    """A short, stable fingerprint of a case's grid and voxels."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(json.dumps(case.geometry.to_dict(), sort_keys=True).encode())
    for key in case.modalities:
        volume = np.ascontiguousarray(case.images[key])
        digest.update(key.encode())
        # Every 7th voxel is plenty to tell cases apart and keeps this ~10 ms.
        digest.update(volume.reshape(-1)[::7].tobytes())
    return digest.hexdigest()


@dataclass
class RestoredSession:
    labels: np.ndarray
    prediction: np.ndarray
    model_id: str
    corrected: list[int]


class CorrectionStore:
    """The on-disk corrections of one case.

    Args:
        case: the case being corrected.
        root: the sessions folder (default: the user's, see napari_tumorseg.paths).
    """

    def __init__(self, case: Case, root: Path | None = None) -> None:
        self.case_shape = case.shape
        self.folder = (root or sessions_dir()) / case_key(case)
        self._prediction: np.ndarray | None = None

    @property
    def prediction(self) -> np.ndarray | None:
        return self._prediction

    def start(self, prediction: np.ndarray, model_id: str) -> None:
        """A new model prediction: the reference for what counts as a correction from now on."""
        self._check_shape(prediction)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._prediction = prediction.astype(np.uint8, copy=True)
        self._write("prediction.npz", prediction=self._prediction, model_id=np.array(model_id))
        (self.folder / "corrections.npz").unlink(missing_ok=True)

    def save(self, labels: np.ndarray) -> list[int]:
        """Store the slices of ``labels`` that differ from the prediction; return their indices."""
        if self._prediction is None:
            raise RuntimeError("start() must be called with the model's prediction first")
        self._check_shape(labels)
        corrected = changed_slices(labels, self._prediction)
        self._write(
            "corrections.npz",
            indices=np.asarray(corrected, dtype=np.int32),
            slices=np.ascontiguousarray(labels[corrected], dtype=np.uint8),
        )
        return corrected

    def restore(self) -> RestoredSession | None:
        """The labels as the user left them, or None when there is nothing (valid) to restore."""
        try:
            with np.load(self.folder / "prediction.npz") as saved:
                prediction = saved["prediction"]
                model_id = str(saved["model_id"])
            self._check_shape(prediction)
        except FileNotFoundError:
            return None
        except Exception as error:  # a torn or foreign file must not stop the case from opening
            warnings.warn(f"{self.folder}: saved session ignored ({error})", stacklevel=2)
            return None
        labels = prediction.copy()
        corrected: list[int] = []
        try:
            with np.load(self.folder / "corrections.npz") as saved:
                indices, slices = saved["indices"], saved["slices"]
            if slices.shape[1:] != prediction.shape[1:] or len(indices) != len(slices):
                raise ValueError("corrections do not fit the case grid")
            labels[indices] = slices
            corrected = indices.tolist()
        except FileNotFoundError:
            pass
        except Exception as error:
            warnings.warn(f"{self.folder}: saved corrections ignored ({error})", stacklevel=2)
        self._prediction = prediction
        return RestoredSession(labels, prediction, model_id, corrected)

    def _check_shape(self, volume: np.ndarray) -> None:
        if volume.shape != self.case_shape:
            raise ValueError(f"volume shape {volume.shape} does not match the case grid {self.case_shape}")

    def _write(self, name: str, **arrays: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write_bytes(self.folder / name, buffer.getvalue(), overwrite=True)
