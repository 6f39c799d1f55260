"""Where a model marks tumour that is not there: a development tool for the generator and the models.

    python scripts/false_positives.py phantoms MODEL --seeds 10006,10013 [--generator-version 2]
    python scripts/false_positives.py real MODEL [MODEL ...] [--cases ../shared/real]

``phantoms``: every predicted component of at least 0.3 ml that lies mostly off the phantom's tumour,
with its volume, place, classes and the mean membership of each normal structure the generator drew
there (rim, white-matter spots, vessels...), so a false positive can be traced to what made it.

``real``: per unlabelled real case and model, the tumour volume away from the main lesion (outside the
largest connected component) and the number of components.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

STRUCTURES = ("ventricle", "rim", "wmh", "choroid", "flow_void", "vessel", "dura", "infratentorial")
MIN_ML, OFF_TUMOUR = 0.3, 0.5


def _components(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    components, count = ndimage.label(labels > 0, structure=np.ones((3, 3, 3), bool))
    return components, np.bincount(components.ravel(), minlength=count + 1)[1:]


def _on_points(values: np.ndarray, flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    volume = np.zeros(shape, np.float32)
    volume.reshape(-1)[flat] = values
    return volume


def phantoms(model: str, seeds: list[int], version: str) -> None:
    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.synth.generate import generate_phantom

    segmenter = Segmenter.from_checkpoint(model)
    for seed in seeds:
        phantom = generate_phantom("glioma", seed, version=version)
        shape, truth = phantom.case.label.shape, phantom.case.label > 0
        labels = segmenter.segment(phantom.case).labels
        maps = {name: _on_points(getattr(phantom.structures, name), phantom.points.flat, shape) for name in STRUCTURES}
        components, sizes = _components(labels)
        print(f"glioma {seed} (version {version}): {len(sizes)} components")
        for index in np.flatnonzero(sizes >= MIN_ML * 1000) + 1:
            member = components == index
            on_tumour = float((member & truth).sum() / member.sum())
            if on_tumour > OFF_TUMOUR:
                continue
            z, y, x = (int(c.mean()) for c in np.nonzero(member))
            classes = np.bincount(labels[member], minlength=4)[1:]
            where = " ".join(f"{name} {maps[name][member].mean():.2f}" for name in STRUCTURES)
            print(f"  {member.sum() / 1000:.1f} ml at z{z} y{y} x{x}, NCR/ED/ET voxels {classes.tolist()}, "
                  f"{on_tumour:.2f} on tumour; {where}")


def real(models: list[str], cases: Path) -> None:
    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.io.reader import read_case

    segmenters = {model: Segmenter.from_checkpoint(model) for model in models}
    for folder in sorted(p for p in cases.iterdir() if p.is_dir()):
        case = read_case(folder)
        if case.label is not None:
            continue  # with a reference, `tumorseg evaluate` scores false positives itself
        for model, segmenter in segmenters.items():
            _, sizes = _components(segmenter.segment(case).labels)
            away = (sizes.sum() - sizes.max()) / 1000 if sizes.size else 0.0
            print(f"{case.name}  {model}: WT {sizes.sum() / 1000:.1f} ml, {away:.1f} ml away from the main lesion "
                  f"in {max(len(sizes) - 1, 0)} components")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    on_phantoms = commands.add_parser("phantoms")
    on_phantoms.add_argument("model")
    on_phantoms.add_argument("--seeds", required=True, help="comma-separated glioma seeds")
    on_phantoms.add_argument("--generator-version", default="2")
    on_real = commands.add_parser("real")
    on_real.add_argument("models", nargs="+")
    on_real.add_argument("--cases", type=Path, default=Path("../shared/real"))
    args = parser.parse_args()
    if args.command == "phantoms":
        phantoms(args.model, [int(s) for s in args.seeds.split(",")], args.generator_version)
    else:
        real(args.models, args.cases)


if __name__ == "__main__":
    main()
