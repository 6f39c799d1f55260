"""results.md and the figures of the effort experiment (the radiologist's curve).

Every number is read from results.json; the text says how to read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .common import format_mean_std, format_p
from .effort import RUN_LABELS

METRIC_TITLES = {
    "WT": "WT Dice, rest of the volume",
    "lesion_sensitivity": "lesion-wise sensitivity, rest",
    "fp_voxels": "false-positive voxels, rest",
    "slices_needing_edits": "slices still needing edits",
    "final_WT": "WT Dice of the exported mask",
}
COLOURS = {"paste": "#7f7f7f", "suggest/active": "#2ca02c", "random/active": "#1f77b4", "dice/active": "#9467bd",
           "suggest/naive": "#d62728", "suggest/active-best": "#bcbd22", "suggest/passive": "#17becf",
           "suggest/dycnn": "#ff7f0e"}


def _guard_setting(results: dict[str, Any]) -> str:
    """", tolerance T and budget B (not the plugin's)" when the run changed the guard's bounds, else ""."""
    from ..adapt.config import AdaptConfig

    default = AdaptConfig()
    bounds = {(c.get("tolerance"), c.get("budget")) for c in results.get("adapt_configs", {}).values()}
    changed = sorted(b for b in bounds if b != (default.tolerance, default.budget) and None not in b)
    return "".join(f", tolerance {t:g} and budget {b:g} (not the plugin's)" for t, b in changed)


def _label(run: str) -> str:
    return RUN_LABELS.get(run, run)


def _curve_table(part: dict[str, Any], metric: str, digits: int = 3) -> list[str]:
    slices = part["slices"]
    lines = ["| run | " + " | ".join(f"{n} slices" for n in slices) + " |",
             "|---|" + "---|" * len(slices)]
    for run, curves in part["curves"].items():
        cells = [format_mean_std(s, digits) for s in curves[metric]]
        lines.append(f"| {_label(run)} | " + " | ".join(cells) + " |")
    return lines


def _comparisons(part: dict[str, Any]) -> list[str]:
    lines = ["| comparison (a against b) | figure | after the last round: mean a-b, a>b / b>a, p "
             "| over the curve: mean a-b, p |", "|---|---|---|---|"]
    for c in part["comparisons"]:
        last, curve = c["after_last_round"], c["curve_mean"]
        if last["mean_difference"] is None:
            continue
        lines.append(
            f"| {_label(c['a'])} vs {_label(c['b'])} | {c['metric']} | {last['mean_difference']:+.4g}, "
            f"{last['a_better']} / {last['b_better']}, p = {format_p(last['p_value'])} "
            f"| {curve['mean_difference']:+.4g}, p = {format_p(curve['p_value'])} |")
    return lines


def _suggest_vs_random(part: dict[str, Any]) -> list[str]:
    target = part.get("suggest_vs_random")
    if not target:
        return []
    lines = [
        f"Suggestions against random slices: random's rest WT after {target['most_slices']} slices is the bar; "
        f"the target is to reach it with at most {target['target_slices']:.0f} slices (30 % fewer). "
        f"{target['cases_reaching_with_30pct_fewer']} of {target['cases']} cases reach it that early "
        f"(median slices needed: {target['median_slices_needed'] if target['median_slices_needed'] is not None else 'not reached by all'}); "
        f"on the curves averaged over cases the bar {target['pooled']['random_at_most']:.3f} is reached at "
        f"{target['pooled']['suggest_needs'] if target['pooled']['suggest_needs'] is not None else 'no round'}"
        " slices.", "",
        "| case | random, rest WT at the most slices | suggestions need (slices) | suggestions at the most slices |",
        "|---|---|---|---|",
    ]
    for row in target["per_case"]:
        needs = row["suggest_needs"] if row["suggest_needs"] is not None else "not reached"
        lines.append(f"| {row['case']} | {row['random_at_most']:.3f} | {needs} | {row['suggest_at_most']:.3f} |")
    return lines


def _part(part: dict[str, Any], title: str) -> list[str]:
    lines = [f"## {title}", ""]
    for metric, name in METRIC_TITLES.items():
        digits = 0 if metric in ("fp_voxels", "slices_needing_edits") else 3
        lines += [f"### {name}", "", *_curve_table(part, metric, digits), ""]
    lines += ["### Paired tests", "",
              "Two-sided Wilcoxon signed-rank over cases (each case's mean over seeds); several comparisons, "
              "read each p with that in mind. For fp_voxels and slices needing edits lower is better.", "",
              *_comparisons(part), ""]
    lines += _suggest_vs_random(part) + [""]
    lines += ["### The guard and the cost", "",
              "The rejected versions' column: the rest-of-volume WT Dice a rejected version would have given "
              "minus what the kept one gives (positive: the guard kept an improvement from the user, to protect "
              "the source anchor set).", "",
              "| run | versions accepted | rejected versions: rest WT change | adapt s / round | segment s / round "
              "| forward/backward passes / round |", "|---|---|---|---|---|---|"]
    for run, accepted in part["acceptance"].items():
        cost = part["costs"].get(run, {})
        text = "n/a (no learning)" if accepted is None else f"{accepted['accepted']} of {accepted['rounds']}"
        change = accepted.get("rejected_wt_change") if accepted else None
        lines.append(f"| {_label(run)} | {text} | {'n/a' if change is None else f'{change:+.3f}'} "
                     f"| {cost.get('adapt_s') or 'n/a'} | {cost.get('segment_s') or 'n/a'} "
                     f"| {cost.get('passes') or 'n/a'} |")
    return lines + [""]


