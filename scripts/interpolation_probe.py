"""What resampling alone costs the tumour Dice: each raw acquisition made without motion and brought back.

    python scripts/interpolation_probe.py glioma:10002 glioma:10000

For each synthetic head, T1, T2 and FLAIR are acquired as ``tumorseg bench-prepare`` acquires them (their
raw grids, tilted; the FLAIR on 5 mm slices with its slice profile) but without any head motion, then
brought back onto the clean grid, and the shipped U-Net segments the result. Printed: the tumour Dice minus
the clean phantom's, (1) with one sequence at a time brought back linearly, the others clean, and (2) with
all three brought back by each interpolator. No registration and no brain mask is involved, so what is
left is the images' resampling (docs/results/prepare-interpolation).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

KINDS = ("linear", "bspline", "lanczos")
SEQUENCES = ("flair", "t1", "t2")


def _back(volume: np.ndarray, source, target, kind: str) -> np.ndarray:
    import SimpleITK as sitk

    from napari_tumorseg.prepare.grids import RigidTransform, to_sitk_image

    interpolator = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline,
                    "lanczos": sitk.sitkLanczosWindowedSinc}[kind]
    moving = to_sitk_image(np.asarray(volume, np.float32), source)
    reference = to_sitk_image(np.zeros(target.canonical_shape, np.uint8), target)
    out = sitk.Resample(moving, reference, RigidTransform.identity().to_sitk(), interpolator, 0.0,
                        moving.GetPixelID())
    return np.maximum(sitk.GetArrayFromImage(out), 0)


def probe(domain: str, seed: int, segmenter) -> None:
    from napari_tumorseg.prepare import simulate as sim
    from napari_tumorseg.prepare import validate
    from napari_tumorseg.prepare.grids import RigidTransform
    from napari_tumorseg.synth.head import make_head

    case = make_head(domain, seed).phantom.case
    geometry = case.geometry
    clean = validate._region_dice(segmenter.segment(case).labels, case.label)
    print(f"{domain} {seed}: clean {clean}", flush=True)
    raw = {}
    for key in SEQUENCES:
        spacing, tilt, axes, thickness = validate.RAW_GRIDS[key]
        grid = sim.grid_over(geometry, spacing, (tilt * 0.7, -tilt * 0.5, tilt * 0.3), (0, 0, 0), axes)
        acquisition = sim.Acquisition(RigidTransform.identity(), grid, thickness)
        raw[key] = (grid, sim.acquire(case.images[key], geometry, acquisition))

    def change(images: dict[str, np.ndarray]) -> str:
        found = validate._region_dice(segmenter.segment(replace(case, images={**case.images, **images})).labels,
                                      case.label)
        return ", ".join(f"{region} {found[region] - clean[region]:+.3f}" for region in found)

    def brought_back(key: str, kind: str) -> np.ndarray:
        grid, volume = raw[key]
        return np.where(case.images[key] != 0, _back(volume, grid, geometry, kind), 0).astype(np.float32)

    for key in SEQUENCES:
        print(f"  {key} alone, back by linear: {change({key: brought_back(key, 'linear')})}", flush=True)
    for kind in KINDS:
        print(f"  all three, back by {kind}: {change({key: brought_back(key, kind) for key in SEQUENCES})}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("heads", nargs="+", help="DOMAIN:SEED, e.g. glioma:10002")
    args = parser.parse_args()
    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.resources import resource_path

    segmenter = Segmenter.from_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    for head in args.heads:
        domain, seed = head.split(":")
        probe(domain, int(seed), segmenter)


if __name__ == "__main__":
    main()
