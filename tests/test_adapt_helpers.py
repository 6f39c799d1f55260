"""Small models and slices shared by the adaptation tests (no tests here).

The toy task: 8 input channels like the real networks (4 image planes, 4
availability planes); the tumour is a bright square in the FLAIR plane, its
core brighter in T1c, so a tiny U-Net can learn it in a few steps.
"""

from __future__ import annotations

import numpy as np
import torch

from napari_tumorseg.adapt.corrections import CaseCorrections, Corrections
from napari_tumorseg.adapt.eval_sets import EvalSet
from napari_tumorseg.models import build_model

TINY = dict(base_width=4, depth=2)
SIZE = 32


def toy_slices(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(n, 8, size, size) inputs and (n, size, size) labels with an ED square around an ET core."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(0, 0.3, size=(n, 8, size, size)).astype(np.float32)
    inputs[:, 4:] = 1.0
    labels = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        top, left = rng.integers(4, size - 16, size=2)
        labels[i, top : top + 12, left : left + 12] = 2
        labels[i, top + 4 : top + 8, left + 4 : left + 8] = 3
        inputs[i, 0][labels[i] > 0] += 2.0
        inputs[i, 2][labels[i] == 3] += 2.0
    return inputs, labels


def toy_corrections(n: int = 5, seed: int = 0, held_out: int = 0, name: str = "toy") -> Corrections:
    inputs, labels = toy_slices(n + held_out, seed)
    case = CaseCorrections(
        name,
        inputs[:n],
        labels[:n],
        tuple(range(10, 10 + n)),
        reference_inputs=inputs[n:] if held_out else None,
        reference_labels=labels[n:] if held_out else None,
        reference_indices=tuple(range(50, 50 + held_out)),
    )
    return Corrections.of(case)


def toy_anchor(n: int = 4, seed: int = 99) -> EvalSet:
    inputs, labels = toy_slices(n, seed)
    return EvalSet("anchor", ((inputs, labels),), {"seeds": [seed]})


def tiny_model(arch: str = "unet", seed: int = 0, background: bool = False) -> torch.nn.Module:
    """A base-4, depth-2 network; ``background`` makes it predict background everywhere."""
    torch.manual_seed(seed)
    extra = {"temperature": 1.0} if arch == "dycnn" else {}
    model = build_model(arch, **TINY, **extra)
    if background:
        with torch.no_grad():
            model.head.weight.zero_()
            model.head.bias.copy_(torch.tensor([4.0, -4.0, -4.0, -4.0]))
    return model.eval()


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def drive(generator):
    """Run a method or run generator to the end; returns (progress reports, return value)."""
    from napari_tumorseg.jobs import drive as drive_job

    reports = []
    return reports, drive_job(generator, on_progress=reports.append)
