"""The hard-negatives page's tables and the verdict of its rule, from the evaluations ``evaluate.sh`` wrote.

    python scripts/hard_negatives_table.py docs/results/hard-negatives [--wise | --margin]

Reads ``real.json``, ``glioma-10000.json``, ``glioma-12000.json`` and ``metastasis.json`` (``tumorseg evaluate
--json`` over the models ``unet-H``, ``unet-F`` and the parent ``parent-unet``; the real file also the single
seeds) and prints Markdown: the real cases per model, the synthetic means with paired tests, the cases whose
WT moved most, and each clause of the rule of docs/results/hard-negatives. With ``--wise``, the second rule: W (the mean of H and
the parent) from the ``wise-*.json`` files beside the parent's and H's figures above; with ``--margin``, the third: M
(mined only away from the lesion) from the ``margin-*.json`` files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_tumorseg.experiments.common import paired_test

CANDIDATE, CONTROL, PARENT, WISE, MARGIN = "unet-H", "unet-F", "parent-unet", "unet-W", "unet-M"
LABELLED = "TCGA-DU-7294"
UNLABELLED = ("BraTS-GLI-00001-000", "BraTS-MET-00110-000")


def models(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["models"]


def wt_by_case(model: dict) -> dict[str, dict]:
    return {case["case"]: case for case in model["per_case"]}


def real_table(real: dict) -> list[str]:
    lines = ["| model | TCGA WT | TCGA TC | false ET ml | GLI-00001 WT ml, components | MET-00110 WT ml, components |",
             "|---|---|---|---|---|---|"]
    for name, model in real.items():
        cases = wt_by_case(model)
        tcga, gli, met = cases[LABELLED], cases[UNLABELLED[0]], cases[UNLABELLED[1]]
        lines.append(f"| {name} | {tcga['WT']['dice']:.3f} | {tcga['TC']['dice']:.3f} | "
                     f"{tcga['ET']['predicted_ml']:.1f} | {gli['volumes_ml']['predicted']['WT']:.1f}, "
                     f"{gli['components']['WT']} | {met['volumes_ml']['predicted']['WT']:.1f}, "
                     f"{met['components']['WT']} |")
    return lines


def synthetic_wt(files: list[dict], name: str) -> tuple[list[str], np.ndarray]:
    cases = {c: v for f in files for c, v in wt_by_case(f[name]).items()}
    order = sorted(cases)
    return order, np.array([cases[c]["WT"]["dice"] for c in order])


def synthetic_table(label: str, files: list[dict]) -> tuple[list[str], dict[str, np.ndarray]]:
    names = [n for n in (CANDIDATE, CONTROL, PARENT) if n in files[0]]
    values = {n: synthetic_wt(files, n)[1] for n in names}
    lines = [f"| {label} | " + " | ".join(f"{n} WT (mean ± sd)" for n in names) + " |",
             "|---|" + "---|" * len(names),
             f"| {len(values[names[0]])} cases | " + " | ".join(
                 f"{v.mean():.4f} ± {v.std(ddof=1):.3f}" for v in values.values()) + " |"]
    for a, b in ((CANDIDATE, PARENT), (CANDIDATE, CONTROL), (CONTROL, PARENT)):
        if a in values and b in values:
            t = paired_test(values[a], values[b])
            lines.append(f"\n{a} − {b}: mean {t['mean_difference']:+.4f}, {t['a_better']} higher / {t['b_better']} "
                         f"lower, Wilcoxon p = {t['p_value']:.3g}")
    return lines, values


def moved(files: list[dict]) -> list[str]:
    order, h = synthetic_wt(files, CANDIDATE)
    _, p = synthetic_wt(files, PARENT)
    ranked = np.argsort(-np.abs(h - p))[:8]
    return ["| case | parent WT | H WT | change |", "|---|---|---|---|"] + [
        f"| {order[i]} | {p[i]:.3f} | {h[i]:.3f} | {h[i] - p[i]:+.3f} |" for i in ranked]


def real_clauses(real: dict, name: str, first: int) -> dict[str, bool]:
    """The clauses both rules share, numbered from ``first``: the real glioma's target and the parent − 0.02, and
    the unlabelled cases' components no more than the parent's + 2."""
    r = {n: wt_by_case(real[n]) for n in (name, PARENT)}
    tcga = {n: (r[n][LABELLED]["WT"]["dice"], r[n][LABELLED]["TC"]["dice"]) for n in r}
    comps = {n: [r[n][u]["components"]["WT"] for u in UNLABELLED] for n in r}
    label = name.removeprefix("unet-")
    return {
        f"{first}. real TCGA: {label} WT / TC {tcga[name][0]:.3f} / {tcga[name][1]:.3f} (parent "
        f"{tcga[PARENT][0]:.3f} / {tcga[PARENT][1]:.3f})": tcga[name][0] >= 0.85 and tcga[name][1] >= 0.75
        and all(tcga[name][i] >= tcga[PARENT][i] - 0.02 for i in (0, 1)),
        f"{first + 1}. unlabelled components: {label} {comps[name]} <= parent {comps[PARENT]} + 2":
            all(a <= b + 2 for a, b in zip(comps[name], comps[PARENT])),
    }


def verdict_lines(clauses: dict[str, bool], label: str) -> list[str]:
    lines = [f"- {'holds' if ok else 'FAILS'}: {text}" for text, ok in clauses.items()]
    return lines + [f"\n**{label + (' ships' if all(clauses.values()) else ' does not ship')}.**"]


def verdict(real: dict, glioma: dict[str, np.ndarray], metastasis: dict[str, np.ndarray]) -> list[str]:
    test = paired_test(glioma[CANDIDATE], glioma[PARENT])
    clauses = {
        f"1. synthetic gliomas: H − parent WT {test['mean_difference']:+.4f}, p = {test['p_value']:.3g}":
            test["mean_difference"] > 0 and test["p_value"] < 0.05,
        f"2. H mean WT {glioma[CANDIDATE].mean():.4f} >= F {glioma[CONTROL].mean():.4f}":
            glioma[CANDIDATE].mean() >= glioma[CONTROL].mean(),
        f"3. metastases: H {metastasis[CANDIDATE].mean():.4f} >= parent {metastasis[PARENT].mean():.4f} − 0.01":
            metastasis[CANDIDATE].mean() >= metastasis[PARENT].mean() - 0.01,
        **real_clauses(real, CANDIDATE, 4),
    }
    return verdict_lines(clauses, "H")


def _merged(*files: dict) -> dict:
    """The models of several evaluations of the same cases, as one file's ``models``."""
    return {name: model for f in files for name, model in f.items()}


