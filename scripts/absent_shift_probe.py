"""How much of the next real cases' enhancing tumour would a larger absent-class shift give back, and at what cost?

    python scripts/absent_shift_probe.py [SEED] [--faint-seeds A:B] [--extra 0,0.5,1,2]

A development probe for issue 13's "the next real case no worse than before adapting". Adapts the shipped U-Net
on five reference slices of the real lower-grade glioma TCGA-DU-7294 (spread over the tumour, the defaults with
the absent-class correction, seed SEED), then adds EXTRA logits to the head's enhancing-tumour bias on top of the
correction and, for each value, prints: the enhancing tumour marked on the two unlabelled real cases (ml, and the
Dice of that mask against the one the parent marks), and the corrected case's rest (Dice, and enhancing tumour
marked where the reference has none). It also prints the extra shift a calibration set of faintly enhancing
synthetic gliomas (generator version 7, seeds A:B, one tumour slice each, only those whose enhancement is faint)
would ask for: the shift that makes the adapted version mark as many of its voxels enhancing as the parent does.
The anchor's own correction is calibrated on brightly enhancing phantoms; the real next cases enhance faintly.
"""
import sys

import numpy as np
import torch

from napari_tumorseg.adapt.anchors import anchor_set, replay_pools, source_slices
from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import Corrections, case_corrections, slices_with_tumour
from napari_tumorseg.adapt.eval_sets import EvalSet
from napari_tumorseg.adapt.labelfree import DEFAULT_UNLABELLED
from napari_tumorseg.adapt.prior import _matching_shift, set_logits as _logits
from napari_tumorseg.adapt.run import run_adaptation
from napari_tumorseg.experiments.effort_scoring import rest_scores
from napari_tumorseg.experiments.patients import spread_order
from napari_tumorseg.inference.segmenter import Segmenter
from napari_tumorseg.io import read_case
from napari_tumorseg.jobs import drive
from napari_tumorseg.models.checkpoint import load_checkpoint
from napari_tumorseg.synth import generate_phantom

ET = 3


def _option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def faint_set(config) -> EvalSet:
    first, last = (int(v) for v in _option("--faint-seeds", "7001:7041").split(":"))
    seeds = [s for s in range(first, last) if generate_phantom("glioma", s, version="7").contrast.faint == "enhancement"]
    groups = source_slices(seeds, config, per_case=1, version="7")
    groups = [g for g in groups if (g[1] == ET).any()]
    print("faint calibration cases:", [g[2][0] for g in groups])
    return EvalSet("faint", tuple((g[0], g[1]) for g in groups))


def et_count(logits, extra: float = 0.0) -> int:
    shift = torch.zeros(logits[0].shape[1])
    shift[ET] = extra
    return int(sum(int(((g + shift.view(1, -1, 1, 1)).argmax(1) == ET).sum()) for g in logits))


def main() -> None:
    torch.set_num_threads(2)
    seed = int(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else 0
    extras = [float(v) for v in _option("--extra", "0,0.5,1,1.5,2,3").split(",")]
    base = load_checkpoint("resources/models/glioma-unet.safetensors")
    parent = base.model
    config = default_config("active", seed=seed)
    case = read_case("../shared/real/TCGA-DU-7294")
    tumour = slices_with_tumour(case.label)
    picks = sorted(spread_order(tumour, [float(np.count_nonzero(case.label[z])) for z in tumour], 5))
    corr = Corrections.of(case_corrections(case, case.label, picks, model_config=parent.config,
                                           reference_slices=0, unlabelled_slices=DEFAULT_UNLABELLED))
    out = drive(run_adaptation(parent, corr, config, anchor=anchor_set(parent.config),
                               replay_pools=replay_pools(config.replay, parent.config), registry=None))
    adapted = out.model
    print("seed", seed, "|", out.report.reason, "| absent shift", out.report.details.get("absent_bias_shift"))

    faint = faint_set(parent.config)
    parent_logits, adapted_logits = _logits(parent, faint), _logits(adapted, faint)
    target = et_count(parent_logits)
    asked = _matching_shift(adapted_logits, torch.zeros(parent_logits[0].shape[1]), ET, target)
    print(f"faint set: parent marks {target} ET voxels, adapted {et_count(adapted_logits)}; "
          f"extra shift asked {asked:+.3f}")
    extras = sorted(set(extras + [round(asked, 3)]))

    def segment(net, c):
        return Segmenter(net, config=base.config, preprocessing=base.preprocessing, device="cpu").segment(c).labels

    nexts = {n: read_case(f"../shared/real/{n}") for n in ("BraTS-GLI-00001-000", "BraTS-MET-00110-000")}
    before = {n: segment(parent, c) for n, c in nexts.items()}
    rest_before = rest_scores(segment(parent, case), case.label, picks, case.geometry.spacing)["dice"]
    print("parent: rest", {k: round(v, 4) for k, v in rest_before.items()},
          "| next ET ml", {n: round(float((b == ET).sum()) / 1000, 2) for n, b in before.items()})
    for extra in extras:
        with torch.no_grad():
            adapted.head.bias[ET] += extra
        row = []
        for n, c in nexts.items():
            labels = segment(adapted, c)
            a, b = labels == ET, before[n] == ET
            dice = 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))
            row.append(f"{n[6:9]} ET {float(a.sum()) / 1000:5.2f} ml (Dice with before {dice:.3f}), "
                       f"TC {float(np.isin(labels, (1, 3)).sum()) / 1000:5.1f}")
        own = segment(adapted, case)
        rest = rest_scores(own, case.label, picks, case.geometry.spacing)["dice"]
        false_et = float((own == ET).sum()) / 1000  # the reference has no enhancing tumour: all of it is false
        print(f"extra {extra:+.3f}: " + "; ".join(row) +
              f" | rest {({k: round(v, 4) for k, v in rest.items()})}, ET marked on the corrected case {false_et:.2f} ml")
        with torch.no_grad():
            adapted.head.bias[ET] -= extra


if __name__ == "__main__":
    main()
