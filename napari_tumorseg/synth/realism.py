"""How close the phantoms look to real scans: side-by-side slices and per-tissue intensity histograms.

``tumorseg synth --realism ../shared/real --out docs/images`` writes two figures:

- ``realism-slices.png``: each real case beside a phantom of its kind (a
  lower-grade glioma beside a lower-grade glioma...), the same axial slice of
  the same BraTS grid, every modality normalised as the segmenter normalises
  it (z-score over the brain) and shown in the same window;
- ``realism-histograms.png``: for the labelled real case and a phantom,
  the distribution of normalised intensity per class: white matter, grey
  matter and CSF (of the real case: a three-class Gaussian mixture of its
  tumour-free brain on T1, the way a tissue classifier would split it; of the
  phantom: its dominant tissue), oedema and tumour core (the reference).

The real cases only check the phantoms here; nothing is fitted to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.case import MODALITIES, Case
from ..io.labels import ED, ET, NCR

WINDOW = (-2.5, 3.5)  # z-score window of every panel
CLASSES = ("WM", "GM", "CSF", "ED", "NCR/NET", "ET")


def normalised(case: Case) -> dict[str, np.ndarray]:
    """Each modality z-scored over its non-zero voxels, NaN outside (the segmenter's normalisation)."""
    out = {}
    for modality, volume in case.images.items():
        values = volume[volume != 0]
        std = float(values.std()) or 1.0
        out[modality] = np.where(volume != 0, (volume - values.mean()) / std, np.nan).astype(np.float32)
    return out


def _gaussian_mixture_1d(values: np.ndarray, classes: int = 3, iterations: int = 60) -> np.ndarray:
    """Means of a 1D Gaussian mixture fitted by EM, ascending (started at the quantiles)."""
    means = np.quantile(values, (np.arange(classes) + 0.5) / classes)
    spreads = np.full(classes, values.std() / classes)
    weights = np.full(classes, 1.0 / classes)
    for _ in range(iterations):
        density = weights * np.exp(-0.5 * ((values[:, None] - means) / spreads) ** 2) / spreads
        responsibility = density / np.maximum(density.sum(axis=1, keepdims=True), 1e-300)
        total = responsibility.sum(axis=0) + 1e-9
        weights = total / total.sum()
        means = (responsibility * values[:, None]).sum(axis=0) / total
        spreads = np.sqrt((responsibility * (values[:, None] - means) ** 2).sum(axis=0) / total) + 1e-3
    order = np.argsort(means)
    return means[order], spreads[order], weights[order]


def real_classes(case: Case, z: dict[str, np.ndarray]) -> np.ndarray:
    """Class index per voxel (-1 outside the brain) for a real case: GMM tissue on T1, tumour from the label."""
    t1 = z.get("t1", z.get("t1c"))
    brain = np.isfinite(t1)
    label = case.label if case.label is not None else np.zeros(brain.shape, dtype=np.uint8)
    healthy = brain & (label == 0)
    sample = t1[healthy][:: max(1, int(healthy.sum() // 200_000))]
    means, spreads, weights = _gaussian_mixture_1d(sample.astype(np.float64))
    values = t1[healthy][:, None]
    likelihood = weights * np.exp(-0.5 * ((values - means) / spreads) ** 2) / spreads
    tissue = likelihood.argmax(axis=1)  # 0 CSF, 1 GM, 2 WM (T1: CSF darkest, WM brightest)
    classes = np.full(brain.shape, -1, dtype=np.int8)
    classes[healthy] = np.array([2, 1, 0])[tissue]
    return _tumour_classes(classes, label, brain)


def phantom_classes(phantom) -> np.ndarray:
    """Class index per voxel (-1 outside the brain) of a phantom: dominant tissue, tumour from the label."""
    case = phantom.case
    classes = np.full(case.shape, -1, dtype=np.int8)
    dominant = np.argmax(phantom.points.tissue, axis=0)  # 0 GM, 1 WM, 2 CSF
    classes.reshape(-1)[phantom.points.flat] = np.array([1, 0, 2])[dominant]
    return _tumour_classes(classes, case.label, classes >= 0)


def _tumour_classes(classes: np.ndarray, label: np.ndarray, brain: np.ndarray) -> np.ndarray:
    for value, index in ((ED, 3), (NCR, 4), (ET, 5)):
        classes[(label == value) & brain] = index
    return classes


@dataclass(frozen=True)
class Pair:
    """A real case and the phantom shown beside it."""

    real: Case
    phantom: object
    slice_index: int


def pick_slice(case: Case) -> int:
    """The slice with most tumour (reference), else the one with most brain."""
    if case.label is not None and case.label.any():
        return int(np.argmax((case.label > 0).sum(axis=(1, 2))))
    brain = sum((v != 0) for v in case.images.values())
    return int(np.argmax((brain > 0).sum(axis=(1, 2))))


def slices_figure(pairs: Sequence[Pair], out: Path) -> Path:
    """Real case over phantom, each modality, same slice and window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2 * len(pairs), len(MODALITIES), figsize=(3.2 * len(MODALITIES), 6.4 * len(pairs)))
    axes = np.atleast_2d(axes)
    for row, pair in enumerate(pairs):
        for offset, case in enumerate((pair.real, pair.phantom.case)):
            z = normalised(case)
            for column, modality in enumerate(MODALITIES):
                ax = axes[2 * row + offset, column]
                ax.axis("off")
                if modality not in z:
                    continue
                ax.imshow(np.nan_to_num(z[modality][pair.slice_index], nan=WINDOW[0]), cmap="gray",
                          vmin=WINDOW[0], vmax=WINDOW[1])
                ax.set_title(f"{case.name} {modality.upper()} z={pair.slice_index}", fontsize=8)
    fig.suptitle(f"Real cases (odd rows) and version-2 phantoms (even rows); z-score window {WINDOW}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def histograms_figure(real: Case, phantom, out: Path) -> Path:
    """Per-class normalised intensity histograms, real (solid) against phantom (dashed), one panel per modality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z_real, z_phantom = normalised(real), normalised(phantom.case)
    classes_real, classes_phantom = real_classes(real, z_real), phantom_classes(phantom)
    bins = np.linspace(-4.0, 6.0, 81)
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(MODALITIES), figsize=(4.2 * len(MODALITIES), 3.6))
    for ax, modality in zip(axes, MODALITIES):
        for index, name in enumerate(CLASSES):
            for z, classes, style, who in ((z_real, classes_real, "-", real.name),
                                           (z_phantom, classes_phantom, "--", "phantom")):
                values = z[modality][classes == index] if modality in z else np.zeros(0)
                if values.size < 50:
                    continue
                density, _ = np.histogram(values, bins=bins, density=True)
                ax.plot(0.5 * (bins[1:] + bins[:-1]), density, style, color=colours(index), lw=1.2,
                        label=f"{name} ({who})")
        ax.set_title(modality.upper())
        ax.set_xlabel("z-score over the brain")
    axes[0].set_ylabel("density")
    axes[-1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"{real.name} (solid, tissue by a 3-class mixture on T1) against {phantom.case.name} (dashed)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def _save(fig, out: Path) -> Path:
    from ..io.atomic import atomic_write_stream

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_stream(out, lambda stream: fig.savefig(stream, format="png", dpi=80), overwrite=True)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


def _kind(case: Case) -> str:
    """What phantom to show beside a real case: metastasis, lower- or high-grade glioma."""
    if "met" in case.name.lower():
        return "metastasis"
    if case.label is not None and case.label.any() and not (case.label == ET).any():
        return "lower-grade"
    return "high-grade"


def phantom_like(case: Case, first_seed: int = 10_000, tries: int = 40):
    """The first phantom from ``first_seed`` on of the real case's kind, on the case's grid (deterministic)."""
    from .generate import generate_phantom

    kind = _kind(case)
    domain = "metastasis" if kind == "metastasis" else "glioma"
    for seed in range(first_seed, first_seed + tries):
        phantom = generate_phantom(domain, seed, shape=case.shape)  # real cases in BraTS space share its grid
        lower = phantom.lesions[0].rim_mm is None
        if kind == "metastasis" or lower == (kind == "lower-grade"):
            return phantom
    return phantom


def realism_figures(real_cases: Sequence[Case], out_dir: Path) -> list[Path]:
    """Write ``realism-slices.png`` and, given a labelled case, ``realism-histograms.png``."""
    pairs = [Pair(case, phantom_like(case), pick_slice(case)) for case in real_cases]
    written = [slices_figure(pairs, Path(out_dir) / "realism-slices.png")]
    labelled = [pair for pair in pairs if pair.real.label is not None and pair.real.label.any()]
    if labelled:
        written.append(histograms_figure(labelled[0].real, labelled[0].phantom, Path(out_dir) / "realism-histograms.png"))
    return written
