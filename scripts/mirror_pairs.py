"""Do the predicted tumour components come in left-right mirror pairs — on real cases, and on phantoms?

    python scripts/mirror_pairs.py > docs/results/mirror-pairs/log.txt

For each component of at least 0.3 ml that the shipped U-Net marks (one pass, clean-up on): the Dice of its
mirror image (about the brain's middle along x, the canonical left-right axis) with the best other component,
and with itself ("self"); printed for every false component of a phantom and for every pair above 0.2. Real
cases: the three in ../shared/real; phantoms: glioma 11000–11019, metastasis 21000–21019 (decision seeds).
A development probe: it shows whether phantoms can teach a rule about symmetric false tumour.
"""
import sys

import numpy as np
from scipy import ndimage
from napari_tumorseg.inference.segmenter import Segmenter
from napari_tumorseg.synth.generate import make_case
from napari_tumorseg.io.reader import read_case

seg = Segmenter.from_checkpoint("resources/models/glioma-unet.safetensors")
ST = np.ones((3, 3, 3), bool)

def mirror_scores(labels, brain, axis):
    comps, n = ndimage.label(labels > 0, structure=ST)
    sizes = np.bincount(comps.ravel(), minlength=n + 1)
    idx = np.nonzero(brain.any(axis=tuple(a for a in range(3) if a != axis)))[0]
    centre = (idx.min() + idx.max()) / 2.0
    out = []
    for i in range(1, n + 1):
        if sizes[i] < 300:
            continue
        m = comps == i
        coords = np.nonzero(m)
        flipped = [c.copy() for c in coords]
        flipped[axis] = np.clip(np.round(2 * centre - coords[axis]).astype(int), 0, m.shape[axis] - 1)
        hit = comps[tuple(flipped)]
        others = hit[(hit > 0) & (hit != i)]
        best = 0.0
        if others.size:
            j = np.bincount(others).argmax()
            best = 2 * (others == j).sum() / (sizes[i] + sizes[j])
        self_overlap = (hit == i).mean()
        out.append((i, sizes[i] / 1000, round(best, 2), round(self_overlap, 2), m))
    return out

def report(name, case, truth):
    labels = seg.segment(case).labels
    brain = case.images["flair"] > 0 if "flair" in case.images else next(iter(case.images.values())) > 0
    axis = 2  # canonical (z, y, x): x is left-right
    for i, ml, pair, selfo, m in mirror_scores(labels, brain, axis):
        kind = "?" if truth is None else ("TRUE" if (m & truth).sum() / m.sum() > 0.5 else "FALSE")
        if pair > 0.2 or kind == "FALSE":
            print(f"{name} comp{i} {ml:.1f} ml {kind} mirror-pair Dice {pair} self {selfo}")
    if truth is not None:
        for i, ml, pair, selfo, m in mirror_scores(truth.astype(np.uint8), brain, axis):
            if pair > 0.2:
                print(f"{name} TRUTH comp{i} {ml:.1f} ml mirror-pair Dice {pair}")
    sys.stdout.flush()

REAL_CASES = ("BraTS-MET-00110-000", "BraTS-GLI-00001-000", "TCGA-DU-7294")
for folder in (f"../shared/real/{name}" for name in REAL_CASES):
    case = read_case(folder)
    print(folder)
    truth = case.label > 0 if case.label is not None else None
    report(folder.split("/")[-1], case, truth)
for domain, start in (("glioma", 11000), ("metastasis", 21000)):
    for seed in range(start, start + 20):
        case = make_case(domain, seed)
        report(f"{domain}{seed}", case, case.label > 0)
