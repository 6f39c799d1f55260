"""Where a model marks tumour that is not there: a development tool for the generator and the models.

    python scripts/false_positives.py phantoms MODEL --seeds 10006,10013 [--generator-version 2]
    python scripts/false_positives.py real MODEL [MODEL ...] [--cases ../shared/real]
    python scripts/false_positives.py labelled MODEL [MODEL ...] --case ../shared/real/TCGA-DU-7294

``phantoms``: every predicted component of at least 0.3 ml that lies mostly off the phantom's tumour,
with its volume, place, classes and the mean membership of each normal structure the generator drew
there (rim, white-matter spots, vessels...), so a false positive can be traced to what made it.

``real``: per unlabelled real case and model, the tumour volume away from the main lesion (outside the
largest connected component) and the number of components.

``labelled``: on a case with a reference, each false component (at least 0.3 ml, mostly off the reference
dilated by 2 voxels): its place, its classes, what each sequence looks like there to the network (the mean
z-score over the component, beside the reference's necrosis and oedema and the tumour-free brain), and how
much of it is still marked when one sequence at a time is left out (the networks are trained to segment from
any subset): the sequences whose absence removes it are the ones that make it.
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


def labelled(models: list[str], folder: Path) -> None:
    from napari_tumorseg.inference.preprocess import case_channels, plan_preprocessing
    from napari_tumorseg.inference.segmenter import Segmenter
    from napari_tumorseg.io.case import MODALITIES
    from napari_tumorseg.io.reader import read_case

    case = read_case(folder)
    if case.label is None:
        raise SystemExit(f"{folder}: no reference mask")
    plan = plan_preprocessing(case_channels(case), multiple=16)
    zscored = {m: (case.images[m] - plan.mean[i]) / plan.std[i] for i, m in enumerate(MODALITIES) if m in case.images}
    brain = np.any([v != 0 for v in case.images.values()], axis=0)
    near_truth = ndimage.binary_dilation(case.label > 0, iterations=2)
    regions = {"NCR": case.label == 1, "ED": case.label == 2, "brain": brain & ~near_truth}
    looks = {name: " ".join(f"{m} {zscored[m][where].mean():+.2f}" for m in zscored)
             for name, where in regions.items() if where.any()}
    print(f"{case.name}: mean z-score per sequence " + "; ".join(f"{name} {text}" for name, text in looks.items()))
    for model in models:
        segmenter = Segmenter.from_checkpoint(model)
        labels = segmenter.segment(case).labels
        components, sizes = _components(labels * ~near_truth)
        without = {m: segmenter.segment(_without(case, m)).labels > 0 for m in case.images}
        print(f"{model}: {sizes.sum() / 1000:.1f} ml marked off the reference in {len(sizes)} components")
        for index in np.flatnonzero(sizes >= MIN_ML * 1000) + 1:
            member = components == index
            zs = np.flatnonzero(member.any(axis=(1, 2)))
            classes = np.bincount(labels[member], minlength=4)[1:]
            looks = " ".join(f"{m} {zscored[m][member].mean():+.2f}" for m in zscored)
            kept = " ".join(f"{m} {(without[m] & member).sum() / member.sum():.2f}" for m in without)
            print(f"  {member.sum() / 1000:.1f} ml, slices {zs[0]}-{zs[-1]}, NCR/ED/ET voxels {classes.tolist()}; "
                  f"looks {looks}; still marked without {kept}")


def _without(case, modality: str):
    from dataclasses import replace

    return replace(case, images={m: v for m, v in case.images.items() if m != modality})


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
    on_labelled = commands.add_parser("labelled")
    on_labelled.add_argument("models", nargs="+")
    on_labelled.add_argument("--case", type=Path, default=Path("../shared/real/TCGA-DU-7294"))
    args = parser.parse_args()
    if args.command == "phantoms":
        phantoms(args.model, [int(s) for s in args.seeds.split(",")], args.generator_version)
    elif args.command == "labelled":
        labelled(args.models, args.case)
    else:
        real(args.models, args.cases)


if __name__ == "__main__":
    main()
