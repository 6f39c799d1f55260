"""Is the guard's per-version bound (0.02 anchor Dice) measured on a set that stands for the source domain?

The guard scores source slices before and after each adaptation and rejects a
version whose pooled Dice, of the mean or of any one region, fell by more than
the tolerance. This probe adapts the shipped U-Net on a few metastasis cases
(the plugin's defaults, 2 corrected tumour slices each: one round of the effort
experiment) and scores every version on several source-slice designs (``DESIGNS``:
the anchor used until now, candidates, and a reference ``R`` of 80 slices of the
20 synthetic glioma evaluation cases, never trained on). For each design it
prints the drop per region, the bootstrap SD of the mean drop over its slices and
the guard's verdict; at the end, how often each design's verdict agrees with R's
and how far its mean drop lies from R's.

    python scripts/guard_noise_probe.py [--cases 33000,33001,...] [--threads 2]

The verdicts apply to the same versions (the adaptation does not depend on the
set scored). Prints only; nothing is written. The decision it served is in
docs/results/guard-anchor/README.md.
"""

from __future__ import annotations

import argparse

import numpy as np

REGIONS = ("WT", "TC", "ET")
BOOTSTRAP = 1000


def _counts(model, evaluation):
    """(slices, regions, 3) counts per slice and region: overlap, predicted, reference voxels."""
    from napari_tumorseg.adapt.training import predict_labels
    from napari_tumorseg.io.labels import REGIONS as CLASSES

    rows = []
    for inputs, labels in evaluation.groups:
        for prediction, reference in zip(predict_labels(model, inputs), np.asarray(labels)):
            row = []
            for region in REGIONS:
                p, r = np.isin(prediction, CLASSES[region]), np.isin(reference, CLASSES[region])
                row.append((np.count_nonzero(p & r), np.count_nonzero(p), np.count_nonzero(r)))
            rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def _pooled(counts):
    """Pooled Dice per region and their mean (as the guard's score_set: an empty region scores 1)."""
    overlap, predicted, reference = counts.sum(axis=0).T
    dice = np.where(predicted + reference > 0, 2 * overlap / np.maximum(predicted + reference, 1), 1.0)
    return {**dict(zip(REGIONS, dice)), "mean": float(dice.mean())}


def _drops(before, after, rng):
    """The drop per region (before - after) and its bootstrap SD over the slices."""
    b, a = _pooled(before), _pooled(after)
    drop = {k: b[k] - a[k] for k in b}
    samples = {k: [] for k in drop}
    for _ in range(BOOTSTRAP):
        index = rng.integers(0, len(before), len(before))
        bb, aa = _pooled(before[index]), _pooled(after[index])
        for k in drop:
            samples[k].append(bb[k] - aa[k])
    return drop, {k: float(np.std(v)) for k, v in samples.items()}


DESIGNS = {  # name -> (seeds, slices per case)
    "A": (tuple(range(5001, 5005)), 4),  # the anchor the guard used until now
    "B": (tuple(range(5001, 5017)), 1),
    "C": (tuple(range(5001, 5017)), 2),
    "R": (tuple(range(10000, 10020)), 4),  # the reference: the synthetic glioma evaluation cases
}


def _verdict(drop: dict, tolerance: float) -> str:
    return "reject" if max(drop.values()) > tolerance else "accept"


def _adapt_once(seed: int, model, preprocessing, config, anchor, replay, with_outcome: bool = False):
    """The model adapted on 2 tumour slices (a third and two thirds through the tumour) of metastasis ``seed``."""
    from napari_tumorseg.adapt.corrections import Corrections, case_corrections, slices_with_tumour
    from napari_tumorseg.adapt.run import run_adaptation
    from napari_tumorseg.jobs import drive
    from napari_tumorseg.synth.generate import make_case

    case = make_case("metastasis", seed)
    tumour = slices_with_tumour(case.label)
    picks = [int(tumour[len(tumour) // 3]), int(tumour[2 * len(tumour) // 3])]
    corrections = Corrections.of(case_corrections(case, case.label, picks, model_config=model.config,
                                                  preprocessing=preprocessing, reference_slices=0))
    outcome = drive(run_adaptation(model, corrections, config, anchor=anchor, replay_pools=replay))
    return (outcome.model.eval(), outcome) if with_outcome else outcome.model.eval()


def main() -> None:
    import torch

    from napari_tumorseg.adapt.anchors import anchor_set, replay_pools
    from napari_tumorseg.adapt.config import default_config
    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.resources import resource_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="33000,33001,33002,33003,33004,33005,33006,33007")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    model, preprocessing = loaded.model.eval(), loaded.preprocessing
    config = default_config()
    sets = {name: anchor_set(model.config, preprocessing, seeds=seeds, per_case=per_case)
            for name, (seeds, per_case) in DESIGNS.items()}
    before = {name: _counts(model, s) for name, s in sets.items()}
    replay = replay_pools(config.replay, model.config, preprocessing)
    rng = np.random.default_rng(0)
    print("; ".join(f"{n}: {len(c)} slices of {len(DESIGNS[n][0])} cases" for n, c in before.items()))
    print("case design  drop WT / TC / ET / mean (± bootstrap SD of the mean)  verdict")
    tally = {name: {"agree": 0, "abs_error": []} for name in DESIGNS if name != "R"}
    for seed in (int(s) for s in args.cases.split(",")):
        adapted = _adapt_once(seed, model, preprocessing, config, sets["A"], replay)
        drops = {name: _drops(before[name], _counts(adapted, s), rng) for name, s in sets.items()}
        truth = _verdict(drops["R"][0], config.tolerance)
        for name, (drop, spread) in drops.items():
            verdict = _verdict(drop, config.tolerance)
            print(f"{seed} {name}  " + " / ".join(f"{drop[k]:+.3f}" for k in (*REGIONS, "mean"))
                  + f" (± {spread['mean']:.3f})  {verdict}")
            if name != "R":
                tally[name]["agree"] += verdict == truth
                tally[name]["abs_error"].append(abs(drop["mean"] - drops["R"][0]["mean"]))
    for name, t in tally.items():
        print(f"design {name}: verdict agrees with R on {t['agree']} of {len(t['abs_error'])} versions; "
              f"mean |mean drop - R's| {np.mean(t['abs_error']):.4f}")


if __name__ == "__main__":
    main()
