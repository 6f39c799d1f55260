"""Two `tumorseg evaluate --json` runs of the same cases, compared case by case (paired).

    python scripts/compare_evaluations.py A.json B.json [--model glioma-unet] [--label-a all --label-b none]

For each model in both files and each region (WT, TC, ET): the mean Dice of A and B over the cases scored in
both, the mean difference A - B, how many cases each wins, and a two-sided Wilcoxon signed-rank p-value
(experiments.common.paired_test); then the WT components summed over the cases without a reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_tumorseg.experiments.common import paired_test

REGIONS = ("WT", "TC", "ET")


def _per_case(document: dict, model: str) -> dict[str, dict]:
    return {entry["case"]: entry for entry in document["models"][model]["per_case"]}


def _dice(entry: dict, region: str) -> float | None:
    scored = entry.get(region)
    if not isinstance(scored, dict) or scored.get("status") != "scored":
        return None
    return scored.get("dice")


def compare(a: dict, b: dict, model: str, label_a: str, label_b: str) -> list[str]:
    cases_a, cases_b = _per_case(a, model), _per_case(b, model)
    shared = [case for case in cases_a if case in cases_b]
    lines = [f"{model}: {len(shared)} cases in both"]
    for region in REGIONS:
        pairs = [(_dice(cases_a[c], region), _dice(cases_b[c], region)) for c in shared]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        if not pairs:
            continue
        xs, ys = zip(*pairs)
        test = paired_test(xs, ys)
        p = "n/a" if test["p_value"] is None else f"{test['p_value']:.3g}"
        lines.append(f"  {region} Dice  {label_a} {sum(xs) / len(xs):.3f}  {label_b} {sum(ys) / len(ys):.3f}  "
                     f"difference {test['mean_difference']:+.4f}  wins {test['a_better']}/{test['b_better']}  "
                     f"p = {p} (n = {test['n']})")
    unlabelled = [c for c in shared if not cases_a[c].get("reference")]
    if unlabelled:
        count = {label: sum(cases[c]["components"]["WT"] for c in unlabelled)
                 for label, cases in ((label_a, cases_a), (label_b, cases_b))}
        lines.append(f"  WT components on the {len(unlabelled)} cases without a reference: "
                     f"{label_a} {count[label_a]}, {label_b} {count[label_b]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--model", action="append", help="models to compare (default: every model in both)")
    parser.add_argument("--label-a", default="A")
    parser.add_argument("--label-b", default="B")
    args = parser.parse_args()
    a, b = (json.loads(path.read_text(encoding="utf-8")) for path in (args.a, args.b))
    models = args.model or [m for m in a["models"] if m in b["models"]]
    for model in models:
        print("\n".join(compare(a, b, model, args.label_a, args.label_b)))


if __name__ == "__main__":
    main()
