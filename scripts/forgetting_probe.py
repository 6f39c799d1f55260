"""What one round of adaptation gains on the user's case, against what it forgets of the source domain.

For each metastasis case and each setting (``--variant NAME:field=value,...``, AdaptConfig
fields; ``default`` is the plugin's), the shipped U-Net is adapted on 2 corrected tumour
slices (one round of the effort experiment) and scored:

- gain: the rest of the case's WT Dice (the whole volume, corrected slices left out),
  after minus before;
- forgetting: the pooled Dice drop (mean of WT, TC, ET, and TC alone) on the reference
  source set R of guard_noise_probe (80 slices of the 20 held-out synthetic glioma
  cases), and on the guard's anchor set;
- whether the guard would accept the version (its own verdict on the anchor);
- with ``--interpolate A,B``, the same for the weights interpolated between the
  original and the adapted version (theta0 + a (theta1 - theta0), as WiSE-FT does
  for fine-tuned networks), named NAME@a: a cheap way to trade gain for forgetting.

    python scripts/forgetting_probe.py --variant default --variant w2:replay_weight=2 \\
        [--cases 33000,...] [--threads 2]

Prints a row per case and setting and the means per setting; nothing is written.
"""

from __future__ import annotations

import argparse

import numpy as np
from guard_noise_probe import DESIGNS, _adapt_once, _counts, _drops


def _variant(text: str) -> tuple[str, dict]:
    name, _, fields = text.partition(":")
    overrides = {}
    for item in filter(None, fields.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = int(value) if value.isdigit() else float(value)
    return name, overrides


def _interpolated(original, adapted, fraction: float):
    """A copy of ``adapted`` whose weights lie ``fraction`` of the way from ``original``'s to its own."""
    import copy

    import torch

    mixed = copy.deepcopy(adapted)
    with torch.no_grad():
        start = original.state_dict()
        for key, value in mixed.state_dict().items():
            if value.is_floating_point():
                value.copy_(start[key] + fraction * (value - start[key]))
    return mixed.eval()


def _rest_wt(model, preprocessing, case, corrected) -> float:
    from napari_tumorseg.experiments.effort import segment
    from napari_tumorseg.experiments.effort_scoring import rest_scores

    labels = segment(model, preprocessing, case, "cpu").labels
    return rest_scores(labels, case.label, corrected, case.geometry.spacing)["dice"]["WT"]


def main() -> None:
    import torch

    from napari_tumorseg.adapt.anchors import anchor_set, replay_pools
    from napari_tumorseg.adapt.config import default_config
    from napari_tumorseg.adapt.corrections import slices_with_tumour
    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.resources import resource_path
    from napari_tumorseg.synth.generate import make_case

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="33000,33001,33002,33003,33004,33005,33006,33007")
    parser.add_argument("--variant", action="append", type=_variant, default=[])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--interpolate", type=lambda t: [float(v) for v in t.split(",")], default=[])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    model, preprocessing = loaded.model.eval(), loaded.preprocessing
    reference = anchor_set(model.config, preprocessing, seeds=DESIGNS["R"][0], per_case=DESIGNS["R"][1])
    anchor = anchor_set(model.config, preprocessing)
    reference_before, anchor_before = _counts(model, reference), _counts(model, anchor)
    rng = np.random.default_rng(0)
    variants = args.variant or [("default", {})]
    rows: dict[str, list] = {}
    print("case setting  rest WT before -> after (gain)  R drop mean / TC  anchor drop mean  guard")
    for seed in (int(s) for s in args.cases.split(",")):
        case = make_case("metastasis", seed)
        tumour = slices_with_tumour(case.label)
        corrected = [int(tumour[len(tumour) // 3]), int(tumour[2 * len(tumour) // 3])]
        before = _rest_wt(model, preprocessing, case, corrected)
        for name, overrides in variants:
            config = default_config(**overrides)
            replay = replay_pools(config.replay, model.config, preprocessing)
            adapted, outcome = _adapt_once(seed, model, preprocessing, config, anchor, replay, with_outcome=True)
            versions = [(name, adapted, outcome.report.status != "rejected")]
            versions += [(f"{name}@{a:g}", _interpolated(model, adapted, a), None) for a in args.interpolate]
            for label, version, accepted in versions:
                after = _rest_wt(version, preprocessing, case, corrected)
                r_drop = _drops(reference_before, _counts(version, reference), rng)[0]
                a_drop = _drops(anchor_before, _counts(version, anchor), rng)[0]
                if accepted is None:  # the guard's own rule on the anchor's drops (mean and each region)
                    accepted = max(a_drop.values()) <= config.tolerance
                rows.setdefault(label, []).append((after - before, r_drop["mean"], r_drop["TC"], a_drop["mean"],
                                                   accepted))
                print(f"{seed} {label:10s} {before:.3f} -> {after:.3f} ({after - before:+.3f})  "
                      f"{r_drop['mean']:+.3f} / {r_drop['TC']:+.3f}  {a_drop['mean']:+.3f}  "
                      f"{'accept' if accepted else 'reject'}", flush=True)
    for name, values in rows.items():
        v = np.asarray(values, dtype=float)
        print(f"{name}: gain {v[:, 0].mean():+.4f} ± {v[:, 0].std(ddof=1):.4f}; R drop mean {v[:, 1].mean():+.4f}, "
              f"TC {v[:, 2].mean():+.4f}; anchor drop {v[:, 3].mean():+.4f}; accepted {int(v[:, 4].sum())}/{len(v)}")


if __name__ == "__main__":
    main()
