"""Where a model misses a labelled case's tumour: how much, and how far inside the lesion's edge.

    python scripts/missed_border.py ../shared/real/TCGA-DU-7294 out/hard/parent-unet.safetensors out/hard/unet-H.safetensors

Per model (one pass, the product's clean-up): the reference tumour voxels it leaves unmarked, split by their
distance from the lesion's edge (≤ 2 mm, 2–4 mm, more): a border lost evenly shows as almost all within 2 mm.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_tumorseg.inference.segmenter import Segmenter
from napari_tumorseg.io.reader import read_case


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", type=Path, help="a case folder with a reference mask")
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args(argv)
    case = read_case(args.case)
    tumour = case.label > 0
    depth = ndimage.distance_transform_edt(tumour, sampling=case.geometry.spacing)  # mm to the nearest non-tumour
    ml = float(np.prod(case.geometry.spacing)) / 1000.0
    print("| model | missed ml | ≤ 2 mm from the edge | 2–4 mm | > 4 mm |\n|---|---|---|---|---|")
    for model in args.models:
        marked = Segmenter.from_checkpoint(model, device="cpu", mirror="none").segment(case).labels > 0
        inside = depth[tumour & ~marked]
        print(f"| {model.stem} | {inside.size * ml:.1f} | {np.mean(inside <= 2):.2f} | "
              f"{np.mean((inside > 2) & (inside <= 4)):.2f} | {np.mean(inside > 4):.2f} |")


if __name__ == "__main__":
    main()
