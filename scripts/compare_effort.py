"""Pair two runs of `tumorseg experiment effort` that differ in one setting, round by round.

    python scripts/compare_effort.py out/precision/effort-bf16 out/precision/effort-fp32

Both folders must hold the same patients, seeds and runs (the same command but
for the setting compared). Prints, for the synthetic patients and the real
labelled case: the rest-of-volume WT Dice after the last round (paired, with a
Wilcoxon signed-rank test), the rest WT of every round's adapted version
whether or not the guard kept it, how often the guard decided alike, the
median adaptation seconds per round; then the real case's 5-slices-at-once
targets side by side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon


def _load(folder: str) -> dict:
    return json.loads((Path(folder) / "results.json").read_text())


def _adapted_wt(round_: dict) -> float:
    """The rest WT of the version the round's adaptation made (the rejected one's when the guard said no)."""
    if round_.get("accepted", True) or not round_.get("rejected_rest"):
        return round_["dice"]["WT"]
    return round_["rejected_rest"]["dice"]["WT"]


def _p(a: list[float], b: list[float]) -> float:
    differences = np.subtract(a, b)
    return float(wilcoxon(a, b).pvalue) if len(a) > 1 and np.any(differences) else float("nan")


def compare_protocol(label: str, names: tuple[str, str], first: list[dict], second: list[dict]) -> None:
    by_unit = {(r["case"], r["seed"], r["run"]): r["rounds"] for r in second}
    last_a, last_b, made_a, made_b, secs_a, secs_b, alike, rounds = [], [], [], [], [], [], 0, 0
    for record in first:
        unit = (record["case"], record["seed"], record["run"])
        if unit not in by_unit or record["run"] == "paste":  # a run only one folder has, or no learning
            continue
        a, b = record["rounds"], by_unit[unit]
        for x, y in zip(a[1:], b[1:]):
            rounds += 1
            alike += x["accepted"] == y["accepted"]
            made_a.append(_adapted_wt(x))
            made_b.append(_adapted_wt(y))
            secs_a.append(x["adapt_s"])
            secs_b.append(y["adapt_s"])
        last_a.append(a[-1]["dice"]["WT"])
        last_b.append(b[-1]["dice"]["WT"])
        print(f"{label} {record['case']} seed {record['seed']}: last-round rest WT {names[0]} {a[-1]['dice']['WT']:.4f}, "
              f"{names[1]} {b[-1]['dice']['WT']:.4f}; accepted {[r['accepted'] for r in a[1:]]} / "
              f"{[r['accepted'] for r in b[1:]]}")
    if not last_a:
        print(f"{label}: no learning run in both folders")
        return
    last = np.subtract(last_a, last_b)
    made = np.subtract(made_a, made_b)
    print(f"{label}: last-round rest WT {names[0]} {np.mean(last_a):.4f}, {names[1]} {np.mean(last_b):.4f}, "
          f"paired {last.mean():+.4f} (range {last.min():+.4f} to {last.max():+.4f}), n={len(last)}, "
          f"p={_p(last_a, last_b):.3f}")
    print(f"{label}: each round's adapted version, rest WT {names[0]} - {names[1]}: {made.mean():+.4f} "
          f"(sd {made.std(ddof=1):.4f}), n={len(made)}, p={_p(made_a, made_b):.3f}; guard alike in {alike}/{rounds}")
    print(f"{label}: adapt s per round, median: {names[0]} {np.median(secs_a):.1f}, {names[1]} {np.median(secs_b):.1f}")


def main(first_folder: str, second_folder: str) -> int:
    first, second = _load(first_folder), _load(second_folder)
    names = (Path(first_folder).name, Path(second_folder).name)
    compare_protocol("synthetic", names, first["synthetic"]["records"], second["synthetic"]["records"])
    if (first.get("real") or {}).get("available") and (second.get("real") or {}).get("available"):
        compare_protocol("real", names, first["real"]["protocol"], second["real"]["protocol"])
        for name, results in zip(names, (first, second)):
            for target in results["real"]["targets"]:
                rest = target["rest"]["dice"]
                print(f"{name}: 5 slices at once, picked by {target['rule']}, seed {target['seed']}: rest WT "
                      f"{target['baseline_rest']['dice']['WT']:.4f} -> {rest['WT']:.4f} (TC {rest['TC']:.4f}), "
                      f"{target['status']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
