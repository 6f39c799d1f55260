"""Calibrate the absent-class correction on faintly enhancing phantoms too: do the next cases keep their ET?

Why (issue 13, "the next real case no worse than before adapting"): adapted on the real lower-grade glioma,
whose corrections hold no enhancing tumour, the model with the absent-class correction (``keep_absent``, on by
default, docs/results/keep-absent) still marks only 72 % of the enhancing tumour it marked before on the two
unlabelled real cases. The correction keeps the parent's count on the guard's anchor, whose phantoms enhance
brightly (0.45-1.8 white-matter units of T1c uptake); bright voxels keep their class through a loss of
confidence that erases faint ones, and the real cases' enhancing tumour is faint. ``AdaptConfig.
keep_absent_faint`` adds a second calibration set, 4 slices of phantoms whose tumour enhances faintly
(generator version 7, seeds ``anchors.FAINT_CALIBRATION_SEEDS``, fixed by the first four such draws from 5101,
with no result looked at), and makes the larger of the two sets' shifts, so that neither loses the class.
Nothing is tuned: the targets are the parent's own counts. (Written first with 8 slices; at 03:41, before any
run of clauses 1-2, cut to 4: with 8 the correction took 1.21 s, 7 % of an adaptation, `timing-8-slices/`.)

What was seen before this rule (2026-12-06, 03:33-03:36 UTC, ``python scripts/absent_shift_probe.py 0``,
`docs/results/keep-absent-faint/probe-seed0.txt`): one adaptation on TCGA-DU-7294 (seed 0, five slices spread
over the tumour) with the anchor's correction, then an extra shift added by hand: +1.06 logits, the shift five
other faint phantoms (v7 seeds 7001-7040) ask for, brings the next real cases' ET from 4.33 / 6.75 ml to 5.86 /
8.37 ml (5.68 / 8.69 before adapting), the corrected case's rest WT unchanged (0.916). The rule's real runs
below are the effort protocol's picking rules and seeds, not that probe's.

The protocol is the keep-absent sweep's (``scripts/absent_class_sweep.py`` with ``--faint-next 2``): 4 synthetic
lower-grade gliomas corrected on 5 slices each, scored on their rest and on 8 next cases (2 high-grade gliomas,
2 metastases, and of each 2 whose enhancement is faint). Both arms run here, paired by corrected case; arm
``keep`` is today's default.

The rule, written before the first measurement (2026-12-06, 03:39 UTC). ``keep_absent_faint`` becomes the
default when all three hold:
1. phantoms: over the 8 corrected cases of both seed ranges (36000, 37000), the mean paired difference of the
   case's S (rest (WT + TC) / 2 + mean Dice of its 8 next cases after), faint minus keep, is at least -0.005;
2. the real glioma (``tumorseg experiment effort --out OUT --seeds 1 --device auto --threads 2 --patients 1
   --runs paste --real-seeds 2 --real-runs suggest/active,random/active --keep-absent-faint``, against the same
   command without it, both run in this session): the mean rest WT of each picking rule at most 0.005 below
   the default's, and the unlabelled cases' enhancing tumour after adapting (mean over the runs and the two
   cases) higher than the default's;
3. the CPU: the correction's own time with both sets (``--time`` below: the shipped U-Net, median of 5) at
   most 5 % of the median ``tumorseg bench-adapt --threads 2 --repeats 2`` adapt-and-guard time measured in
   the same session on the same machine.
Whatever it shows is reported: the next cases' enhancing tumour against before adapting (issue 13's target,
5.7 / 8.7 ml), the next phantoms' ET, and what the extra enhancing tumour is made of (its agreement with what
the parent marked).

    python scripts/keep_absent_faint_sweep.py --out docs/results/keep-absent-faint/tune --first-seed 36000
    python scripts/keep_absent_faint_sweep.py --out docs/results/keep-absent-faint/check --first-seed 37000
    python scripts/keep_absent_faint_sweep.py --out docs/results/keep-absent-faint/timing --time
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time

from absent_class_sweep import paired_difference, protocol_arguments, render, save, sweep

ARMS = ["keep", "faint"]


def _timing(args) -> int:
    """The correction's own seconds with both sets: the shipped U-Net, its ET bias lowered, then corrected."""
    import torch
    from keep_absent_sweep import timing_case

    from napari_tumorseg.adapt.anchors import calibration_sets
    from napari_tumorseg.adapt.config import default_config
    from napari_tumorseg.adapt.eval_sets import score_predictions
    from napari_tumorseg.adapt.prior import keep_absent_classes, set_logits
    from napari_tumorseg.io.labels import ET

    loaded, anchor, parent_scores, corrections = timing_case(args)
    calibration = calibration_sets(default_config("active", keep_absent_faint=True), loaded.model.config,
                                   loaded.preprocessing)
    result = {"command": args.command, "anchor_slices": anchor.num_slices,
              "calibration_slices": [s.num_slices for s in calibration]}
    for arm, sets in (("faint", calibration), ("keep", [])):
        seconds, shared, shifts = [], [], []
        for _ in range(5):
            for given in (False, True):
                adapted = copy.deepcopy(loaded.model)
                with torch.no_grad():
                    adapted.head.bias[ET] -= 1.0
                # Given: the anchor's logits computed outside, as the guard must compute them for the full step
                # anyway (since the correction and the guard share that pass, it is no longer the correction's).
                logits = set_logits(adapted, anchor) if given else None
                started = time.perf_counter()
                correction = keep_absent_classes(adapted, corrections, anchor, parent_scores, parent=loaded.model,
                                                 calibration=sets, anchor_logits=logits)
                score_predictions(correction.anchor_labels(), anchor, marked=True)  # what the guard then reads
                (shared if given else seconds).append(time.perf_counter() - started)
            shifts.append(correction.by_name())
        result[arm] = {"seconds": [round(s, 3) for s in seconds], "median_s": round(statistics.median(seconds), 3),
                       "anchor_pass_shared_seconds": [round(s, 3) for s in shared],
                       "anchor_pass_shared_median_s": round(statistics.median(shared), 3), "shifts": shifts}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "timing.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


def main() -> int:
    timing = "--time" in sys.argv
    if timing:
        sys.argv.remove("--time")
    args = protocol_arguments(__doc__.splitlines()[0], "arms", str, ARMS, faint_next=2)
    if timing:
        return _timing(args)
    results = sweep(args, "value", args.arms, lambda arm: {"keep_absent_faint": arm == "faint"})
    results["paired_difference_faint_minus_keep"] = paired_difference(results, "keep", "faint")
    text = render(results, "Absent-class correction calibrated on faintly enhancing phantoms too", "arm",
                  choice=lambda summary: "see the rule (paired, both ranges)")
    differences = results["paired_difference_faint_minus_keep"]
    return save(args, results, text + f"\nS(faint) - S(keep) per corrected case: {differences}\n")


if __name__ == "__main__":
    raise SystemExit(main())
