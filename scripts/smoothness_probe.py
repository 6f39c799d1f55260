"""How a tumour model's Dice moves when a case's images are smoothed or made grainier.

    python scripts/smoothness_probe.py --model shipped --synthetic glioma:10000:10005 \
        --real ../shared/real/TCGA-DU-7294 --json out/smoothness.json

A registered or thick-sliced sequence is smoother than the phantoms a model
learnt from (each interpolation averages neighbouring voxels, noise
included). This probe takes each case as it is, then every image blurred by
a Gaussian of each ``--blur`` sd (voxels; then 0 again outside the brain), then with
Gaussian noise of each ``--noise`` level added (a fraction of the brain's
99th percentile, fixed seed), and prints the whole-volume Dice (WT, TC, ET)
and the predicted tumour volume of each variant, per model. No training,
nothing written but ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _cases(synthetic: list[str], real: list[str]):
    from napari_tumorseg.io.reader import read_case
    from napari_tumorseg.synth.generate import generate_phantom

    for spec in synthetic:
        domain, first, stop = spec.split(":")
        for seed in range(int(first), int(stop)):
            yield "synthetic", generate_phantom(domain, seed, version="2").case
    for folder in real:
        yield "real", read_case(Path(folder))


def _variants(blurs: list[float], noises: list[float]):
    from scipy import ndimage as ndi

    yield "as is", lambda volume, rng: volume
    for sigma in blurs:
        yield f"blur {sigma:g}", lambda volume, rng, s=sigma: ndi.gaussian_filter(volume, s)
    for level in noises:
        def noisy(volume, rng, k=level):
            scale = float(np.percentile(volume[volume != 0], 99))
            return volume + np.float32(k * scale) * rng.standard_normal(volume.shape, dtype=np.float32)
        yield f"noise {level:g}", noisy


def _dice(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    from napari_tumorseg.models.losses import region_dice

    return {region: round(value, 4) for region, value in region_dice(prediction, reference).items()}


def probe(models: dict, cases, variants) -> list[dict]:
    from napari_tumorseg.io.case import Case

    rows = []
    for source, case in cases:
        for variant, change in variants:
            rng = np.random.default_rng(0)
            images = {key: np.where(v != 0, change(np.asarray(v, np.float32), rng), 0).astype(np.float32)
                      for key, v in case.images.items()}
            changed = Case(case.name, images, case.geometry, case.label, case.label_convention)
            for name, segmenter in models.items():
                labels = segmenter.segment(changed).labels
                row = {"case": case.name, "source": source, "variant": variant, "model": name,
                       "predicted_ml": round(float((labels > 0).sum() * np.prod(case.geometry.spacing)) / 1000, 2)}
                if case.label is not None:
                    row["dice"] = _dice(labels, case.label)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def summary(rows: list[dict]) -> None:
    """Mean WT Dice per model and variant over the labelled phantoms, then per real case (change from 'as is')."""
    labelled = [r for r in rows if "dice" in r]
    models = list(dict.fromkeys(r["model"] for r in labelled))
    variants = list(dict.fromkeys(r["variant"] for r in labelled))
    groups = [("synthetic (mean)", lambda r: r["source"] == "synthetic")]
    groups += [(name, lambda r, n=name: r["case"] == n)
               for name in dict.fromkeys(r["case"] for r in labelled if r["source"] == "real")]
    print("| cases | model | " + " | ".join(f"WT {v}" for v in variants) + " |", file=sys.stderr)
    print("|---" * (len(variants) + 2) + "|", file=sys.stderr)
    for group, chosen in groups:
        for model in models:
            means = [np.mean([r["dice"]["WT"] for r in labelled if chosen(r) and r["model"] == model
                              and r["variant"] == v]) for v in variants]
            cells = [f"{m:.3f}" if i == 0 else f"{m:.3f} ({m - means[0]:+.3f})" for i, m in enumerate(means)]
            print(f"| {group} | {model} | " + " | ".join(cells) + " |", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True,
                        help="a model file, or 'shipped' (the bundled U-Net); repeatable")
    parser.add_argument("--synthetic", action="append", default=[], help="DOMAIN:FIRST:STOP phantoms (version 2)")
    parser.add_argument("--real", action="append", default=[], help="a real case folder; repeatable")
    parser.add_argument("--blur", type=float, nargs="*", default=[0.5, 0.7])
    parser.add_argument("--noise", type=float, nargs="*", default=[0.03])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    from napari_tumorseg.cli.segment import load_segmenter
    from napari_tumorseg.resources import resource_path

    torch.set_num_threads(args.threads)
    models = {}
    for model in args.model:
        path = str(resource_path("models", "glioma-unet.safetensors")) if model == "shipped" else model
        models[model if model == "shipped" else Path(model).stem] = load_segmenter(path, "cpu")[0]
    rows = probe(models, list(_cases(args.synthetic, args.real)), list(_variants(args.blur, args.noise)))
    summary(rows)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
