"""Corrections kept on disk as they are made, so no crash or closed window loses them.

One folder per case (keyed by the case's content, not its path, so a moved
folder or an in-memory synthetic case is still recognised) holds:

- ``prediction.npz``: the model output the corrections are measured against,
  and the model version that made it;
- ``corrections.npz``: the corrected axial slices and their indices.

Crash safety, point by point:

- every write is atomic (a temporary file, then a rename): a file on disk is
  always a whole old one or a whole new one;
- a file is only ever replaced, never deleted to be written again: a new
  prediction is written first, then the corrections carried over to it, so a
  crash between the two leaves the old corrections, which restore onto the
  new prediction as they were;
- the corrections are restored even when the prediction cannot be read
  (they are slices of their own);
- a damaged file is renamed aside (``corrections.damaged-<time>.npz``) and
  reported, never overwritten, so what can still be rescued from it stays.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import CaseError
from ..io.case import Case, content_key
from ..io.labels import NUM_CLASSES
from ..io.npz import NpzProblem, read_npz
from ..paths import sessions_dir
from .review import changed_slices
from .writer import SessionWriter

PREDICTION_FILE = "prediction.npz"
CORRECTIONS_FILE = "corrections.npz"


def case_key(case: Case) -> str:
    """A short, stable fingerprint of a case's grid and voxels (see ``io.case.content_key``)."""
    return content_key(case)


def read_corrections(path: str | PathLike[str], shape: tuple[int, int, int]) -> tuple[list[int], np.ndarray]:
    """The corrected slices a corrections file holds, checked against the case grid ``shape``.

    Returns:
        (their axial indices, the ``(n, Y, X)`` uint8 labels of those slices).

    Raises:
        FileNotFoundError: there is no such file.
        CaseError: naming the file, when it is not a valid corrections file for that grid.
    """
    path = Path(path)
    try:
        arrays = read_npz(path, max_bytes=int(np.prod(shape)) * 8)
    except NpzProblem as problem:
        raise CaseError(path, f"not a corrections file ({problem})") from None
    indices, slices = arrays.get("indices"), arrays.get("slices")
    problem = _corrections_problem(indices, slices, shape)
    if problem:
        raise CaseError(path, f"not a corrections file for this case ({problem})")
    return [int(z) for z in indices], slices.astype(np.uint8, copy=False)  # type: ignore[union-attr]


def _corrections_problem(indices: np.ndarray | None, slices: np.ndarray | None, shape: tuple[int, ...]) -> str:
    """What is wrong with a corrections file's arrays, or "" when nothing is."""
    if indices is None or slices is None:
        return "it lacks 'indices' or 'slices'"
    if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
        return "the indices are not a list of whole numbers"
    if slices.ndim != 3 or slices.dtype.kind not in "iub" or len(slices) != len(indices):
        return f"{len(indices)} indices for slices of shape {slices.shape} and type {slices.dtype}"
    if slices.shape[1:] != tuple(shape[1:]):
        return f"slices of {slices.shape[1]}x{slices.shape[2]} voxels on a grid of {shape[1]}x{shape[2]}"
    if indices.size and (indices.min() < 0 or indices.max() >= shape[0]):
        return f"slice indices {indices.min()}..{indices.max()} outside 0..{shape[0] - 1}"
    if len(set(indices.tolist())) != len(indices):
        return "a slice is listed twice"
    if slices.size and (slices.min() < 0 or slices.max() >= NUM_CLASSES):
        return f"label values {slices.min()}..{slices.max()} outside 0..{NUM_CLASSES - 1}"
    return ""


@dataclass
class RestoredSession:
    """What a case's session folder gave back when the case was opened again.

    Args:
        labels: the labels as the user left them (None when nothing could be restored).
        prediction: the model output they were measured against (None if missing or unreadable).
        model_id: the model version that made it.
        corrected: the corrected axial slices.
        problems: one line per damaged file set aside, saying where it went.
        undo_steps: the edits that can be undone (the session's history).
    """

    labels: np.ndarray | None
    prediction: np.ndarray | None
    model_id: str | None
    corrected: list[int]
    problems: list[str] = field(default_factory=list)
    undo_steps: int = 0