def _means_row(label: str, files: list[dict]) -> list[str]:
    names = [n for n in (MARGIN, WISE, CANDIDATE, PARENT) if n in files[0]]
    values = {n: synthetic_wt(files, n)[1] for n in names}
    return [f"| {label} | " + " | ".join(f"{n} WT (mean ± sd)" for n in names) + " |",
            "|---|" + "---|" * len(names),
            f"| {len(values[names[0]])} cases | " + " | ".join(
                f"{v.mean():.4f} ± {v.std(ddof=1):.3f}" for v in values.values()) + " |"]


def wise_report(folder: Path) -> list[str]:
    """The second rule: W against the parent (and beside H) on every set, and its verdict."""
    real = _merged(models(folder / "real.json"), models(folder / "wise-real.json"))
    real = {n: real[n] for n in (WISE, CANDIDATE, PARENT)}
    old = [_merged(models(folder / f"glioma-{r}.json"), models(folder / f"wise-glioma-{r}.json")) for r in (10000, 12000)]
    fresh = models(folder / "wise-glioma-14000.json")
    lines = real_table(real) + [""]
    for label, files in (("gliomas 10000–10019", old[:1]), ("gliomas 12000–12019", old[1:]),
                         ("gliomas 14000–14019 (fresh)", [fresh])):
        lines += _means_row(label, files) + [""]
    every = [{n: f[n] for n in (WISE, PARENT)} for f in old + [fresh]]
    w, p = synthetic_wt(every, WISE)[1], synthetic_wt(every, PARENT)[1]
    fresh_w, fresh_p = synthetic_wt([fresh], WISE)[1], synthetic_wt([fresh], PARENT)[1]
    metastasis = _merged(models(folder / "metastasis.json"), models(folder / "wise-metastasis.json"))
    met = {n: synthetic_wt([metastasis], n)[1] for n in (WISE, CANDIDATE, PARENT)}
    lines.append("| metastases 20000–20019 | " + " | ".join(f"{n} {v.mean():.4f} ± {v.std(ddof=1):.3f}"
                                                       for n, v in met.items()) + " |\n")
    total, alone = paired_test(w, p), paired_test(fresh_w, fresh_p)
    lines.append(f"W − parent, 60 gliomas: mean {total['mean_difference']:+.4f}, {total['a_better']} higher / "
                 f"{total['b_better']} lower, Wilcoxon p = {total['p_value']:.3g}; 14000–14019 alone: "
                 f"{alone['mean_difference']:+.4f} ({alone['a_better']} / {alone['b_better']}, p = {alone['p_value']:.3g})")
    h = paired_test(synthetic_wt(old, WISE)[1], synthetic_wt(old, CANDIDATE)[1])
    lines.append(f"W − H, 40 gliomas: mean {h['mean_difference']:+.4f}, {h['a_better']} / {h['b_better']}, "
                 f"p = {h['p_value']:.3g}\n")
    clauses = {
        f"1. 60 gliomas: W − parent {total['mean_difference']:+.4f}, p = {total['p_value']:.3g}; fresh alone "
        f"{alone['mean_difference']:+.4f}": total["mean_difference"] > 0 and total["p_value"] < 0.05
        and alone["mean_difference"] > 0,
        f"2. metastases: W {met[WISE].mean():.4f} >= parent {met[PARENT].mean():.4f} − 0.01":
            met[WISE].mean() >= met[PARENT].mean() - 0.01,
        **real_clauses(real, WISE, 3),
    }
    return lines + verdict_lines(clauses, "W")


