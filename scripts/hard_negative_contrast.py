"""What the mined false tumour looks like to the network, beside a real lesion: mean z-score per sequence.

    python scripts/hard_negative_contrast.py out/train-cache/hard-glioma-*.npz --real ../shared/real/TCGA-DU-7294

Rows: the mined false tumour voxels (``tumorseg train --hard-negatives`` writes the file into the slice cache
folder), the phantoms' oedema and tumour-free brain on the same slices; then the real case's oedema, necrosis,
the lesion's border (2 voxels inside), the ring just outside it and the brain away from it. Every value is after
the segmenter's own normalisation (``prepare_case``), as the network sees it. A check, not a fit: nothing here
goes back into the generator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_tumorseg.inference.preprocess import prepare_case
from napari_tumorseg.io.case import MODALITIES
from napari_tumorseg.io.reader import read_case
from napari_tumorseg.training.hard_negatives import HardNegatives

OEDEMA, NECROSIS = 2, 1


def row(name: str, values: np.ndarray) -> str:
    """``values``: (4, n) z-scores of n voxels."""
    cells = " | ".join(f"{values[i].mean():+.2f} ± {values[i].std():.2f}" for i in range(len(MODALITIES)))
    return f"| {name} | {values.shape[1]:,} | {cells} |"


def mined_rows(path: Path) -> list[str]:
    mined = HardNegatives.load(path)
    centre = mined.slices.context * len(MODALITIES)
    parts: dict[str, list[np.ndarray]] = {"false tumour (mined)": [], "phantom oedema, same slices": [],
                                         "phantom brain, same slices": []}
    for images, labels, focus in zip(mined.slices.images, mined.slices.labels, mined.focus):
        planes = images[:, centre:centre + len(MODALITIES)].astype(np.float32).transpose(1, 0, 2, 3)
        inside = np.abs(planes).sum(axis=0) > 0  # the crop's background is 0 on every sequence
        parts["false tumour (mined)"].append(planes[:, focus])
        parts["phantom oedema, same slices"].append(planes[:, labels == OEDEMA])
        parts["phantom brain, same slices"].append(planes[:, inside & (labels == 0) & ~focus])
    return [row(name, np.concatenate(v, axis=1)) for name, v in parts.items()]


def real_rows(folder: Path) -> list[str]:
    case = read_case(folder)
    prepared = prepare_case(case, multiple=16)
    labels, images = prepared.crop.crop(case.label), prepared.images
    tumour = labels > 0
    border = tumour & ~ndimage.binary_erosion(tumour, iterations=2)
    ring = ndimage.binary_dilation(tumour, iterations=2) & ~tumour
    away = (np.abs(images).sum(axis=0) > 0) & ~ndimage.binary_dilation(tumour, iterations=5)
    regions = {"oedema": labels == OEDEMA, "necrosis": labels == NECROSIS, "lesion border (2 voxels in)": border,
               "ring outside (2 voxels)": ring, "brain away from it": away}
    return [row(f"{folder.name} {name}", images[:, mask]) for name, mask in regions.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mined", type=Path, help="a hard-glioma-*.npz written by tumorseg train --hard-negatives")
    parser.add_argument("--real", type=Path, help="a labelled real case folder")
    args = parser.parse_args(argv)
    lines = ["| voxels | n | " + " | ".join(f"{m} z (mean ± sd)" for m in MODALITIES) + " |",
             "|---|---|" + "---|" * len(MODALITIES)]
    lines += mined_rows(args.mined) + (real_rows(args.real) if args.real else [])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
