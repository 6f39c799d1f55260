"""Adapting a glioma-trained network to a few corrected slices of a metastasis case helps on its other slices.

A small U-Net (base 8, depth 3) is pretrained in the test on synthetic glioma
(the source domain) for 150 steps; a synthetic metastasis case (the target
domain: small lesions, disproportionate oedema) gives 5 corrected slices, and
the Dice on 16 other tumour slices of the same case is compared before and
after, with each method's default hyper-parameters. About 25 s on 2 shared
cores (most of it the pretraining), hence marked slow.
"""

from __future__ import annotations

import pytest
import torch
from test_adapt_helpers import drive

from napari_tumorseg.adapt.config import default_config
from napari_tumorseg.adapt.corrections import Corrections, case_corrections, slices_with_tumour
from napari_tumorseg.adapt.eval_sets import EvalSet, score_set
from napari_tumorseg.models.losses import dice_ce_loss
from napari_tumorseg.adapt.maml import meta_tune
from napari_tumorseg.adapt.naive import naive_finetune
from napari_tumorseg.adapt.sampling import SlicePool, flat_tasks, grouped_loss, make_view
from napari_tumorseg.models import build_model

SHAPE = (48, 80, 80)
PRETRAIN_STEPS = 150
# Version 1's fixed contrast lets a tiny network learn the source domain in 150
# steps, so the gap measured is the domain's, not an under-trained network's:
# this tests the adaptation methods, not the phantoms.
GENERATOR = "1"


@pytest.fixture(scope="module")
def glioma_model():
    from napari_tumorseg.synth.generate import make_case

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("unet", base_width=8, depth=3)
    pools = []
    for seed in range(100, 104):
        case = make_case("glioma", seed, shape=SHAPE, version=GENERATOR)
        slices = slices_with_tumour(case.label)
        prepared = case_corrections(case, case.label, slices, model_config=model.config, reference_slices=0)
        pools.append(SlicePool.from_arrays(prepared.inputs, prepared.labels, [str(z) for z in slices]))
    tasks = flat_tasks(pools)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(PRETRAIN_STEPS):
        picks = torch.randint(len(tasks), (8,), generator=generator).tolist()
        samples = [
            make_view(pools[tasks[k][0]].inputs[tasks[k][1]], pools[tasks[k][0]].labels[tasks[k][1]], generator, 48)
            for k in picks
        ]
        loss = grouped_loss(model, samples, dice_ce_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def metastasis(glioma_model):
    from napari_tumorseg.synth.generate import make_case

    case = make_case("metastasis", 903, shape=SHAPE, version=GENERATOR)
    prepared = case_corrections(
        case, case.label, slices_with_tumour(case.label, limit=5), model_config=glioma_model.config, reference_slices=16
    )
    return Corrections.of(prepared), EvalSet("held_out", ((prepared.reference_inputs, prepared.reference_labels),))


@pytest.mark.slow
@pytest.mark.parametrize("method, runner", [("active", meta_tune), ("naive", naive_finetune)])
def test_adapting_on_metastasis_raises_held_out_dice(glioma_model, metastasis, method, runner):
    corrections, held_out = metastasis
    before = score_set(glioma_model, held_out)["mean"]
    _, result = drive(runner(glioma_model, corrections, default_config(method)))
    after = score_set(result.model, held_out)["mean"]
    print(f"{method}: held-out metastasis Dice {before:.3f} -> {after:.3f}")
    assert before < 0.6, "the domain gap this test relies on has closed"
    assert after > before + 0.2
