"""An imported model (ONNX, TorchScript, MONAI bundle) run on a case like the built-in Segmenter.

Same contract: :meth:`ImportedSegmenter.run` is a long job (a Progress after
every batch or window, cancel between them) returning a
:class:`SegmentationResult` on the case's canonical grid; ``segment_slice``
and ``predict_slices`` serve "Segment this slice" and the propagate prompt.

The case is prepared as its description says (``models.sidecar``): the
brain's box (padded to the model's size multiple), the sequences in the
model's order, z-scored or raw, turned to the model's axes; 2D and 2.5D
models run slice by slice along their first axis, 3D models in sliding
windows (or on the whole box), averaged where they overlap. The output
becomes the internal class probabilities (0 BG, 1 NCR, 2 ED, 3 ET) and
labels, back on the case's grid. No speck filter: the model's output as it is.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from ..io.case import DISPLAY_NAMES, MODALITIES, Case
from ..io.labels import NUM_CLASSES
from ..jobs import CancelFlag, Clock, Progress, drive
from .outputs import class_probabilities, labels_from
from .preprocess import PreprocessPlan, case_channels, normalized_slices, plan_preprocessing
from .devices import choose_device
from .results import PHASE_SEGMENTING, SegmentationResult, SliceSegmentation

if TYPE_CHECKING:
    from ..models.external import ImportedModel

BATCH = 4
OVERLAP = 0.25


def _axis_map(axes: str) -> list[tuple[int, bool]]:
    """For each network axis: the canonical axis (0 z=S, 1 y=P, 2 x=L) it runs along, and whether reversed."""
    canonical = ("SI", "PA", "LR")  # the first letter is the canonical direction
    mapping = []
    for code in axes.upper():
        axis = next(i for i, pair in enumerate(canonical) if code in pair)
        mapping.append((axis, code != canonical[axis][0]))
    return mapping


def to_network_axes(volume: np.ndarray, axes: str) -> np.ndarray:
    """``(..., z, y, x)`` canonical -> ``(..., d, h, w)`` on the network's axes (a view)."""
    lead = volume.ndim - 3
    mapping = _axis_map(axes)
    out = np.transpose(volume, (*range(lead), *(lead + a for a, _ in mapping)))
    for n, (_, flipped) in enumerate(mapping):
        if flipped:
            out = np.flip(out, axis=lead + n)
    return out


def from_network_axes(volume: np.ndarray, axes: str) -> np.ndarray:
    """The inverse of :func:`to_network_axes`."""
    lead = volume.ndim - 3
    mapping = _axis_map(axes)
    for n, (_, flipped) in enumerate(mapping):
        if flipped:
            volume = np.flip(volume, axis=lead + n)
    order = [a for a, _ in mapping]
    return np.transpose(volume, (*range(lead), *(lead + order.index(c) for c in range(3))))


