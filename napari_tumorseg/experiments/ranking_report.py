"""results.md and the figure of the ranking check (do the suggestions find what is wrong?).

Every number is read from results.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import format_p
from .ranking import RANKING_TITLES, RANKINGS
from .report import _header

METRIC_TITLES = {
    "error_share": "share of the volume's wrong voxels on the picked slices",
    "needing_edits": "picked slices a radiologist would have to edit",
    "fp_found": "false-positive components touched",
    "missed_found": "missed lesions touched",
}
COLOURS = {"old": "#7f7f7f", "suggest": "#2ca02c", "suggest+flip": "#17becf", "random": "#1f77b4", "dice": "#9467bd"}


def _table(rows_by_ranking: dict[str, dict[str, dict[str, float]]], ks: list[int], metric: str,
           digits: int) -> list[str]:
    lines = ["| ranking | " + " | ".join(f"top {k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for name in RANKINGS:
        cells = [f"{rows_by_ranking[name][str(k)][metric]:.{digits}f}" for k in ks]
        lines.append(f"| {RANKING_TITLES[name]} | " + " | ".join(cells) + " |")
    return lines


def _per_case(rows: list[dict[str, Any]], ks: list[int]) -> list[str]:
    k = str(ks[0])
    lines = [f"| case | brain slices | slices needing edits | false components | missed lesions | error share, top {k}: "
             "suggestions / random / worst Dice |", "|---|---|---|---|---|---|"]
    for row in rows:
        share = {name: row["rankings"][name][k]["error_share"] for name in ("suggest", "random", "dice")}
        lines.append(f"| {row['case']} | {row['brain_slices']} | {row['needing_edits_in_brain']} | {row['fp']} | "
                     f"{row['missed']} | {share['suggest']:.3f} / {share['random']:.3f} / {share['dice']:.3f} |")
    return lines


def ranking_markdown(results: dict[str, Any]) -> str:
    ks, summary = results["ks"], results["summary"]
    lines = _header(results, "Do the suggestions find what is wrong? Rankings of slices on the first prediction")
    lines += [
        f"Model: {results['model']['description']} (weights sha256 {results['model']['sha256_of_weights'][:16]}…). "
        f"Synthetic patients: {len(results['rows'])} metastasis cases, seeds {results['seeds'][0]}–"
        f"{results['seeds'][-1]} ({results['seed_range']}). No learning: each ranking picks its top k slices of the "
        "first prediction, as the effort experiment's first round would (random: the mean of 20 draws).",
        "",
    ]
    if summary:
        lines += [f"## Synthetic metastasis patients (means over {len(results['rows'])} cases)", ""]
        for metric, digits in (("error_share", 3), ("needing_edits", 2), ("fp_found", 2), ("missed_found", 2)):
            lines += [f"### {METRIC_TITLES[metric]}", "", *_table(summary["means"], ks, metric, digits), ""]
        totals = summary["totals"]
        lines += [f"Over all cases: {totals['fp']} false-positive components, {totals['missed']} missed lesions.", "",
                  "### Suggestions against random slices (error share, paired over cases)", "",
                  "| top k | mean difference | suggestions ahead / behind | p |", "|---|---|---|---|"]
        for k in ks:
            test = summary["suggest_vs_random_error_share"][str(k)]
            if test["mean_difference"] is not None:
                lines.append(f"| {k} | {test['mean_difference']:+.3f} | {test['a_better']} / {test['b_better']} | "
                             f"{format_p(test['p_value'])} |")
        lines += ["", "### Per case", "", *_per_case(results["rows"], ks), ""]
    for row in results["real_rows"]:
        lines += [f"## The real labelled case {row['case']}", "",
                  f"{row['brain_slices']} brain slices, {row['needing_edits_in_brain']} needing edits, "
                  f"{row['fp']} false-positive components, {row['missed']} missed lesions.", ""]
        for metric, digits in (("error_share", 3), ("needing_edits", 2), ("fp_found", 2)):
            lines += [f"### {METRIC_TITLES[metric]}", "", *_table(row["rankings"], ks, metric, digits), ""]
    lines += ["## Figure", "", "![rankings](rankings.png)", ""]
    return "\n".join(lines)


def ranking_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """rankings.png: error share and slices needing edits against k, per ranking."""
    from .plots import _pyplot, _save

    if not results["summary"]:
        return []
    plt = _pyplot()
    ks, means = results["ks"], results["summary"]["means"]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    for ax, metric in zip(axes, ("error_share", "needing_edits")):
        for name in RANKINGS:
            ax.plot(ks, [means[name][str(k)][metric] for k in ks], marker="o", ms=3, label=RANKING_TITLES[name],
                    color=COLOURS[name])
        ax.set_title(METRIC_TITLES[metric], fontsize=9)
        ax.set_xlabel("slices picked (k)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle("rankings of slices on the first prediction, synthetic metastasis")
    return [_save(figure, out / "rankings.png")]
