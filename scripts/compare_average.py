"""Weight average against last-step weights, paired by training seed: the rule of docs/results/weight-average.

    python scripts/compare_average.py --real out/prec/ema-real.json --synthetic out/prec/ema-synth.json

Both kinds of file are ``tumorseg evaluate --json`` outputs (each option repeatable: the runs of several
evaluations are pooled) over the same models: for every run, its average ``NAME``
(written by ``tumorseg train --ema-decay``) and its last step's weights ``NAME-last`` (``--last-out``). Prints
the per-seed table and whether each clause of the rule holds.
"""

from __future__ import annotations

import argparse
import json
from statistics import mean

import numpy as np

LABELLED = "TCGA-DU-7294"
UNLABELLED = ("BraTS-GLI-00001-000", "BraTS-MET-00110-000")
SLACK = 0.005


def pairs(models: dict) -> list[tuple[str, str]]:
    """(average, last) model names, one pair per training run."""
    return sorted((name, name + "-last") for name in models if name + "-last" in models)


def real_figures(per_case: list[dict]) -> dict[str, float]:
    cases = {case["case"]: case for case in per_case}
    labelled = cases[LABELLED]
    figures = {"WT": labelled["WT"]["dice"], "TC": labelled["TC"]["dice"]}
    for name in UNLABELLED:
        figures[f"{name} components"] = cases[name]["components"]["WT"]
        figures[f"{name} ml"] = cases[name]["volumes_ml"]["predicted"]["WT"]
    return figures


def synthetic_wt(per_case: list[dict]) -> np.ndarray:
    return np.array([case["WT"]["dice"] for case in sorted(per_case, key=lambda c: c["case"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="append", required=True, help="evaluate --json over ../shared/real")
    parser.add_argument("--synthetic", action="append", required=True,
                        help="evaluate --json over the held-out synthetic gliomas")
    args = parser.parse_args()
    real = {name: model for path in args.real for name, model in json.load(open(path))["models"].items()}
    synth = {name: model for path in args.synthetic for name, model in json.load(open(path))["models"].items()}
    runs = pairs(real)
    rows: dict[str, dict[str, dict]] = {"average": {}, "last": {}}
    print("| run | weights | TCGA WT | TCGA TC | GLI-00001 WT ml, components | MET-00110 WT ml, components "
          "| synthetic glioma WT |")
    print("|---|---|---|---|---|---|---|")
    for average, last in runs:
        for arm, name in (("average", average), ("last", last)):
            figures = real_figures(real[name]["per_case"])
            figures["synthetic"] = synthetic_wt(synth[name]["per_case"])
            rows[arm][average] = figures
            gli, met = UNLABELLED
            print(f"| {average} | {arm} | {figures['WT']:.3f} | {figures['TC']:.3f} | "
                  f"{figures[gli + ' ml']:.1f}, {figures[gli + ' components']} | "
                  f"{figures[met + ' ml']:.1f}, {figures[met + ' components']} | "
                  f"{figures['synthetic'].mean():.3f} ± {figures['synthetic'].std(ddof=1):.3f} |")
    a, l = rows["average"], rows["last"]
    clauses = {}
    for region in ("WT", "TC"):
        worst_a, worst_l = min(r[region] for r in a.values()), min(r[region] for r in l.values())
        mean_a, mean_l = mean(r[region] for r in a.values()), mean(r[region] for r in l.values())
        clauses[f"1. real {region}: worst seed {worst_a:.3f} (average) >= {worst_l:.3f} (last)"] = worst_a >= worst_l
        clauses[f"1. real {region}: mean {mean_a:.3f} (average) >= {mean_l:.3f} (last) - {SLACK}"] = \
            mean_a >= mean_l - SLACK
    synth_a = mean(float(r["synthetic"].mean()) for r in a.values())
    synth_l = mean(float(r["synthetic"].mean()) for r in l.values())
    clauses[f"2. synthetic glioma WT: mean {synth_a:.3f} (average) >= {synth_l:.3f} (last) - {SLACK}"] = \
        synth_a >= synth_l - SLACK
    comps_a = mean(r[f"{n} components"] for r in a.values() for n in UNLABELLED)
    comps_l = mean(r[f"{n} components"] for r in l.values() for n in UNLABELLED)
    clauses[f"3. unlabelled real WT components: mean {comps_a:.1f} (average) <= {comps_l:.1f} (last)"] = \
        comps_a <= comps_l
    print()
    for clause, holds in clauses.items():
        print(f"- {clause}: {'holds' if holds else 'FAILS'}")
    from scipy.stats import wilcoxon

    for average in a:
        difference = a[average]["synthetic"] - l[average]["synthetic"]
        print(f"- {average}: synthetic WT average - last per case {difference.mean():+.4f} "
              f"(sd {difference.std(ddof=1):.4f}, higher on {(difference > 0).sum()} of {difference.size}, "
              f"Wilcoxon p = {wilcoxon(difference).pvalue:.3g})")
    print(f"\nThe average {'ships' if all(clauses.values()) else 'does not ship'} by the rule.")


if __name__ == "__main__":
    main()
