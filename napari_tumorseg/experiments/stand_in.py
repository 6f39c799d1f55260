"""A tiny glioma-pretrained U-Net for smoke runs and tests, trained in-process in seconds.

``tumorseg experiment meta-tune --quick`` runs on tiny grids where the
shipped model (trained on the BraTS 1 mm grid) sees a different voxel size;
unless a model is given, the quick run pretrains this stand-in on synthetic
glioma at the quick grid instead, and says so in its results. The real
experiment always uses the shipped (or a given) model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from torch import nn

from .common import STAND_IN_PRETRAIN_SEEDS, seed_list


@dataclass(frozen=True)
class StandInConfig:
    """How the stand-in is built and pretrained.

    Args:
        base_width: U-Net width at full resolution.
        depth: down-samplings.
        cases: synthetic glioma cases it trains on (seeds from STAND_IN_PRETRAIN_SEEDS).
        steps: Adam steps.
        batch_size: crops per step.
        crop: crop side (a multiple of 2**depth).
        lr: Adam's learning rate.
        seed: initial weights and crop draws.
        arch: "unet", or "dycnn" (dynamic convolutions, temperature 1) for the Dy-CNN method.
    """

    base_width: int = 8
    depth: int = 3
    cases: int = 4
    steps: int = 60
    batch_size: int = 8
    crop: int = 32
    lr: float = 3e-3
    seed: int = 0
    arch: str = "unet"

    def to_dict(self) -> dict:
        return asdict(self)


def pretrain_stand_in(config: StandInConfig, shape: Sequence[int]) -> nn.Module:
    """Build and pretrain the stand-in on synthetic glioma tumour slices at ``shape``; eval mode, CPU.

    Args:
        config: size and training of the stand-in.
        shape: the synthetic grid (the experiment's).
    """
    import torch

    from ..adapt.corrections import case_corrections, slices_with_tumour
    from ..models.losses import dice_ce_loss
    from ..adapt.sampling import SlicePool, flat_tasks, grouped_loss, make_view
    from ..models import build_model
    from ..synth.generate import make_case

    torch.manual_seed(config.seed)
    extra = {"temperature": 1.0} if config.arch == "dycnn" else {}
    model = build_model(config.arch, base_width=config.base_width, depth=config.depth, **extra)
    pools = []
    for seed in seed_list(STAND_IN_PRETRAIN_SEEDS, config.cases):
        case = make_case("glioma", seed, shape=tuple(shape))
        slices = slices_with_tumour(case.label)
        if not slices:
            continue
        prepared = case_corrections(case, case.label, slices, model_config=model.config, reference_slices=0)
        pools.append(SlicePool.from_arrays(prepared.inputs, prepared.labels, [str(z) for z in slices]))
    tasks = flat_tasks(pools)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(config.steps):
        picks = torch.randint(len(tasks), (config.batch_size,), generator=generator).tolist()
        samples = [
            make_view(pools[tasks[k][0]].inputs[tasks[k][1]], pools[tasks[k][0]].labels[tasks[k][1]], generator,
                      config.crop)
            for k in picks
        ]
        loss = grouped_loss(model, samples, dice_ce_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