def margin_report(folder: Path) -> list[str]:
    """The third rule: M (mined 5 mm or more from the lesion) against the parent, beside H and W."""
    real = _merged(models(folder / "real.json"), models(folder / "wise-real.json"), models(folder / "margin-real.json"))
    real = {n: real[n] for n in real if n.startswith(MARGIN)} | {n: real[n] for n in (WISE, CANDIDATE, PARENT)}
    ranges = [_merged(*(models(folder / f"{prefix}glioma-{r}.json") for prefix in prefixes))
              for r, prefixes in ((10000, ("", "wise-", "margin-")), (12000, ("", "wise-", "margin-")),
                                  (14000, ("wise-", "margin-")))]
    lines = real_table(real) + [""]
    for r, files in zip((10000, 12000, 14000), ranges):
        lines += _means_row(f"gliomas {r}–{r + 19}", [files]) + [""]
    every = [{n: f[n] for n in (MARGIN, PARENT)} for f in ranges]
    m, p = synthetic_wt(every, MARGIN)[1], synthetic_wt(every, PARENT)[1]
    metastasis = _merged(models(folder / "metastasis.json"), models(folder / "wise-metastasis.json"),
                         models(folder / "margin-metastasis.json"))
    met = {n: synthetic_wt([metastasis], n)[1] for n in (MARGIN, WISE, CANDIDATE, PARENT)}
    lines.append("| metastases 20000–20019 | " + " | ".join(f"{n} {v.mean():.4f} ± {v.std(ddof=1):.3f}"
                                                       for n, v in met.items()) + " |\n")
    total = paired_test(m, p)
    h = paired_test(synthetic_wt(ranges[:2], MARGIN)[1], synthetic_wt(ranges[:2], CANDIDATE)[1])
    lines.append(f"M − parent, 60 gliomas: mean {total['mean_difference']:+.4f}, {total['a_better']} higher / "
                 f"{total['b_better']} lower, Wilcoxon p = {total['p_value']:.3g}")
    lines.append(f"M − H, 40 gliomas: mean {h['mean_difference']:+.4f}, {h['a_better']} / {h['b_better']}, "
                 f"p = {h['p_value']:.3g}\n")
    clauses = {
        f"1. 60 gliomas: M − parent {total['mean_difference']:+.4f}, p = {total['p_value']:.3g}":
            total["mean_difference"] > 0 and total["p_value"] < 0.05,
        f"2. metastases: M {met[MARGIN].mean():.4f} >= parent {met[PARENT].mean():.4f} − 0.01":
            met[MARGIN].mean() >= met[PARENT].mean() - 0.01,
        **real_clauses(real, MARGIN, 3),
    }
    return lines + verdict_lines(clauses, "M")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--wise", action="store_true", help="the second rule: W, the mean of H and the parent")
    parser.add_argument("--margin", action="store_true", help="the third rule: M, mined away from the lesion")
    args = parser.parse_args()
    if args.wise or args.margin:
        print("\n".join(wise_report(args.folder) if args.wise else margin_report(args.folder)))
        return
    real = models(args.folder / "real.json")
    gliomas = [models(args.folder / "glioma-10000.json"), models(args.folder / "glioma-12000.json")]
    metastases = [models(args.folder / "metastasis.json")]
    print("\n".join(real_table(real)) + "\n")
    for label, files in (("gliomas 10000–10019", gliomas[:1]), ("gliomas 12000–12019", gliomas[1:])):
        print("\n".join(synthetic_table(label, files)[0]) + "\n")
    glioma_lines, glioma = synthetic_table("gliomas, both ranges", gliomas)
    metastasis_lines, metastasis = synthetic_table("metastases 20000–20019", metastases)
    print("\n".join(glioma_lines) + "\n\n" + "\n".join(metastasis_lines) + "\n")
    print("Cases whose WT moved most (gliomas):\n\n" + "\n".join(moved(gliomas)) + "\n")
    print("\n".join(verdict(real, glioma, metastasis)))


if __name__ == "__main__":
    main()
