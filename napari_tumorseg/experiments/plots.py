"""PNG figures of both experiments (matplotlib, Agg backend: no display needed).

Meta-tune: Dice against k (ET and WT, own and held-out slices), and
forgetting against gain (anchor Dice change against the Dice gain on the
patient's other slices). Lifelong: the static U-Net's test curves in each
setting (paper 004, Figure 1), U-Net against Dy-CNN (Figure 3a) and the
training-loss learning curves (Figure 3b).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .meta_tune import METHOD_LABELS

COLOURS = {"baseline": "#7f7f7f", "naive": "#d62728", "passive": "#1f77b4", "passive-fo": "#17becf",
           "active": "#2ca02c", "active-fo": "#bcbd22", "unet": "#d62728", "dycnn": "#2ca02c"}
SET_TITLES = {"own": "patient's other slices", "held_out": "held-out patients", "anchor": "glioma anchor set"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Fixed metadata so the same results draw the same bytes.
    figure.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(figure)
    return path


def _value(summary: dict[str, Any], key: str = "mean") -> float:
    value = summary.get(key)
    return np.nan if value is None else float(value)


def dice_vs_k(results: dict[str, Any], path: Path) -> Path:
    """ET and WT Dice (mean ± std over patients) against k, per method, on own, held-out and anchor slices."""
    plt = _pyplot()
    config, summary = results["config"], results["analysis"]["summary"]
    ks = [int(k) for k in config["ks"]]
    sets = ("own", "held_out", "anchor")
    figure, axes = plt.subplots(2, len(sets), figsize=(4.6 * len(sets), 7), sharex=True, layout="constrained")
    methods = list(config["methods"])
    for row, region in enumerate(("ET", "WT")):
        for col, set_name in enumerate(sets):
            ax = axes[row][col]
            for index, method in enumerate(methods):
                stats = [summary[str(k)][method][set_name][region] for k in ks]
                means = np.array([_value(s) for s in stats])
                stds = np.array([_value(s, "std_patients") for s in stats])
                style = "--" if method == "baseline" else "-"
                # Side by side at each k, so the error bars of the methods do not hide one another.
                dodge = (index - (len(methods) - 1) / 2) * 0.15
                ax.errorbar(np.array(ks) + dodge, means, yerr=np.nan_to_num(stds), label=METHOD_LABELS[method],
                            color=COLOURS[method], linestyle=style, marker="o", capsize=3, alpha=0.9)
            ax.set_title(f"{region} Dice, {SET_TITLES[set_name]}")
            ax.set_xticks(ks)
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xlabel("corrected slices k")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    figure.suptitle("Meta-tune on synthetic metastasis: Dice against the number of corrected slices "
                    "(mean ± std over patients)", fontsize=10)
    return _save(figure, path)


def forgetting_vs_gain(results: dict[str, Any], path: Path, region: str = "ET") -> Path:
    """Per patient (faint) and per method (mean ± std): anchor Dice change against the gain on own slices."""
    plt = _pyplot()
    config, analysis = results["config"], results["analysis"]
    k = str(config["main_k"])
    records = results["records"]
    baseline = {r["patient"]: r for r in records if r["method"] == "baseline"}
    figure, ax = plt.subplots(figsize=(7, 5.5), layout="constrained")
    for method in config["methods"][1:]:
        runs = [r for r in records if r["method"] == method and str(r["k"]) == k]
        gains = [r["own"][region] - baseline[r["patient"]]["own"][region] for r in runs]
        changes = [r["anchor"][region] - baseline[r["patient"]]["anchor"][region] for r in runs]
        ax.scatter(changes, gains, s=10, alpha=0.25, color=COLOURS[method])
        change = analysis["change"][k][method]
        ax.errorbar(_value(change["anchor"][region]), _value(change["own"][region]),
                    xerr=_value(change["anchor"][region], "std_patients"),
                    yerr=_value(change["own"][region], "std_patients"), fmt="o", markersize=8, capsize=4,
                    color=COLOURS[method], label=METHOD_LABELS[method])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"{region} Dice change on the glioma anchor set (negative = forgetting)")
    ax.set_ylabel(f"{region} Dice gain on the patient's other slices")
    ax.set_title(f"Forgetting against gain, k = {k} (points: patient x seed; bars: mean ± std over patients)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path)


def _curves(runs: Sequence[dict], arch: str, setting: str, modality: str, region: str) -> tuple[np.ndarray, np.ndarray]:
    chosen = [r for r in runs if r["arch"] == arch and r["setting"] == setting]
    steps = np.array([b["step"] for b in chosen[0]["curve"]])
    values = np.array([[b[modality][region] for b in r["curve"]] for r in chosen])
    return steps, values


def _band(ax: Any, steps: np.ndarray, values: np.ndarray, **style: Any) -> None:
    mean = values.mean(axis=0)
    ax.plot(steps, mean, marker=".", **style)
    if len(values) > 1:
        std = values.std(axis=0, ddof=1)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.15, color=style.get("color"))


def _shade_stream(ax: Any, run: dict) -> None:
    """Grey bands under the FLAIR-only batches of a stream run."""
    previous = 0
    for batch in run["curve"]:
        if batch["modality"] == "flair":
            ax.axvspan(previous, batch["step"], color="0.9", zorder=0)
        previous = batch["step"]


def lifelong_figure1(results: dict[str, Any], path: Path, arch: str = "unet") -> Path:
    """Paper 004 Figure 1: one network's T2-only and FLAIR-only test Dice through each setting."""
    plt = _pyplot()
    config, runs = results["config"], results["runs"]
    region = results["analysis"]["primary_region"]
    settings = config["settings"]
    figure, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.8), sharey=True, squeeze=False,
                                layout="constrained")
    for ax, setting in zip(axes[0], settings):
        run = next(r for r in runs if r["arch"] == arch and r["setting"] == setting)
        _shade_stream(ax, run)
        for modality, colour in (("t2", "#9467bd"), ("flair", "#ff7f0e")):
            steps, values = _curves(runs, arch, setting, modality, region)
            _band(ax, steps, values, color=colour, label=f"{modality.upper()}-only test")
        ax.set_title(f"{setting} batches" if setting != "joint" else "joint (no stream)")
        ax.set_xlabel("gradient steps")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{region} Dice")
    axes[0][0].legend(fontsize=8, loc="lower right")
    name = "static U-Net" if arch == "unet" else "Dy-CNN"
    figure.suptitle(f"Lifelong training of the {name} (grey: FLAIR-only batches; mean ± std over seeds)",
                    fontsize=10)
    return _save(figure, path)


