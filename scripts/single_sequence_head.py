"""A clinical-style single-sequence scan with its skull, through `tumorseg segment`, scored against its truth.

    python scripts/single_sequence_head.py glioma:10003 --sequence t1c --out out/single

No real skull-on scan is available to the project, so this is its synthetic stand-in: the raw head of
``tumorseg bench-prepare`` (skull and scalp, moved, on its own grid), but written with one sequence only.
``tumorseg segment`` then runs on the folder exactly as a user would run it (its warnings are printed),
and the mask it writes is scored against the phantom's truth on the same grid.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("head", help="DOMAIN:SEED, e.g. glioma:10003")
    parser.add_argument("--sequence", default="t1c", choices=("flair", "t1", "t1c", "t2"))
    parser.add_argument("--out", type=Path, default=Path("out/single"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import nibabel as nib

    from napari_tumorseg.cli import main as tumorseg
    from napari_tumorseg.io.case import Geometry
    from napari_tumorseg.prepare import simulate as sim
    from napari_tumorseg.prepare import validate
    from napari_tumorseg.prepare.grids import world_points
    from napari_tumorseg.synth.head import make_head

    domain, seed = args.head.split(":")
    head = make_head(domain, int(seed))
    geometry = head.case.geometry
    rng = np.random.default_rng([0, int(seed)])  # bench-prepare's motions and grids for this head
    acquisitions = validate._acquisitions(geometry, world_points(geometry, head.brain).mean(axis=0), rng,
                                          header_reference=False)
    folder = args.out / head.case.name
    if folder.exists():
        raise SystemExit(f"{folder}: already exists; choose another --out")
    validate._write_raw(head.case, {args.sequence: acquisitions[args.sequence]}, folder)
    mask_path = args.out / f"{head.case.name}_{args.sequence}_mask.nii.gz"
    code = tumorseg(["segment", str(folder), "-o", str(mask_path), "--overwrite", "--quiet",
                     "--threads", str(args.threads)])
    if code != 0:
        raise SystemExit(code)
    mask = nib.load(mask_path)
    grid = Geometry(mask.affine, mask.shape)
    predicted = grid.to_canonical(np.asarray(mask.dataobj))
    truth = sim.acquire(head.case.label, geometry, acquisitions[args.sequence], labels=True)
    ml = float(np.prod(grid.spacing)) / 1000
    print(f"{head.case.name}, {args.sequence} only: truth {(truth > 0).sum() * ml:.1f} ml, marked "
          f"{(predicted > 0).sum() * ml:.1f} ml; Dice {validate._region_dice(predicted, truth)}")


if __name__ == "__main__":
    main()
