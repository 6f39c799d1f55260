"""Replay drawn from one case per step: fewer passes through the network, the same learning?

Why (issue 13, "at most 1 s on a GPU"): on the H200 an adaptation is host-bound, each forward/backward
pass through the network costing about the same whatever its batch (docs/results/gpu-checks). A step's
4 replayed source slices come from the replay set's 2 cases, which differ in size, so they go through
the network as two batches in 97 % of steps (``sampling.grouped_loss``); the user's earlier cases'
slices (memory) add a batch per case drawn. ``AdaptConfig.replay_by_case`` draws each step's replayed
slices from one case picked at random, one batch: about 20 passes fewer per adaptation out of about 120.
It changes which slices a step replays, not how many, so it has to learn as well as the draw across cases.

The protocol is the absent-class sweep's with the faint-enhancement next cases (``scripts/absent_class_sweep.py``
``--faint-next 2``), once with the draw across cases (off) and once by case (on), on the tuning seeds 36000
and on the fresh seeds 37000.

The rule, written before the first measurement (2026-12-04, 20:57 UTC). A speed change is adopted when it
does not cost accuracy, all three of:
1. phantoms: over the 8 corrected cases of both seed ranges, the mean paired difference of the case's S
   (rest (WT + TC) / 2 + mean Dice of its 8 next cases after), on minus off, is at least -0.005;
2. the real glioma (``tumorseg experiment effort ... --real-seeds 2 --real-runs suggest/active,random/active
   --replay-by-case``, against the same command without it, docs/results/effort-real-shipped): the mean rest
   WT of each picking rule at least 0.005 below off's at worst, and the unlabelled cases' enhancing tumour
   after adapting (mean over the runs) at most 0.5 ml below off's;
3. ``tumorseg bench-adapt --threads 2`` on the CPU, 3 interleaved pairs: the median not slower.

    python scripts/replay_by_case_sweep.py --out docs/results/replay-by-case/tune --first-seed 36000
    python scripts/replay_by_case_sweep.py --out docs/results/replay-by-case/check --first-seed 37000
"""

from __future__ import annotations

from absent_class_sweep import paired_difference, protocol_arguments, render, save, sweep


def main() -> int:
    args = protocol_arguments(__doc__.splitlines()[0], "values", str, ["off", "on"], faint_next=2)
    results = sweep(args, "value", args.values, lambda value: {"replay_by_case": value == "on"})
    results["paired_difference_on_minus_off"] = paired_difference(results, "off", "on")
    text = render(results, "Replay by case", "by case", choice=lambda summary: "see the rule (paired, both ranges)")
    return save(args, results, text + f"\nS(on) - S(off) per corrected case: {results['paired_difference_on_minus_off']}\n")


if __name__ == "__main__":
    raise SystemExit(main())
