"""Scratch probe: average softmax over in-plane flips (TTA) via a patched Segmenter._forward."""
import os, sys
import torch
from napari_tumorseg.inference import segmenter as S

MODE = os.environ.get("TTA", "none")
FLIPS = {"none": [()], "lr": [(), (-1,)], "four": [(), (-1,), (-2,), (-2, -1)], "ap": [(), (-2,)]}[MODE]
orig = S.Segmenter._forward

def forward(self, batch):
    import numpy as np
    total = None
    for dims in FLIPS:
        b = np.ascontiguousarray(np.flip(batch, dims)) if dims else batch
        p = orig(self, b)
        if dims:
            p = torch.flip(p, dims)
        total = p if total is None else total + p
    return total / len(FLIPS)

S.Segmenter._forward = forward
from napari_tumorseg.cli import main
sys.exit(main(sys.argv[1:]))
