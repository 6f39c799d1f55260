"""Does giving a prepared head back the grain its resampling removed bring its tumour Dice back?

    python scripts/prepare_noise_probe.py 10002 10006 --json out/prepare-noise.json

The Prepare step's tumour loss on synthetic raw heads (issue 12: gliomas
10002 and 10006 stay more than 0.05 below their clean phantoms) was traced to
smoothness (docs/results/smoothing): interpolation averages neighbouring
voxels, noise included, and the U-Net grows tumour into smooth tissue. This
probe measures each sequence's grain at three stages — the clean phantom, the
raw file as acquired on its own grid, the prepared image — and segments the
prepared head as it is and with white noise added inside the brain to bring
each sequence's grain back to the clean phantom's level ("to clean", an
oracle) or to its raw file's ("to raw", what a product could measure).

Grain: a robust in-plane noise estimate (Immerkær's 3x3 Laplacian-difference
kernel, whose response to white noise of sd s has sd 6 s; median absolute
response / 0.6745 / 6 over the brain eroded by two voxels), divided by the
image's sd over the brain so the levels compare across the z-scoring the
segmenter applies. The shipped U-Net, one pass, CPU. Nothing written but
``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

LAPLACIAN_DIFFERENCE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def grain(image: np.ndarray, brain: np.ndarray) -> float:
    """In-plane noise sd over the brain, relative to the image's sd there."""
    from scipy import ndimage as ndi

    response = ndi.convolve(image.astype(np.float32), LAPLACIAN_DIFFERENCE[None], mode="nearest")
    inside = ndi.binary_erosion(brain, iterations=2)
    return float(np.median(np.abs(response[inside])) / 0.6745 / 6) / float(image[brain].std())


def with_grain(case, brain: np.ndarray, now: dict[str, float], target: dict[str, float], seed: int = 0):
    """``case`` with white noise inside ``brain`` raising each sequence's grain from ``now`` to ``target``."""
    from napari_tumorseg.io.case import Case

    rng = np.random.default_rng(seed)
    images = {}
    for key, image in case.images.items():
        sd = max(target[key] ** 2 - now[key] ** 2, 0.0) ** 0.5 * float(image[brain].std())
        noisy = image + rng.normal(0.0, sd, image.shape).astype(np.float32)
        images[key] = np.where(brain, noisy, 0).astype(np.float32)
    return Case(case.name, images, case.geometry, case.label, case.label_convention, dict(case.sources),
                dict(case.dicom_series))


def probe(seed: int, segmenter) -> dict:
    from napari_tumorseg.prepare import simulate as sim
    from napari_tumorseg.prepare.validate import _region_dice, prepare_synthetic_head

    made = prepare_synthetic_head(seed, "glioma")
    clean = made.head.phantom.case
    clean_brain = np.any([v != 0 for v in clean.images.values()], axis=0)
    prepared = made.prepared.stripped()
    brain = made.prepared.brain
    levels = {"clean": {k: grain(v, clean_brain) for k, v in clean.images.items()},
              "prepared": {k: grain(v, brain) for k, v in prepared.images.items()}, "raw": {}}
    for key, acquisition in made.acquisitions.items():
        raw = sim.acquire(made.head.case.images[key], made.head.case.geometry, acquisition)
        raw_brain = sim.acquire(made.head.brain, made.head.case.geometry, acquisition, labels=True) > 0
        levels["raw"][key] = grain(raw, raw_brain)
    dice = {"clean": _region_dice(segmenter.segment(clean).labels, clean.label),
            "prepared": _region_dice(segmenter.segment(prepared).labels, made.truth_label)}
    for name in ("clean", "raw"):
        restored = with_grain(prepared, brain, levels["prepared"], levels[name])
        dice[f"prepared, grain to {name}"] = _region_dice(segmenter.segment(restored).labels, made.truth_label)
    return {"case": f"glioma_{seed}", "grain": {k: {m: round(g, 4) for m, g in v.items()} for k, v in levels.items()},
            "dice": dice}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seeds", type=int, nargs="+", help="glioma head seeds (the test heads are 10000-10006)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    import torch

    from napari_tumorseg.cli.segment import load_segmenter
    from napari_tumorseg.resources import resource_path

    torch.set_num_threads(args.threads)
    segmenter, _ = load_segmenter(str(resource_path("models", "glioma-unet.safetensors")), "cpu")
    results = []
    for seed in args.seeds:
        results.append(probe(seed, segmenter))
        print(json.dumps(results[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
