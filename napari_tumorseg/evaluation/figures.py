"""A figure of representative axial slices of one case with every model's prediction on top.

One column per slice, spread evenly over the brain's axial extent (so slices
without tumour show whatever the model marks in normal anatomy: vessels and
dura on T1c, the ventricles' rims on FLAIR), plus the slice with the most
tumour (the reference's, else the predictions'). Per model two rows: T1c and
FLAIR (T1 and T2 stand in for missing ones), the predicted classes in the
README's colours, the reference's whole-tumour outline in cyan where there is
one. Matplotlib without pyplot (no GUI backend, no global state); the PNG is
written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..io.case import Case
from ..io.labels import CLASS_COLORS, REGIONS

ROW_MODALITIES = (("t1c", "t1"), ("flair", "t2"))  # preferred, then stand-in
OVERLAY_ALPHA = 0.45
REFERENCE_COLOUR = "cyan"


def representative_slices(case: Case, predictions: Mapping[str, np.ndarray], count: int = 8) -> list[int]:
    """``count`` axial indices spread over the brain, one of them the slice with the most tumour.

    Args:
        case: the case (its images give the brain's extent, its label the tumour if present).
        predictions: model name -> predicted internal labels (the tumour when there is no reference).
        count: how many slices (at least 1).
    """
    count = max(int(count), 1)
    brain = np.zeros(case.shape[0], dtype=bool)
    for volume in case.images.values():
        brain |= np.any(volume != 0, axis=(1, 2))
    inside = np.flatnonzero(brain) if brain.any() else np.arange(case.shape[0])
    low, high = int(inside[0]), int(inside[-1])
    margin = 0.1 * (high - low)  # the brain's first and last slices are mostly skull base and vertex
    chosen = np.rint(np.linspace(low + margin, high - margin, count)).astype(int)
    tumour = _tumour(case, predictions)
    if tumour is not None:
        biggest = int(np.argmax(tumour.sum(axis=(1, 2))))
        chosen[int(np.argmin(np.abs(chosen - biggest)))] = biggest
    return sorted(set(chosen.tolist()))


def _tumour(case: Case, predictions: Mapping[str, np.ndarray]) -> np.ndarray | None:
    masks = [case.label] if case.label is not None else list(predictions.values())
    union = None
    for labels in masks:
        mask = np.isin(labels, REGIONS["WT"])
        union = mask if union is None else union | mask
    return union if union is not None and union.any() else None


def _brain_box(case: Case, margin: int = 4) -> tuple[slice, slice]:
    """The in-plane box (y, x) of every modality's non-zero voxels over all slices, plus a margin."""
    inside = np.zeros(case.shape[1:], dtype=bool)
    for volume in case.images.values():
        inside |= np.any(volume != 0, axis=0)
    if not inside.any():
        return slice(None), slice(None)
    box = []
    for axis, size in ((1, case.shape[1]), (0, case.shape[2])):
        hits = np.flatnonzero(inside.any(axis=axis))
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, size)))
    return box[0], box[1]


def _window(volume: np.ndarray) -> tuple[float, float]:
    """Display range: 1st to 99.5th percentile of the non-zero voxels (a sample of them)."""
    values = volume[volume != 0][::7]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [1.0, 99.5])
    return float(low), float(max(high, low + 1e-6))


def _overlay(labels: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*labels.shape, 4), dtype=np.float32)
    for label, colour in CLASS_COLORS.items():
        rgba[labels == label] = (*colour[:3], OVERLAY_ALPHA)
    return rgba


def _rows(case: Case, predictions: Mapping[str, np.ndarray]) -> list[tuple[str, str, np.ndarray | None]]:
    """(row label, modality, labels) for each model and each shown modality."""
    shown = []
    for choices in ROW_MODALITIES:
        modality = next((m for m in choices if m in case.images), None)
        if modality is not None:
            shown.append(modality)
    shown = shown or [case.modalities[0]]
    if not predictions:
        return [(modality, modality, None) for modality in shown]
    return [(f"{name}\n{modality}", modality, labels) for name, labels in predictions.items() for modality in shown]


def _panel(ax, case: Case, modality: str, labels: np.ndarray | None, z: int, view: dict) -> None:
    """One slice: the image, the predicted classes, the reference's whole-tumour outline."""
    box, aspect = view["box"], view["aspect"]
    low, high = view["windows"][modality]
    ax.imshow(case.images[modality][z][box], cmap="gray", vmin=low, vmax=high, aspect=aspect, interpolation="nearest")
    if labels is not None and labels[z][box].any():
        ax.imshow(_overlay(labels[z][box]), aspect=aspect, interpolation="nearest")
    outline = None if case.label is None else np.isin(case.label[z][box], REGIONS["WT"])
    if outline is not None and outline.any():
        ax.contour(outline, levels=[0.5], colors=REFERENCE_COLOUR, linewidths=0.7)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_case_figure(case: Case, predictions: Mapping[str, np.ndarray], slices: int = 8) -> bytes:
    """The PNG bytes of the case's figure (see the module notes)."""
    from matplotlib.figure import Figure

    zs = representative_slices(case, predictions, slices)
    rows = _rows(case, predictions)
    _, spacing_y, spacing_x = case.geometry.spacing
    view = {
        "windows": {modality: _window(case.images[modality]) for _, modality, _ in rows},
        "box": _brain_box(case),  # the brain fills each panel, not the field of view
        "aspect": spacing_y / spacing_x,
    }
    figure = Figure(figsize=(2.0 * len(zs) + 0.8, 2.2 * len(rows) + 0.7), facecolor="white")
    axes = figure.subplots(len(rows), len(zs), squeeze=False)
    for row, (title, modality, labels) in enumerate(rows):
        for column, z in enumerate(zs):
            _panel(axes[row, column], case, modality, labels, z, view)
        axes[row, 0].set_ylabel(title, fontsize=8)
    for column, z in enumerate(zs):
        axes[0, column].set_title(f"z = {z}", fontsize=8)
    reference = "reference whole tumour: cyan outline" if case.label is not None else "no reference"
    figure.suptitle(f"{case.name} — predicted NCR red, ED green, ET yellow; {reference}", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def write_case_figure(case: Case, predictions: Mapping[str, np.ndarray], path: Path, slices: int = 8) -> Path:
    """Draw the case's figure and write it atomically at ``path`` (its folder is made if needed)."""
    from ..io.atomic import atomic_write_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, draw_case_figure(case, predictions, slices), overwrite=True)
