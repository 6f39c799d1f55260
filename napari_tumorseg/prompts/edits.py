"""A change of the labels as a sparse diff: which voxels, what they held, what they hold now.

Every correction tool (the brush, the click prompts, the slice fill, the
propagation) ends as one :class:`LabelEdit`. The same object is what the undo
history keeps on disk: a stroke of a few hundred voxels costs a few kB, not a
copy of the volume. An edit lists only voxels whose value changes, so
"applied" (the voxels hold ``new``) and "not applied" (they hold ``old``) are
never both true: that is how the history checks an undo or a redo still
fits the labels before it touches them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelEdit:
    """Voxels of a ``(Z, Y, X)`` label volume that change, by flat (C-order) index.

    Args:
        what: a few words for the user ("remove lesion at slice 40").
        shape: the volume's shape.
        indices: ``(n,)`` int64 flat indices, sorted, unique.
        old: ``(n,)`` uint8 values before the edit.
        new: ``(n,)`` uint8 values after it (each differs from ``old``).
    """

    what: str
    shape: tuple[int, int, int]
    indices: np.ndarray
    old: np.ndarray
    new: np.ndarray

    @property
    def voxels(self) -> int:
        return int(self.indices.size)

    @property
    def empty(self) -> bool:
        return self.indices.size == 0

    @property
    def slices(self) -> list[int]:
        """The axial slices the edit touches."""
        plane = self.shape[1] * self.shape[2]
        return np.unique(self.indices // plane).astype(int).tolist()

    def inverse(self) -> LabelEdit:
        return LabelEdit(f"undo {self.what}", self.shape, self.indices, self.new, self.old)

    def apply(self, labels: np.ndarray) -> None:
        """Write ``new`` into ``labels`` (in place; a C-contiguous array of ``shape``)."""
        _flat(labels, self.shape)[self.indices] = self.new

    def is_applied(self, labels: np.ndarray) -> bool:
        """Whether ``labels`` hold this edit's new values at all its voxels."""
        return bool(np.array_equal(_flat(labels, self.shape)[self.indices], self.new))

    def is_unapplied(self, labels: np.ndarray) -> bool:
        """Whether ``labels`` hold this edit's old values at all its voxels."""
        return bool(np.array_equal(_flat(labels, self.shape)[self.indices], self.old))


def _flat(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if labels.shape != tuple(shape):
        raise ValueError(f"labels of shape {labels.shape}; the edit is for {tuple(shape)}")
    flat = labels.reshape(-1)
    if not np.shares_memory(flat, labels):
        raise ValueError("labels must be a contiguous array to be edited in place")
    return flat


def edit_between(before: np.ndarray, after: np.ndarray, what: str, slices: list[int] | None = None) -> LabelEdit:
    """The edit that turns ``before`` into ``after`` (compared only on ``slices`` when given)."""
    if before.shape != after.shape:
        raise ValueError(f"volumes of shape {before.shape} and {after.shape}")
    shape = tuple(int(s) for s in before.shape)
    if slices is None:
        changed = np.flatnonzero(before.reshape(-1) != after.reshape(-1))
    else:
        plane = shape[1] * shape[2]
        parts = [np.flatnonzero(before[z].reshape(-1) != after[z].reshape(-1)) + z * plane for z in sorted(set(slices))]
        changed = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    changed = changed.astype(np.int64)
    return LabelEdit(
        what, shape, changed,
        before.reshape(-1)[changed].astype(np.uint8), after.reshape(-1)[changed].astype(np.uint8),
    )


def edit_in_box(labels: np.ndarray, box: tuple[slice, ...], new_box: np.ndarray, what: str) -> LabelEdit:
    """The edit that writes ``new_box`` over the ``box`` of ``labels`` (a sub-volume of slices)."""
    old_box = labels[box]
    local = np.flatnonzero(old_box.reshape(-1) != new_box.reshape(-1))
    coords = np.unravel_index(local, old_box.shape)
    starts = [s.start or 0 for s in box]
    indices = np.ravel_multi_index(tuple(c + o for c, o in zip(coords, starts)), labels.shape).astype(np.int64)
    order = np.argsort(indices, kind="stable")
    return LabelEdit(
        what, tuple(int(s) for s in labels.shape), indices[order],
        old_box.reshape(-1)[local][order].astype(np.uint8), new_box.reshape(-1)[local][order].astype(np.uint8),
    )


def no_edit(labels: np.ndarray, what: str) -> LabelEdit:
    empty = np.zeros(0, np.int64)
    return LabelEdit(what, tuple(int(s) for s in labels.shape), empty, empty.astype(np.uint8), empty.astype(np.uint8))