class ImportedSegmenter:
    """Runs an :class:`~napari_tumorseg.models.external.ImportedModel` over a case.

    Args:
        model: the imported model.
        device: "auto", "cpu", "cuda"... (torch models; ONNX runs on the CPU).
        probabilities: "uint8" (default) or "float16" storage, as the Segmenter.
    """

    def __init__(self, model: ImportedModel, device: str | None = "auto", probabilities: str = "uint8") -> None:
        self.imported = model
        self.spec = model.spec
        self.probabilities = probabilities
        self.batch_size = BATCH
        if model.module is not None:
            self.device = choose_device(device)
            model.module.to(self.device)
        else:
            self.device = "cpu"
        self._cache: tuple[weakref.ref, Any, Any] | None = None  # (case, prepared volume, last probabilities)

    @property
    def model(self) -> Any:
        """The torch module (None for ONNX): what adaptation would need; imported models are not adapted."""
        return self.imported.module

    # --- preparation --------------------------------------------------------------------

    def _prepared(self, case: Case) -> tuple[PreprocessPlan, np.ndarray]:
        """The plan, and the ``(C, d, h, w)`` input volume on the network's axes (kept for the last case)."""
        if self._cache is not None and self._cache[0]() is case:
            return self._cache[1]
        self._check_sequences(case)
        channels = case_channels(case)
        plan = plan_preprocessing(channels, multiple=self.spec.size_multiple)
        if self.spec.normalisation == "zscore":
            volume = normalized_slices(channels, plan)
        else:
            volume = np.stack([plan.crop.crop(c).astype(np.float32) if c is not None
                               else np.zeros(plan.crop.padded_shape, np.float32) for c in channels])
        volume = volume[[MODALITIES.index(s) for s in self.spec.sequences]]
        prepared = (plan, np.ascontiguousarray(to_network_axes(volume, self.spec.axes)))
        self._cache = (weakref.ref(case), prepared, None)
        return prepared

    def _check_sequences(self, case: Case) -> None:
        missing = [s for s in self.spec.sequences if s not in case.images]
        if missing and self.spec.missing == "refuse":
            names = ", ".join(DISPLAY_NAMES[s] for s in missing)
            raise ModelError(f"{self.imported.path}: the model needs {names}; case {case.name} has none "
                             "(its description may allow \"missing\": \"zeros\")")

    def spacing_warning(self, case: Case) -> str:
        """One line when the case's voxels differ from the model's by more than 10 %, else ""."""
        if self.spec.spacing is None:
            return ""
        ours = [case.geometry.spacing[a] for a, _ in _axis_map(self.spec.axes)]
        if all(abs(o - m) <= 0.1 * m for o, m in zip(ours, self.spec.spacing)):
            return ""
        show = lambda values: " x ".join(f"{v:g}" for v in values)  # noqa: E731
        return (f"case {case.name} has {show(ours)} mm voxels, {self.spec.name} expects {show(self.spec.spacing)} mm: "
                "expect a poorer segmentation (resample the case first)")

    # --- the network --------------------------------------------------------------------

    def _raw(self, batch: np.ndarray) -> np.ndarray:
        out = self.imported.forward(batch, None if self.imported.module is None else self.device)
        if out.ndim != batch.ndim or out.shape[2:] != batch.shape[2:] or out.shape[1] != self.spec.out_channels:
            raise ModelError(f"{self.imported.path}: the model returned {tuple(out.shape)} for an input of "
                             f"{tuple(batch.shape)}; its description says {self.spec.out_channels} output channels")
        return out

    def _slice_input(self, volume: np.ndarray, depth_indices: Sequence[int], available: np.ndarray) -> np.ndarray:
        """``(B, C_in, h, w)``: per slice its neighbours' sequences (zeros beyond), then availability planes."""
        k = self.spec.context if self.spec.input == "2.5d" else 0
        channels, depth, height, width = volume.shape
        parts = []
        for offset in range(-k, k + 1):
            source = np.asarray(depth_indices) + offset
            block = np.zeros((len(source), channels, height, width), np.float32)
            inside = (source >= 0) & (source < depth)
            block[inside] = volume[:, source[inside]].transpose(1, 0, 2, 3)
            parts.append(block)
        if self.spec.availability:
            parts.append(np.broadcast_to(available[None, :, None, None],
                                         (len(depth_indices), channels, height, width)).astype(np.float32))
        return np.concatenate(parts, axis=1)

    # --- the work -----------------------------------------------------------------------

    def run(self, case: Case, cancel: CancelFlag = None) -> Generator[Progress, None, SegmentationResult]:
        """Segment ``case``; yields a Progress after every batch (2D) or window (3D)."""
        started = time.perf_counter()
        plan, volume = self._prepared(case)
        if self.spec.input == "3d":
            raw = yield from self._windows(volume, cancel)
        else:
            raw = yield from self._slices(volume, case, cancel)
        probabilities, labels = self._to_case(plan, raw)
        cached = self._cache
        if cached is not None and cached[0]() is case:
            self._cache = (cached[0], cached[1], probabilities)
        stored = np.rint(probabilities * 255).astype(np.uint8) if self.probabilities == "uint8" \
            else probabilities.astype(np.float16)
        return SegmentationResult(labels, stored, time.perf_counter() - started, str(self.device), self.batch_size,
                                  volume.shape[1])

    def _slices(self, volume: np.ndarray, case: Case, cancel: CancelFlag) -> Generator[Progress, None, np.ndarray]:
        available = np.array([s in case.images for s in self.spec.sequences], np.float32)
        depth = volume.shape[1]
        raw = np.zeros((self.spec.out_channels, *volume.shape[1:]), np.float32)
        clock = Clock(depth, PHASE_SEGMENTING, cancel)
        yield clock.start()
        for start in range(0, depth, self.batch_size):
            clock.check()
            indices = list(range(start, min(start + self.batch_size, depth)))
            raw[:, indices] = self._raw(self._slice_input(volume, indices, available)).transpose(1, 0, 2, 3)
            yield clock.tick(units=len(indices))
        return raw

    def _windows(self, volume: np.ndarray, cancel: CancelFlag) -> Generator[Progress, None, np.ndarray]:
        multiple = self.spec.size_multiple
        roi = self.spec.roi or tuple(-(-n // multiple) * multiple for n in volume.shape[1:])
        padded = [max(n, r) for n, r in zip(volume.shape[1:], roi)]
        source = np.zeros((volume.shape[0], *padded), np.float32)
        source[:, : volume.shape[1], : volume.shape[2], : volume.shape[3]] = volume
        starts = [_starts(n, r) for n, r in zip(padded, roi)]
        windows = [(a, b, c) for a in starts[0] for b in starts[1] for c in starts[2]]
        total = np.zeros((self.spec.out_channels, *padded), np.float32)
        counts = np.zeros(padded, np.float32)
        clock = Clock(len(windows), PHASE_SEGMENTING, cancel)
        yield clock.start()
        for a, b, c in windows:
            clock.check()
            box = (slice(a, a + roi[0]), slice(b, b + roi[1]), slice(c, c + roi[2]))
            total[(slice(None), *box)] += self._raw(source[(slice(None), *box)][None])[0]
            counts[box] += 1
            yield clock.tick()
        raw = total / np.maximum(counts, 1)
        return raw[:, : volume.shape[1], : volume.shape[2], : volume.shape[3]]

    def _to_case(self, plan: PreprocessPlan, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw output on the network's axes -> (class probabilities (4, Z, Y, X), labels (Z, Y, X)) on the case."""
        probabilities = class_probabilities(raw[None], self.spec)[0]
        labels = labels_from(raw[None], probabilities[None], self.spec)[0]
        probabilities = np.ascontiguousarray(from_network_axes(probabilities, self.spec.axes))
        labels = np.ascontiguousarray(from_network_axes(labels, self.spec.axes))
        background = np.array([1.0, 0.0, 0.0, 0.0], np.float32)
        return plan.crop.uncrop(probabilities, fill=background), plan.crop.uncrop(labels)

    def segment(self, case: Case) -> SegmentationResult:
        return drive(self.run(case))

    def predict_slices(self, case: Case, slices: Sequence[int]) -> np.ndarray:
        """``(n, 4, Y, X)`` class probabilities of some axial slices (3D models: of the whole volume, kept)."""
        slices = [int(z) for z in slices]
        if self.spec.input == "3d":
            cached = self._cache
            if cached is None or cached[0]() is not case or cached[2] is None:
                self.segment(case)
            return np.ascontiguousarray(self._cache[2][:, slices].transpose(1, 0, 2, 3))  # type: ignore[index]
        plan, volume = self._prepared(case)
        out = np.zeros((len(slices), NUM_CLASSES, *case.shape[1:]), np.float32)
        out[:, 0] = 1.0
        crop, flipped = plan.crop, _axis_map(self.spec.axes)[0][1]
        local = [z - crop.start[0] for z in slices]
        wanted = [n for n, z in enumerate(local) if 0 <= z < crop.shape[0]]
        if not wanted:
            return out
        depth = [crop.shape[0] - 1 - local[n] if flipped else local[n] for n in wanted]
        available = np.array([s in case.images for s in self.spec.sequences], np.float32)
        raw = self._raw(self._slice_input(volume, depth, available))  # (n, K, h, w)
        probabilities = class_probabilities(raw, self.spec)  # (n, 4, h, w)
        in_plane = _in_plane(probabilities, self.spec.axes)  # (n, 4, H, W) canonical in-plane
        background = np.array([1.0, 0.0, 0.0, 0.0], np.float32)
        uncropped = crop.uncrop_slices(in_plane.transpose(1, 0, 2, 3), fill=background).transpose(1, 0, 2, 3)
        out[wanted] = uncropped
        return out

    def segment_slice(self, case: Case, z: int) -> SliceSegmentation:
        probabilities = self.predict_slices(case, [z])[0]
        return SliceSegmentation(z, np.argmax(probabilities, axis=0).astype(np.uint8), probabilities)


def _in_plane(planes: np.ndarray, axes: str) -> np.ndarray:
    """``(n, C, h, w)`` slices on the network's in-plane axes -> ``(n, C, y, x)`` canonical in-plane."""
    mapping = _axis_map(axes)[1:]  # the in-plane axes (canonical 1 = y, 2 = x)
    for n, (_, flipped) in enumerate(mapping):
        if flipped:
            planes = np.flip(planes, axis=2 + n)
    if mapping[0][0] == 2:  # height runs along x: transpose back
        planes = planes.transpose(0, 1, 3, 2)
    return np.ascontiguousarray(planes)


def _starts(size: int, window: int) -> list[int]:
    """Window starts covering ``size`` with about OVERLAP overlap; the last one flush with the end."""
    if size <= window:
        return [0]
    step = max(1, int(window * (1 - OVERLAP)))
    starts = list(range(0, size - window, step))
    return starts + [size - window]
