"""Does the guard's anchor set see the forgetting that the next real cases show?

    python scripts/anchor_class_drift.py [SEED] [--phantom GLIOMA_SEED] [--max-shrink SHARE]

Adapts the shipped U-Net on five reference slices of the real lower-grade glioma TCGA-DU-7294 (spread over
the tumour, as `tumorseg experiment effort`'s real-case target; active meta-tune with the defaults and the
guard, seed SEED), then prints, before and after, on the synthetic anchor set: the mean probability of each
tumour class over its reference voxels and the voxels predicted as that class against the reference's; and on
the two unlabelled real cases, the ET, TC and WT volumes marked; and the corrected case's own Dice over the
rest of its volume (its corrected slices left out). A development probe for issue 13's "the next real case no
worse than before adapting". With ``--phantom``, the corrected case is instead the first
synthetic lower-grade glioma without enhancing tumour from that seed on (the absent-class sweep's corrected
cases start at 36000): does the phantom protocol shrink the anchor as the real case does? ``--max-shrink``
sets the guard's limit on that shrinking (``AdaptConfig.max_shrink``; default off).
"""
import sys

import numpy as np
import torch

from napari_tumorseg.io import read_case
from napari_tumorseg.models.checkpoint import load_checkpoint
from napari_tumorseg.adapt.anchors import anchor_set, replay_pools
from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import Corrections, case_corrections, slices_with_tumour
from napari_tumorseg.adapt.run import run_adaptation
from napari_tumorseg.adapt.labelfree import DEFAULT_UNLABELLED
from napari_tumorseg.experiments.patients import spread_order
from napari_tumorseg.inference.segmenter import Segmenter
from napari_tumorseg.jobs import drive
torch.set_num_threads(2)
base = load_checkpoint("resources/models/glioma-unet.safetensors")
model = base.model
args = sys.argv[1:]
phantom = int(args[args.index("--phantom") + 1]) if "--phantom" in args else None
shrink = float(args[args.index("--max-shrink") + 1]) if "--max-shrink" in args else None
config = default_config("active", seed=int(args[0]) if args and not args[0].startswith("--") else 0, max_shrink=shrink)
if phantom is None:
    case = read_case("../shared/real/TCGA-DU-7294")
else:
    from napari_tumorseg.synth import make_case

    case = next(c for c in (make_case("glioma", s) for s in range(phantom, phantom + 400))
                if not (c.label == 3).any() and len(slices_with_tumour(c.label)) >= 10)
    print("corrected case:", case.name)
tumour = slices_with_tumour(case.label)
picks = sorted(spread_order(tumour, [float(np.count_nonzero(case.label[z])) for z in tumour], 5))
corr = Corrections.of(case_corrections(case, case.label, picks, model_config=model.config,
                                       reference_slices=0, unlabelled_slices=DEFAULT_UNLABELLED))
anchor = anchor_set(model.config)
replay = replay_pools(config.replay, model.config)
out = drive(run_adaptation(model, corr, config, anchor=anchor, replay_pools=replay, registry=None))
print(out.report.reason)
adapted = out.model

@torch.no_grad()
def confidence(net):
    net.eval()
    res = {c: [] for c in (1, 2, 3)}
    area = {c: [0, 0] for c in (1, 2, 3)}
    for inputs, labels in anchor.groups:
        p = torch.softmax(net(torch.from_numpy(inputs)).float(), 1).numpy()
        pred = p.argmax(1)
        for c in (1, 2, 3):
            m = labels == c
            if m.any():
                res[c].append(p[:, c][m])
            area[c][0] += int((pred == c).sum()); area[c][1] += int(m.sum())
    return {c: (round(float(np.concatenate(v).mean()), 4), area[c]) for c, v in res.items() if v}

print("anchor (mean prob of the true class over its voxels; predicted/true voxels) before", confidence(model))
print("after", confidence(adapted))
from napari_tumorseg.experiments.effort_scoring import rest_scores

rest = []
for net in (model, adapted):
    labels = Segmenter(net, config=base.config, preprocessing=base.preprocessing, device="cpu").segment(case).labels
    rest.append(rest_scores(labels, case.label, picks, case.geometry.spacing)["dice"])
print(case.name, "rest of the case (corrected slices left out) before", rest[0], "after", rest[1])
for name in ("BraTS-GLI-00001-000", "BraTS-MET-00110-000"):
    c = read_case(f"../shared/real/{name}")
    ml = []
    for net in (model, adapted):
        labels = Segmenter(net, config=base.config, preprocessing=base.preprocessing, device="cpu").segment(c).labels
        regions = (("ET", [3]), ("TC", [1, 3]), ("WT", [1, 2, 3]))
        ml.append({k: round(float(np.isin(labels, v).sum()) / 1000, 1) for k, v in regions})
    print(name, "before", ml[0], "after", ml[1])
