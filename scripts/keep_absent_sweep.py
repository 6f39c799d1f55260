"""Correct the output bias of a class the corrections lack: does the adapted model keep the next cases' ET?

Why (issue 13, "the next real case no worse than before adapting"): adapted on a real lower-grade glioma,
whose corrections hold no enhancing tumour, the model loses most of the enhancing tumour it found on the next
real cases (GLI-00001 5.7 -> 1.6 ml, MET-00110 8.7 -> 3.2 ml, mean of 4 runs). Ten remedies were tried; the
most any kept is 76 % (the guard's shrink limit, which refuses the versions that mark less, and with them
what the corrected case taught). Class-incremental learning meets the same shift — the output layer favours
the classes just taught — and corrects it on the last layer's bias with a small held-back set (BiC, Wu et al.,
CVPR 2019), leaving the features as learnt. ``AdaptConfig.keep_absent`` does that with the guard's anchor:
after adapting, the head's bias of each class no corrected slice holds is moved so that the new version
marks as many anchor voxels of it as its parent (``adapt.prior``). Nothing is tuned: the target (the
parent's anchor count) is the only value, and it is the guard's own set.

The protocol is the decoder-only and replay-distill sweeps' (``scripts/absent_class_sweep.py`` with
``--faint-next 2``): 4 synthetic lower-grade gliomas (no enhancing tumour) corrected on 5 slices each,
scored on their rest and on 8 next cases (2 high-grade gliomas, 2 metastases, and of each 2 whose
enhancement is faint). Both arms run here, paired by corrected case.

The rule, written before the first measurement (2026-12-06, 01:34 UTC). ``keep_absent`` becomes the default
when all three hold:
1. phantoms: over the 8 corrected cases of both seed ranges, the mean paired difference of the case's S
   (rest (WT + TC) / 2 + mean Dice of its 8 next cases after), keep minus default, is at least -0.005;
2. the real glioma (``tumorseg experiment effort --out OUT --seeds 1 --device auto --threads 2 --patients 1
   --runs paste --real-seeds 2 --real-runs suggest/active,random/active --keep-absent``, against the same
   command without ``--keep-absent``, both run in this session): the mean rest WT of each picking rule at
   most 0.005 below the default's, and the unlabelled cases' enhancing tumour after adapting (mean over the
   runs and the two cases) higher than the default's;
3. the CPU: the correction's own time (``--time`` below: the shipped U-Net, the product's anchor, median of
   5) at most 5 % of the median ``tumorseg bench-adapt --threads 2 --repeats 2`` adapt-and-guard time
   measured in the same session on the same machine.
Whatever it shows is reported, the next cases' enhancing tumour volume (the reason for trying) included, and
whether issue 13's target (the next real cases no worse than before adapting: 5.7 / 8.7 ml) is met.

    python scripts/keep_absent_sweep.py --out docs/results/keep-absent/tune --first-seed 36000
    python scripts/keep_absent_sweep.py --out docs/results/keep-absent/check --first-seed 37000
    python scripts/keep_absent_sweep.py --out docs/results/keep-absent/timing --time
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time

from absent_class_sweep import paired_difference, protocol_arguments, render, save, sweep

ARMS = ["default", "keep"]


def timing_case(args):
    """What the correction's timing runs on: the shipped U-Net, the product's anchor and the parent's scores on it,
    and 5 slices of the synthetic glioma ``args.first_seed`` with its enhancing tumour relabelled necrosis."""
    from napari_tumorseg.adapt.anchors import anchor_set
    from napari_tumorseg.adapt.corrections import Corrections, case_corrections, slices_with_tumour
    from napari_tumorseg.adapt.eval_sets import score_set
    from napari_tumorseg.experiments.common import setup_torch
    from napari_tumorseg.io.labels import ET
    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.resources import resource_path
    from napari_tumorseg.synth import generate_phantom

    setup_torch(args.threads, "cpu")
    loaded = load_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    anchor = anchor_set(loaded.model.config, loaded.preprocessing)
    parent_scores = score_set(loaded.model, anchor, marked=True)
    case = generate_phantom("glioma", args.first_seed).case
    picks = slices_with_tumour(case.label, limit=5)
    labels = case.label.copy()
    labels[labels == ET] = 1  # no corrected slice holds ET, so the correction runs
    corrections = Corrections.of(case_corrections(case, labels, picks, model_config=loaded.model.config,
                                                  preprocessing=loaded.preprocessing, reference_slices=0))
    return loaded, anchor, parent_scores, corrections


def _timing(args) -> int:
    """The correction's own seconds: the shipped U-Net adapted nowhere, its ET bias lowered, then corrected."""
    import torch

    from napari_tumorseg.adapt.prior import keep_absent_classes
    from napari_tumorseg.io.labels import ET

    loaded, anchor, parent_scores, corrections = timing_case(args)
    seconds, shifts = [], []
    for _ in range(5):
        adapted = copy.deepcopy(loaded.model)
        with torch.no_grad():
            adapted.head.bias[ET] -= 1.0
        started = time.perf_counter()
        shifts.append(keep_absent_classes(adapted, corrections, anchor, parent_scores).by_name())
        seconds.append(time.perf_counter() - started)
    result = {"command": args.command, "anchor_slices": anchor.num_slices, "seconds": [round(s, 3) for s in seconds],
              "median_s": round(statistics.median(seconds), 3), "shifts": shifts}
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
    results = sweep(args, "value", args.arms, lambda arm: {"keep_absent": arm == "keep"})
    results["paired_difference_keep_minus_default"] = paired_difference(results, "default", "keep")
    text = render(results, "Bias correction of the classes the corrections lack", "arm",
                  choice=lambda summary: "see the rule (paired, both ranges)")
    differences = results["paired_difference_keep_minus_default"]
    return save(args, results, text + f"\nS(keep) - S(default) per corrected case: {differences}\n")


if __name__ == "__main__":
    raise SystemExit(main())
