"""How the lowest brain slices look to the segmenter, real cases against phantoms: a diagnostic, not a fit.

    python scripts/posterior_fossa_probe.py --real ../shared/real --synthetic glioma:0:6 [--json out/pf.json]
    python scripts/posterior_fossa_probe.py --synthetic glioma:10000:10004 --models A,B --falloff 0.7

Each modality is z-scored over the brain as the segmenter does (``plan_preprocessing``). The brain is then cut
into 5 mm bands counted up from its lowest slice (the cerebellum and brainstem fill the first few), and for
each band the median and the 90th percentile of every modality's z-score are printed, tumour left out where
a reference says where it is. Several U-Net trainings mark the real glioma's lowest cerebellum as tumour while
none does so on phantoms; this shows whether those slices look different to the network (brighter FLAIR, a
darker T1, a bias along the head's axis), so that a generator change can be argued from anatomy and MR physics
and then judged on phantoms and real cases. The real figures only check: nothing here sets a generator value.

With ``--models``: a stress test on phantoms instead. Every sequence of each phantom is darkened towards the
bottom of the brain by one shared coil fall-off (gain ``exp(-falloff * share)``, the share growing from 0 at
40 mm above the brain's lowest slice to 1 there), and each model segments it clean and darkened: WT Dice and
the false tumour in those lowest 40 mm. A way to look for the real cerebellum failure without a real case.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_tumorseg.inference.preprocess import case_channels, plan_preprocessing
from napari_tumorseg.io.case import Case
from napari_tumorseg.io.case import MODALITIES

BAND_MM, BANDS, MID_FRACTION = 5.0, 7, 0.5


def band_figures(case: Case) -> dict[str, dict[str, list[float]]]:
    """Band name -> modality -> [median, p90] of the z-scored brain (tumour left out) in that band."""
    channels = case_channels(case)
    plan = plan_preprocessing(channels, multiple=16)
    brain = np.zeros(next(c for c in channels if c is not None).shape, bool)
    for volume in channels:
        if volume is not None:
            brain |= volume != 0
    keep = brain if case.label is None else brain & (case.label == 0)
    slices = np.flatnonzero(brain.any(axis=(1, 2)))
    thickness = float(case.geometry.spacing[0])
    per_band = max(int(round(BAND_MM / thickness)), 1)
    bands = {f"{i * BAND_MM:.0f}-{(i + 1) * BAND_MM:.0f} mm": slices[0] + np.arange(i * per_band, (i + 1) * per_band)
             for i in range(BANDS)}
    middle = slices[0] + int(MID_FRACTION * (slices[-1] - slices[0]))
    bands["mid-brain band"] = middle + np.arange(per_band)
    figures: dict[str, dict[str, list[float]]] = {}
    for name, zs in bands.items():
        figures[name] = {}
        for index, volume in enumerate(channels):
            if volume is None:
                continue
            values = volume[zs][keep[zs]]
            z = (values - plan.mean[index]) / plan.std[index]
            figures[name][MODALITIES[index]] = [round(float(np.median(z)), 2), round(float(np.percentile(z, 90)), 2)]
        in_plane_mm2 = float(case.geometry.spacing[1] * case.geometry.spacing[2])
        figures[name]["area_cm2"] = [round(float(keep[zs].sum()) / len(zs) * in_plane_mm2 / 100, 1)]
    return figures


STRESS_MM = 40.0


def stress(models: list[str], cases, falloff: float) -> None:
    from dataclasses import replace

    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.models.losses import region_dice

    segmenters = {Path(m).stem: Segmenter.from_checkpoint(m) for m in models}
    for name, case in cases:
        brain = np.any([v != 0 for v in case.images.values()], axis=0)
        bottom = int(np.flatnonzero(brain.any(axis=(1, 2)))[0])
        height = (np.arange(brain.shape[0]) - bottom) * float(case.geometry.spacing[0])
        gain = np.exp(-falloff * np.clip(1.0 - height / STRESS_MM, 0.0, 1.0)).astype(np.float32)[:, None, None]
        darkened = replace(case, images={m: (v * gain).astype(np.float32) for m, v in case.images.items()})
        lowest = height < STRESS_MM
        for model, segmenter in segmenters.items():
            cells = []
            for version, image in (("clean", case), ("darkened", darkened)):
                labels = segmenter.segment(image).labels
                false = (labels > 0) & (case.label == 0)
                voxel_ml = float(np.prod(case.geometry.spacing)) / 1000
                wt = region_dice(labels.reshape(-1), case.label.reshape(-1))["WT"]
                cells.append(f"{version} WT {wt:.3f}, {false[lowest].sum() * voxel_ml:.1f} ml false low")
            print(f"{name}  {model}: " + "; ".join(cells), flush=True)


def _cases(args: argparse.Namespace):
    from napari_tumorseg.io.reader import read_case
    from napari_tumorseg.synth.generate import make_case

    if args.real:
        for folder in sorted(p for p in args.real.iterdir() if p.is_dir()):
            yield f"real {folder.name}", read_case(folder)
    for spec in args.synthetic:
        domain, first, stop = spec.split(":")
        for seed in range(int(first), int(stop)):
            yield f"{domain} {seed}", make_case(domain, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, help="a folder of real case folders")
    parser.add_argument("--synthetic", action="append", default=[], help="DOMAIN:FIRST:STOP phantoms (repeatable)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--models", help="comma-separated checkpoints: run the fall-off stress test instead")
    parser.add_argument("--falloff", type=float, default=0.7, help="log-gain lost at the brain's bottom (stress)")
    args = parser.parse_args()
    if args.models:
        stress(args.models.split(","), _cases(args), args.falloff)
        return
    everything = {}
    for name, case in _cases(args):
        everything[name] = figures = band_figures(case)
        print(name)
        for band, per_modality in figures.items():
            cells = "  ".join(f"{m} {v[0]:+.2f}/{v[1]:+.2f}" for m, v in per_modality.items() if m != "area_cm2")
            print(f"  {band:>15}: {cells}  ({per_modality['area_cm2'][0]} cm2 per slice)")
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