def lifelong_figure3(results: dict[str, Any], path: Path) -> Path:
    """Paper 004 Figure 3: (a) U-Net vs Dy-CNN average test Dice in each stream setting, (b) learning curves."""
    plt = _pyplot()
    config, runs = results["config"], results["runs"]
    region = results["analysis"]["primary_region"]
    settings = [s for s in config["settings"] if s != "joint"] or list(config["settings"])
    figure, axes = plt.subplots(2, len(settings), figsize=(5 * len(settings), 7.5), squeeze=False, layout="constrained")
    for col, setting in enumerate(settings):
        ax = axes[0][col]
        _shade_stream(ax, next(r for r in runs if r["setting"] == setting))
        for arch in config["archs"]:
            steps, t2 = _curves(runs, arch, setting, "t2", region)
            _, flair = _curves(runs, arch, setting, "flair", region)
            _band(ax, steps, (t2 + flair) / 2, color=COLOURS[arch],
                  label="static U-Net" if arch == "unet" else "Dy-CNN")
        ax.set_title(f"(a) {setting} batches: mean of T2-only and FLAIR-only {region} Dice", fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("gradient steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax = axes[1][col]
        for arch in config["archs"]:
            losses = np.array([r["losses"] for r in runs if r["arch"] == arch and r["setting"] == setting])
            window = max(1, losses.shape[1] // 40)
            kernel = np.ones(window) / window
            smooth = np.array([np.convolve(row, kernel, mode="valid") for row in losses])
            _band(ax, np.arange(smooth.shape[1]) + window, smooth, color=COLOURS[arch],
                  label="static U-Net" if arch == "unet" else "Dy-CNN")
        ax.set_title(f"(b) learning curves, {setting} batches (training loss, running mean)", fontsize=9)
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("Dice + cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle("Static U-Net against Dy-CNN on the alternating-modality stream (mean ± std over seeds)",
                    fontsize=10)
    return _save(figure, path)


def meta_tune_plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """Every meta-tune figure into ``folder``."""
    return [
        dice_vs_k(results, folder / "dice_vs_k.png"),
        forgetting_vs_gain(results, folder / "forgetting_vs_gain.png"),
    ]


def lifelong_plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """Every lifelong figure into ``folder``."""
    paths = []
    if "unet" in results["config"]["archs"]:
        paths.append(lifelong_figure1(results, folder / "figure1_static_unet.png", "unet"))
    if "dycnn" in results["config"]["archs"]:
        paths.append(lifelong_figure1(results, folder / "figure1_dycnn.png", "dycnn"))
    paths.append(lifelong_figure3(results, folder / "figure3_unet_vs_dycnn.png"))
    return paths