def effort_markdown(results: dict[str, Any]) -> str:
    """The effort experiment as Markdown."""
    from .report import _header

    config, analysis = results["config"], results["analysis"]
    lines = _header(results, "The radiologist's curve: rest-of-volume Dice against corrected slices")
    models = results["models"]
    lines += [
        "Models: " + "; ".join(f"{arch}: {m['description']}" for arch, m in models.items()) + ".",
        f"Synthetic patients: {config['patients']} metastasis cases, seeds {results['synthetic']['patients'][0]}-"
        f"{results['synthetic']['patients'][-1]} ({'the tuning range' if config['tune'] else 'a range no default was tuned on'}), "
        f"{config['seeds']} repeat seed(s); {config['rounds']} rounds of {config['per_round']} slices. "
        "Each round adapts the current version on all corrections so far with the plugin's defaults (replay, "
        f"guard with the cumulative budget{_guard_setting(results)}; no held-out check: a real case has no "
        "reference); a rejected version is not used. ± is the standard deviation over cases (of each case's mean "
        "over seeds).",
        "",
    ]
    lines += _part(analysis["synthetic"], "Synthetic metastasis patients")
    real = analysis.get("real")
    if real:
        lines += _part(real, f"The real labelled case ({results['real']['case']}), same protocol")
        lines += ["## The real-case targets", "",
                  f"{config['target_slices']} slices corrected at once, active meta-tune with the defaults; the rest "
                  "of the case scored whatever the guard said ('after'), and as the user would have it ('with the "
                  "guard': the previous model when the version was rejected). The unlabelled real cases are "
                  "segmented before and after: predicted volumes and agreement, no reference.", "",
                  "| picked by | seeds | rest WT before | rest WT after (min) | with the guard | accepted |",
                  "|---|---|---|---|---|---|"]
        for rule, row in real["targets"].items():
            lines.append(f"| {rule} | {row['seeds']} | {row['rest_WT_before']:.3f} | {row['rest_WT_after']:.3f} "
                         f"({row['rest_WT_after_min']:.3f}) | {row['rest_WT_with_guard']:.3f} | "
                         f"{row['accepted']} of {row['seeds']} |")
        baseline = results["real"]["baseline"]["unlabelled"]
        lines += ["", "| unlabelled case | before: WT / TC / ET ml, components | after (suggested): WT ml, agreement "
                  "| after (spread): WT ml, agreement |", "|---|---|---|---|"]
        for name, before in baseline.items():
            cells = []
            for rule in ("suggested", "spread"):
                after = real["targets"].get(rule, {}).get("unlabelled", {}).get(name)
                cells.append("n/a" if after is None else f"{after['WT_ml']:.1f} ml, {after['agreement_with_before']:.3f}")
            lines.append(f"| {name} | {before['WT_ml']:.1f} / {before['TC_ml']:.1f} / {before['ET_ml']:.1f}, "
                         f"{before['components']} | {cells[0]} | {cells[1]} |")
        lines.append("")
    elif config.get("real"):
        lines += ["The real cases were not found on this machine; the real-case part did not run.", ""]
    lines += ["## Figures", "", "![curves](curves.png)", ""]
    if real:
        lines += ["![real case](curves_real.png)", ""]
    return "\n".join(lines)


def effort_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """curves.png (synthetic) and curves_real.png (the real labelled case, when run)."""
    paths = [_curves(results["analysis"]["synthetic"], out / "curves.png", "synthetic metastasis")]
    if results["analysis"].get("real"):
        paths.append(_curves(results["analysis"]["real"], out / "curves_real.png", results["real"]["case"]))
    return paths


def _curves(part: dict[str, Any], path: Path, title: str) -> Path:
    from .plots import _pyplot, _save, _value

    plt = _pyplot()
    metrics = ("WT", "lesion_sensitivity", "fp_voxels", "slices_needing_edits")
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.8), layout="constrained")
    slices = part["slices"]
    for ax, metric in zip(axes, metrics):
        for run, curves in part["curves"].items():
            means = np.array([_value(s) for s in curves[metric]])
            spread = np.array([_value(s, "std_patients") for s in curves[metric]])
            colour = COLOURS.get(run)
            ax.plot(slices, means, marker="o", ms=3, label=_label(run), color=colour)
            if np.isfinite(spread).any():
                low, high = means - spread, means + spread
                if metric in ("WT", "lesion_sensitivity"):  # fractions: a band past 0 or 1 means nothing
                    low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
                ax.fill_between(slices, low, high, alpha=0.08, color=colour)
        ax.set_title(METRIC_TITLES[metric], fontsize=10)
        ax.set_xlabel("corrected slices")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    figure.suptitle(title)
    return _save(figure, path)
