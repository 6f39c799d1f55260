"""Mirror averaging: the softmax averaged over in-plane flips, its default per device, and its use in the Segmenter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_tumorseg.inference.mirroring import MIRROR_FLIPS, mirrored_softmax, resolve_mirror
from napari_tumorseg.inference.segmenter import Segmenter
from napari_tumorseg.io.case import MODALITIES, Case, Geometry
from napari_tumorseg.models import build_model

torch.set_num_threads(1)

SPL_AFFINE = np.array([[0, 0, -1, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


class LeftLeaning(nn.Module):
    """Logits that grow from left to right: not flip-symmetric, so each flip changes the answer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ramp = torch.linspace(-2, 2, w).expand(b, 1, h, w)
        return torch.cat([ramp, -ramp, x[:, :1], x[:, 1:2] * 0.5], dim=1)


def test_each_flip_set_averages_the_flipped_back_softmaxes_by_hand() -> None:
    x = torch.randn(2, 4, 6, 8)
    net = LeftLeaning()
    plain = torch.softmax(net(x), dim=1)
    lr = torch.flip(torch.softmax(net(torch.flip(x, (-1,))), dim=1), (-1,))
    ap = torch.flip(torch.softmax(net(torch.flip(x, (-2,))), dim=1), (-2,))
    both = torch.flip(torch.softmax(net(torch.flip(x, (-2, -1))), dim=1), (-2, -1))
    torch.testing.assert_close(mirrored_softmax(net, x, "none"), plain)
    torch.testing.assert_close(mirrored_softmax(net, x, "lr"), (plain + lr) / 2)
    torch.testing.assert_close(mirrored_softmax(net, x, "ap"), (plain + ap) / 2)
    torch.testing.assert_close(mirrored_softmax(net, x, "all"), (plain + lr + ap + both) / 4)
    # The ramp is odd in x: averaged with its left-right mirror, the first two classes tie everywhere.
    averaged = mirrored_softmax(net, x, "lr")
    torch.testing.assert_close(averaged[:, 0], averaged[:, 1])
    assert not torch.allclose(plain[:, 0], plain[:, 1])


def test_one_forward_pass_per_flip_in_channels_last_when_asked() -> None:
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x.is_contiguous(memory_format=torch.channels_last))
            return x[:, :4]

    for name, flips in MIRROR_FLIPS.items():
        seen.clear()
        mirrored_softmax(Spy(), torch.randn(1, 4, 5, 5), name, channels_last=True)
        assert len(seen) == len(flips) and all(seen)


def test_auto_is_every_flip_on_a_gpu_and_none_on_the_cpu() -> None:
    assert resolve_mirror("auto", "cpu") == "none"
    assert resolve_mirror("auto", "cuda") == "all" and resolve_mirror("auto", "mps") == "all"
    assert resolve_mirror("lr", "cpu") == "lr" and resolve_mirror("none", "cuda") == "none"
    with pytest.raises(ValueError, match="mirror must be one of auto, none, lr, ap, all"):
        resolve_mirror("sideways", "cpu")


def _case() -> Case:
    shape = (10, 32, 36)
    rng = np.random.default_rng(1)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    brain = ((z - 5) / 4) ** 2 + ((y - 15) / 11) ** 2 + ((x - 20) / 12) ** 2 <= 1
    images = {key: np.where(brain, rng.normal(100 + 30 * i, 25, shape), 0).astype(np.float32)
              for i, key in enumerate(MODALITIES)}
    return Case("phantom", images, Geometry(SPL_AFFINE, shape))


def _model() -> nn.Module:
    torch.manual_seed(3)
    model = build_model("unet", base_width=4, depth=2)
    with torch.no_grad():
        model.head.weight.mul_(8)
    return model


def test_the_segmenter_runs_one_pass_per_flip_and_averages_them() -> None:
    case = _case()
    probs, passes = {}, {}
    for name in ("none", "lr", "all"):
        model = _model()
        shapes = []
        model.register_forward_pre_hook(lambda _m, args, shapes=shapes: shapes.append(args[0].shape[0]))
        segmenter = Segmenter(model, device="cpu", probabilities="float16", mirror=name, min_lesion_mm3=0,
                              uncertain_max_ml=0)
        result = segmenter.segment(case)
        probs[name], passes[name] = result.class_probabilities(), sum(shapes)
        np.testing.assert_allclose(probs[name].sum(axis=0), 1.0, atol=3e-3)
        if name == "all":  # one slice as in the volume
            np.testing.assert_allclose(segmenter.segment_slice(case, 5).probabilities, probs[name][:, 5], atol=3e-3)
    assert passes["lr"] == 2 * passes["none"] and passes["all"] == 4 * passes["none"]
    assert np.abs(probs["lr"] - probs["none"]).max() > 0.01  # a random network is not flip-symmetric
    assert np.abs(probs["all"] - probs["lr"]).max() > 0.01


def test_the_segmenter_default_on_the_cpu_is_one_pass() -> None:
    segmenter = Segmenter(_model(), device="cpu")
    assert segmenter.mirror_choice == "auto" and segmenter.mirror == "none"
    with pytest.raises(ValueError, match="mirror must be one of"):
        Segmenter(_model(), device="cpu", mirror="diagonal")