class CorrectionStore:
    """The on-disk corrections of one case.

    Args:
        case: the case being corrected.
        root: the sessions folder (default: the user's, see napari_tumorseg.paths).
        writer: who writes the files (default: written at once; see ``workflow.writer``).
    """

    def __init__(self, case: Case, root: Path | None = None, writer: SessionWriter | None = None) -> None:
        self.case_shape = case.shape
        self.folder = (root or sessions_dir()) / case_key(case)
        self.writer = writer or SessionWriter()
        self._prediction: np.ndarray | None = None

    @property
    def prediction(self) -> np.ndarray | None:
        return self._prediction

    def start(self, prediction: np.ndarray, model_id: str, labels: np.ndarray) -> list[int]:
        """A new model prediction, and the labels shown with it (the corrected slices carried over).

        The prediction is written first, then the corrections against it: a
        crash in between leaves the previous corrections, which restore onto
        the new prediction exactly as they were. Returns the corrected slices.
        """
        self._check_shape(prediction)
        self._check_shape(labels)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._prediction = prediction.astype(np.uint8, copy=True)
        self._write(PREDICTION_FILE, prediction=self._prediction, model_id=np.array(model_id))
        return self.save(labels)

    def save(self, labels: np.ndarray) -> list[int]:
        """Store the slices of ``labels`` that differ from the prediction (from empty labels, before
        any prediction); return their indices."""
        self._check_shape(labels)
        reference = self._prediction if self._prediction is not None else np.zeros_like(labels, dtype=np.uint8)
        corrected = changed_slices(labels, reference)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write(
            CORRECTIONS_FILE,
            indices=np.asarray(corrected, dtype=np.int32),
            slices=np.ascontiguousarray(labels[corrected], dtype=np.uint8),
        )
        return corrected

    def restore(self) -> RestoredSession | None:
        """The labels as the user left them; None when the folder holds nothing.

        A damaged file is renamed aside and reported in ``problems``; the
        corrections come back even when the prediction cannot be read.
        """
        problems: list[str] = []
        prediction, model_id = self._read_prediction(problems)
        corrections = self._read_corrections(problems)
        if prediction is None and corrections is None:
            return RestoredSession(None, None, None, [], problems) if problems else None
        labels = prediction.copy() if prediction is not None else np.zeros(self.case_shape, np.uint8)
        corrected: list[int] = []
        if corrections is not None:
            corrected, slices = corrections
            labels[corrected] = slices
        self._prediction = prediction
        return RestoredSession(labels, prediction, model_id, corrected, problems)

    def _read_prediction(self, problems: list[str]) -> tuple[np.ndarray | None, str | None]:
        path = self.folder / PREDICTION_FILE
        try:
            saved = read_npz(path, max_bytes=int(np.prod(self.case_shape)) * 8)
            prediction, model_id = saved["prediction"], str(saved["model_id"])
            self._check_shape(prediction)
            if prediction.dtype.kind not in "iub" or (prediction.size and prediction.max() >= NUM_CLASSES):
                raise ValueError("not a label volume")
        except FileNotFoundError:
            return None, None
        except (NpzProblem, KeyError, ValueError) as error:
            problems.append(self._set_aside(path, f"saved prediction unreadable ({error})"))
            return None, None
        return prediction.astype(np.uint8, copy=False), model_id

    def _read_corrections(self, problems: list[str]) -> tuple[list[int], np.ndarray] | None:
        path = self.folder / CORRECTIONS_FILE
        try:
            return read_corrections(path, self.case_shape)
        except FileNotFoundError:
            return None
        except CaseError as error:
            problems.append(self._set_aside(path, error.problem))
            return None

    def _set_aside(self, path: Path, problem: str) -> str:
        """Rename a damaged file out of the way (never deleted, never overwritten); say where it went."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for attempt in range(100):
            aside = path.with_name(f"{path.stem}.damaged-{stamp}{f'-{attempt}' if attempt else ''}{path.suffix}")
            if not aside.exists():
                break
        try:
            os.rename(path, aside)
        except OSError as error:
            return f"{path}: {problem}; left in place ({error.strerror or error})"
        return f"{path}: {problem}; kept as {aside.name}"

    def _check_shape(self, volume: np.ndarray) -> None:
        if volume.shape != self.case_shape:
            raise ValueError(f"volume shape {volume.shape} does not match the case grid {self.case_shape}")

    def _write(self, name: str, **arrays: np.ndarray) -> None:
        # Each array is a copy the store never changes (the prediction is replaced, never edited).
        self.writer.write_npz(self.folder / name, arrays, overwrite=True)
