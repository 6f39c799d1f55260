"""Is the adapted model's loss of faint enhancing tumour a shift of its classifier head, or of its features?

Adapts the shipped U-Net with the plugin's defaults on the first synthetic lower-grade glioma without
enhancing tumour from seed 36000 (5 spread slices, as ``scripts/absent_class_sweep.py``), then segments the
first version-7 glioma from seed 36500 whose enhancement is faint with the parent, the adapted model, the
adapted model given back the parent's head bias, and given back the parent's whole head (the last 1x1
convolution). Prints the enhancing tumour marked (ml) and its mean probability on the reference's enhancing
voxels. If giving back the head restores it, the shift is a bias a cheap fix could hold; if not, it is in the
features.

    python scripts/head_restore_check.py [--replay N]
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from absent_class_sweep import ET, _find, _spread

from napari_tumorseg.adapt.anchors import anchor_set, replay_pools
from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import Corrections, case_corrections
from napari_tumorseg.adapt.eval_sets import score_set
from napari_tumorseg.adapt.guard import Lineage
from napari_tumorseg.adapt.run import run_adaptation
from napari_tumorseg.experiments.common import setup_torch
from napari_tumorseg.experiments.effort import segment
from napari_tumorseg.jobs import drive
from napari_tumorseg.models.checkpoint import load_checkpoint
from napari_tumorseg.resources import resource_path


def adapted_on_lower_grade_glioma(model, preprocessing, replay_count: int):
    """The shipped model adapted on glioma 36001's 5 spread slices, with the plugin's defaults."""
    config = default_config("active", seed=0, reference_slices=0, replay=replay_count)
    anchor = anchor_set(model.config, preprocessing)
    replay = replay_pools(config.replay, model.config, preprocessing)
    lineage = Lineage.of_original("original", score_set(model, anchor), anchor)
    case = _find("glioma", 36000, 1, want_et=False)[0]
    corrections = Corrections.of(case_corrections(case, case.label, _spread(case), model_config=model.config,
                                                  preprocessing=preprocessing, reference_slices=0))
    return drive(run_adaptation(model, corrections, config, anchor=anchor, replay_pools=replay,
                                lineage=lineage)).model


def enhancing(model, preprocessing, case) -> tuple[float, float]:
    """(ET marked in ml, mean ET probability on the reference's ET voxels) of ``model`` on ``case``."""
    segmented = segment(model, preprocessing, case, "cpu")
    probability = segmented.probabilities[ET].astype(np.float32)
    if segmented.probabilities.dtype == np.uint8:
        probability /= 255.0
    voxel_ml = float(np.prod(case.geometry.spacing)) / 1000.0
    return (round(float((segmented.labels == ET).sum()) * voxel_ml, 2),
            round(float(probability[case.label == ET].mean()), 3))


def with_parent_head(adapted, parent, whole: bool):
    restored = copy.deepcopy(adapted)
    with torch.no_grad():
        restored.head.bias.copy_(parent.head.bias)
        if whole:
            restored.head.weight.copy_(parent.head.weight)
    return restored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=int, default=default_config("active").replay)
    args = parser.parse_args()
    setup_torch(2, "cpu")
    loaded = load_checkpoint(resource_path("models", "glioma-unet.safetensors"))
    parent, preprocessing = loaded.model, loaded.preprocessing
    adapted = adapted_on_lower_grade_glioma(parent, preprocessing, args.replay)
    faint = _find("glioma", 36500, 1, want_et=True, version="7", faint="enhancement")[0]
    print(f"replay {args.replay}; {faint.name} (version 7, faint enhancement): ET ml, mean p(ET) on its ET voxels")
    print("head bias, parent ", parent.head.bias.detach().numpy().round(3))
    print("head bias, adapted", adapted.head.bias.detach().numpy().round(3))
    for name, model in (("parent", parent), ("adapted", adapted),
                        ("adapted, parent's head bias", with_parent_head(adapted, parent, whole=False)),
                        ("adapted, parent's whole head", with_parent_head(adapted, parent, whole=True))):
        print(f"{name:30s}", *enhancing(model, preprocessing, faint))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
