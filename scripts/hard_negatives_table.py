"""The hard-negatives page's tables and the verdict of its rule, from the evaluations ``evaluate.sh`` wrote.

    python scripts/hard_negatives_table.py docs/results/hard-negatives

Reads ``real.json``, ``glioma-10000.json``, ``glioma-12000.json`` and ``metastasis.json`` (``tumorseg evaluate
--json`` over the models ``unet-H``, ``unet-F`` and the parent ``parent-unet``; the real file also the single
seeds) and prints Markdown: the real cases per model, the synthetic means with paired tests, the cases whose
WT moved most, and each clause of the rule of docs/results/hard-negatives.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_tumorseg.experiments.common import paired_test

CANDIDATE, CONTROL, PARENT = "unet-H", "unet-F", "parent-unet"
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


def verdict(real: dict, glioma: dict[str, np.ndarray], metastasis: dict[str, np.ndarray]) -> list[str]:
    test = paired_test(glioma[CANDIDATE], glioma[PARENT])
    r = {n: wt_by_case(real[n]) for n in (CANDIDATE, PARENT)}
    tcga = {n: (r[n][LABELLED]["WT"]["dice"], r[n][LABELLED]["TC"]["dice"]) for n in r}
    comps = {n: [r[n][u]["components"]["WT"] for u in UNLABELLED] for n in r}
    clauses = {
        f"1. synthetic gliomas: H − parent WT {test['mean_difference']:+.4f}, p = {test['p_value']:.3g}":
            test["mean_difference"] > 0 and test["p_value"] < 0.05,
        f"2. H mean WT {glioma[CANDIDATE].mean():.4f} >= F {glioma[CONTROL].mean():.4f}":
            glioma[CANDIDATE].mean() >= glioma[CONTROL].mean(),
        f"3. metastases: H {metastasis[CANDIDATE].mean():.4f} >= parent {metastasis[PARENT].mean():.4f} − 0.01":
            metastasis[CANDIDATE].mean() >= metastasis[PARENT].mean() - 0.01,
        f"4. real TCGA: H WT / TC {tcga[CANDIDATE][0]:.3f} / {tcga[CANDIDATE][1]:.3f} (parent {tcga[PARENT][0]:.3f}"
        f" / {tcga[PARENT][1]:.3f})": tcga[CANDIDATE][0] >= 0.85 and tcga[CANDIDATE][1] >= 0.75
        and all(tcga[CANDIDATE][i] >= tcga[PARENT][i] - 0.02 for i in (0, 1)),
        f"5. unlabelled components: H {comps[CANDIDATE]} <= parent {comps[PARENT]} + 2":
            all(h <= p + 2 for h, p in zip(comps[CANDIDATE], comps[PARENT])),
    }
    lines = [f"- {'holds' if ok else 'FAILS'}: {text}" for text, ok in clauses.items()]
    lines.append(f"\n**{'H ships' if all(clauses.values()) else 'H does not ship'}.**")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
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
