"""The brain-mask threshold against what it is for: the tumour Dice after preparing a raw head.

    python scripts/brain_threshold_sweep.py glioma:9000 glioma:9001 metastasis:9001   # validation heads
    python scripts/brain_threshold_sweep.py glioma:9000 --brain-net out/new.safetensors --brain-net shipped

For each synthetic raw head (as ``tumorseg bench-prepare`` makes it): prepare it once, then for each
threshold strip it with that mask and segment it with the shipped U-Net; with several ``--brain-net``, each
network's masks of the same prepared head in turn (a paired comparison). Prints the brain Dice, the
millilitres kept outside the brain and missed, and the tumour Dice minus the clean phantom's. The last
line strips with the true brain, which separates the mask's share of the loss from registration and
resampling. Choose on validation heads (9000...), report on test heads (10000...), and write the choice
into the network's file (``brainnet.set_threshold``).
"""

from __future__ import annotations

import argparse

import numpy as np

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def sweep(domain: str, seed: int, segmenter, nets: list[str | None]) -> None:
    from napari_tumorseg.prepare import validate
    from napari_tumorseg.prepare.brain import brain_probability
    from napari_tumorseg.prepare.brainnet import load_brain_net, mask_from_probability, threshold_of

    made = validate.prepare_synthetic_head(seed, domain)  # bench-prepare's head, motions and grids
    prepared, brain, truth, phantom = made.prepared, made.truth_brain, made.truth_label, made.head.phantom
    clean = validate._region_dice(segmenter.segment(phantom.case).labels, phantom.case.label)

    def loss(mask: np.ndarray) -> dict[str, float]:
        found = validate._region_dice(segmenter.segment(prepared.stripped(mask)).labels, truth)
        return {region: round(found[region] - clean[region], 3) for region in found}

    print(f"{domain} {seed}: clean WT / TC / ET {clean}", flush=True)
    for net in nets:
        own = threshold_of(load_brain_net(net)[2])
        print(f"  brain-mask network: {net or 'shipped'} (its own threshold {own})", flush=True)
        probability = brain_probability(prepared.case.images, prepared.case.geometry, net_path=net)
        for threshold in THRESHOLDS:
            mask = mask_from_probability(probability, threshold)
            outside, missed = (mask & ~brain).sum() / 1000, (brain & ~mask).sum() / 1000
            print(f"  threshold {threshold}: brain Dice {validate._dice(mask, brain):.4f} ({outside:.0f} ml outside, "
                  f"{missed:.0f} ml missed); tumour Dice minus clean {loss(mask)}", flush=True)
    print(f"  the true brain: tumour Dice minus clean {loss(brain)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("heads", nargs="+", help="DOMAIN:SEED, e.g. glioma:9000")
    parser.add_argument("--brain-net", action="append", metavar="PATH",
                        help="a brain-mask network to sweep ('shipped' for the shipped one; repeat to compare)")
    args = parser.parse_args()
    nets = [None if net in (None, "shipped") else net for net in (args.brain_net or [None])]
    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.resources import resource_path

    segmenter = Segmenter.from_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    for head in args.heads:
        domain, seed = head.split(":")
        sweep(domain, int(seed), segmenter, nets)


if __name__ == "__main__":
    main()
