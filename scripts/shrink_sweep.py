"""Should the guard refuse a step that makes the model mark much less of a region on the anchor set?

The question (issue 13, "the next real case no worse"): adapted on a case without enhancing
tumour, the model marks less enhancing tumour everywhere; on the anchor set its Dice rises
(the parent over-called it there) while the real next cases lose half of theirs
(docs/results/anchor-blind-spot). ``AdaptConfig.max_shrink`` makes the guard refuse (and so
step back) when a region's voxels marked on the anchor shrink by more than that share.

The protocol, and the code that runs it, are the absent-class sweep's (``scripts/absent_class_sweep.py``: 4 synthetic
lower-grade gliomas without enhancing tumour corrected on 5 spread slices, adapted with the
plugin's defaults; 2 high-grade gliomas and 2 metastases as next cases), once per value.

The rule, written before the first measurement (2026-12-04, 18:06 UTC): for each value v in
{off, 0.2, 0.1}, S(v) = mean over corrected cases of (rest WT + rest TC) / 2 + mean over
(corrected case, next case) of the next case's mean region Dice after. Every value whose S is
within 0.005 of the best is a candidate; of those, the one whose next cases keep the most
enhancing tumour (mean ET ml) becomes the default — the loss the criterion exists to prevent.
Tuning seeds 36000; then reported, not chosen, on the real cases (the unlabelled cases' ET
after adapting on TCGA-DU-7294: ``scripts/anchor_class_drift.py``; the rest-of-case target:
``tumorseg experiment effort``'s real targets).

    python scripts/shrink_sweep.py --out docs/results/anchor-blind-spot/tune --first-seed 36000

Decided again with the absent-class correction on (``keep_absent``, the default since 2026-12-06, which moves
the ET bias back to the parent's anchor count before the guard looks). Rule written 2026-12-06, 04:28 UTC, before
the runs: the same values and S, on the keep-absent sweeps' protocol (``--faint-next 2``: 8 next cases, half of
them faintly enhancing) and on both seed ranges pooled (8 corrected cases: S(v) is the mean of the two ranges'
S); within 0.005 of the best pooled S, the value whose next cases keep the most enhancing tumour (mean of the two
ranges' ET ml) becomes the default. Reported whatever it shows; the real glioma with the limit on top of the
correction was measured before this rule (docs/results/keep-absent: 86 % of the next cases' ET kept, rest WT
0.912 / 0.919 against 0.916 / 0.929).

    python scripts/shrink_sweep.py --out docs/results/shrink-keep-absent/tune --first-seed 36000 --faint-next 2
    python scripts/shrink_sweep.py --out docs/results/shrink-keep-absent/check --first-seed 37000 --faint-next 2
    python scripts/shrink_sweep.py --decide docs/results/shrink-keep-absent/tune docs/results/shrink-keep-absent/check
"""

from __future__ import annotations

import sys

from absent_class_sweep import protocol_arguments, render, save, sweep


def _value(text: str) -> float | None:
    return None if text == "off" else float(text)


def chosen(summary: dict) -> str:
    """The rule of the module docstring: within 0.005 of the best S, the most ET kept on the next cases."""
    best = max(v["S"] for v in summary.values())
    candidates = {k: v for k, v in summary.items() if v["S"] >= best - 0.005}
    return max(candidates, key=lambda k: candidates[k]["next_et_ml"])


def pooled_choice(folders: list[str]) -> dict:
    """The second rule of the module docstring: S and ET ml averaged over the sweeps' ranges, then ``chosen``."""
    import json
    from pathlib import Path

    summaries = [json.loads((Path(f) / "results.json").read_text())["summary"] for f in folders]
    pooled = {value: {key: sum(s[value][key] for s in summaries) / len(summaries) for key in ("S", "next_et_ml")}
              for value in summaries[0]}
    return {"pooled": pooled, "chosen": chosen(pooled)}


def main() -> int:
    if "--decide" in sys.argv:
        import json

        print(json.dumps(pooled_choice(sys.argv[sys.argv.index("--decide") + 1:]), indent=1))
        return 0
    args = protocol_arguments(__doc__.splitlines()[0], "values", str, ["off", "0.2", "0.1"])
    results = sweep(args, "value", args.values, lambda value: {"max_shrink": _value(value)})
    text = render(results, "Anchor shrink limit sweep", "max shrink", choice=chosen)
    return save(args, results, text)


if __name__ == "__main__":
    raise SystemExit(main())
