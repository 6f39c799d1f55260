"""The Segmenter: results on the full grid, progress, cancel, missing modalities, OOM fallback."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from napari_tumorseg.errors import ModelError
from napari_tumorseg.inference.preprocess import prepare_case, slices_to_input
from napari_tumorseg.inference.devices import choose_device
from napari_tumorseg.inference.segmenter import Segmenter, segment_case
from napari_tumorseg.io.case import MODALITIES, Case, Geometry
from napari_tumorseg.jobs import Cancelled, drive
from napari_tumorseg.models import PreprocessingConfig, build_model
from napari_tumorseg.models.checkpoint import save_checkpoint

torch.set_num_threads(1)

SPL_AFFINE = np.array([[0, 0, -1, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
SHAPE = (14, 36, 40)


def _case(modalities=MODALITIES) -> Case:
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    brain = ((z - 7) / 5) ** 2 + ((y - 17) / 12) ** 2 + ((x - 20) / 13) ** 2 <= 1
    images = {
        key: np.where(brain, rng.normal(100 + 40 * i, 20, SHAPE), 0).astype(np.float32)
        for i, key in enumerate(MODALITIES)
        if key in modalities
    }
    return Case("phantom", images, Geometry(SPL_AFFINE, SHAPE))


def _model(arch: str = "unet", context: int = 0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(arch, base_width=4, depth=2, context=context)
    with torch.no_grad():  # a confident head, so labels are not all one class
        model.head.weight.mul_(8)
    return model


def _count_forwards(model: nn.Module) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
    return shapes


@pytest.mark.parametrize("arch", ["unet", "dycnn"])
def test_labels_and_probabilities_on_the_full_grid(arch: str) -> None:
    case = _case()
    segmenter = Segmenter(_model(arch), device="cpu", batch_size=3, probabilities="float16", min_lesion_mm3=0,
                          uncertain_max_ml=0)
    result = segmenter.segment(case)
    assert result.labels.shape == SHAPE and result.labels.dtype == np.uint8
    assert result.probabilities.shape == (4, *SHAPE) and result.probabilities.dtype == np.float16
    probs = result.class_probabilities()
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=2e-3)
    assert set(np.unique(result.labels)) > {0}
    # Where the classes are not near a tie, the labels are the most probable class.
    top2 = np.sort(probs, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-2
    np.testing.assert_array_equal(result.labels[clear], probs.argmax(axis=0)[clear])
    entropy = result.entropy()
    assert entropy.min() >= 0 and entropy.max() <= 1 + 1e-6


def test_result_matches_the_network_applied_by_hand() -> None:
    case = _case()
    model = _model(context=1).eval()
    result = Segmenter(model, device="cpu", batch_size=4).segment(case)
    prepared = prepare_case(case, multiple=4, margin=PreprocessingConfig().crop_margin)
    local = 6
    with torch.no_grad():
        logits = model(torch.from_numpy(slices_to_input(prepared.images, prepared.availability, [local], 1)))
    expected = prepared.crop.uncrop_slices(logits.argmax(dim=1).numpy().astype(np.uint8))[0]
    np.testing.assert_array_equal(result.labels[prepared.crop.start[0] + local], expected)


def test_outside_the_brain_is_background_with_certainty_and_empty_slices_are_skipped() -> None:
    case = _case()
    model = _model()
    shapes = _count_forwards(model)
    segmenter = Segmenter(model, device="cpu", batch_size=64)
    result = segmenter.segment(case)
    brain = np.zeros(SHAPE, dtype=bool)
    for volume in case.images.values():
        brain |= volume != 0
    brain_slices = brain.any(axis=(1, 2))
    assert result.slices_run == brain_slices.sum() == sum(s[0] for s in shapes) < SHAPE[0]
    assert np.all(result.labels[~brain_slices] == 0)
    crop = segmenter.plan(case).crop
    outside = np.ones(SHAPE, dtype=bool)
    outside[tuple(slice(a, b) for a, b in zip(crop.start, crop.stop))] = False
    assert outside.any() and np.all(result.labels[outside] == 0)
    assert np.all(result.probabilities[0][outside] == 255) and np.all(result.probabilities[1:][:, outside] == 0)
    probs = result.probabilities.astype(int)
    assert np.abs(probs.sum(axis=0) - 255).max() <= 2  # uint8 rounding: sums 1 within 2/255


def test_progress_reports_fill_in_every_brain_slice_once() -> None:
    case = _case()
    reports = []
    result = drive(Segmenter(_model(), device="cpu", batch_size=3).run(case), on_progress=reports.append)
    assert reports[0].done == 0 and reports[0].data is None
    assert [r.done for r in reports[1:]] == sorted({r.done for r in reports[1:]})
    assert reports[-1].done == reports[-1].total == result.slices_run and reports[-1].fraction == 1.0
    seen = np.concatenate([r.data.z for r in reports[1:]])
    assert len(seen) == len(set(seen.tolist())) == result.slices_run
    for report in reports[1:]:
        np.testing.assert_array_equal(report.data.labels, result.labels[report.data.z])
    assert all(b.elapsed >= a.elapsed for a, b in zip(reports, reports[1:]))


@pytest.mark.parametrize("use_event", [False, True])
def test_cancel_stops_after_the_current_batch(use_event: bool) -> None:
    model = _model()
    shapes = _count_forwards(model)
    event = threading.Event()
    cancel = event if use_event else event.is_set
    generator = Segmenter(model, device="cpu", batch_size=2).run(_case(), cancel=cancel)
    next(generator)  # the first report comes before any batch
    first_batch = next(generator)
    assert first_batch.done == 2 and len(shapes) == 1
    event.set()
    with pytest.raises(Cancelled):
        next(generator)
    assert len(shapes) == 1  # no batch ran after the cancel


def test_a_case_with_only_t2_and_flair_segments_with_availability_planes() -> None:
    case = _case(modalities=("flair", "t2"))
    model = _model()
    inputs: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].clone()))
    result = Segmenter(model, device="cpu").segment(case)
    assert result.labels.shape == SHAPE and result.slices_run > 0
    x = inputs[0]
    assert not x[:, 1:3].any() and x[:, 0].any() and x[:, 3].any()  # T1 and T1c zeroed
    np.testing.assert_array_equal(x[:, 4:, 0, 0].numpy(), np.tile([1.0, 0.0, 0.0, 1.0], (len(x), 1)))


@pytest.mark.parametrize("context", [0, 2])
def test_single_slice_equals_that_slice_of_the_volume(context: int) -> None:
    case = _case()
    segmenter = Segmenter(_model("dycnn", context=context), device="cpu", probabilities="float16", min_lesion_mm3=0,
                          uncertain_max_ml=0)
    volume = segmenter.segment(case)
    for z in (0, 2, 7, SHAPE[0] - 1):
        one = segmenter.segment_slice(case, z)
        np.testing.assert_array_equal(one.labels, volume.labels[z])
        np.testing.assert_allclose(one.probabilities, volume.class_probabilities()[:, z], atol=2e-3)
    with pytest.raises(IndexError):
        segmenter.segment_slice(case, SHAPE[0])


class _OutOfMemoryAbove(nn.Module):
    """Delegates to a real network but fails like a full GPU for batches over ``limit``,
    and for any input on the 'meta' device (standing in for an accelerator)."""

    def __init__(self, model: nn.Module, limit: int) -> None:
        super().__init__()
        object.__setattr__(self, "inner", model)  # not a submodule: this wrapper moves freely
        self.limit = limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit or x.device.type == "meta":
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


def test_out_of_memory_halves_the_batch_and_warns() -> None:
    case = _case()
    model = _model().eval()
    expected = Segmenter(model, device="cpu", batch_size=8).segment(case)
    wrapped = _OutOfMemoryAbove(model, limit=2)
    segmenter = Segmenter(wrapped, config=model.config, device="cpu", batch_size=8)
    with pytest.warns(RuntimeWarning, match="batch size 2"):
        result = segmenter.segment(case)
    assert segmenter.batch_size == 2
    np.testing.assert_array_equal(result.labels, expected.labels)


def test_out_of_memory_at_batch_one_falls_back_to_the_cpu() -> None:
    case = _case()
    model = _model().eval()
    expected = Segmenter(model, device="cpu").segment(case)
    segmenter = Segmenter(
        _OutOfMemoryAbove(model, limit=8), config=model.config, device="meta", batch_size=2, mirror="none"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = segmenter.segment(case)
    messages = [str(w.message) for w in caught]
    assert any("batch size 1" in m for m in messages) and any("falling back to the CPU" in m for m in messages)
    assert result.device == "cpu"
    np.testing.assert_array_equal(result.labels, expected.labels)


def test_out_of_memory_on_the_cpu_is_not_swallowed() -> None:
    model = _model()
    segmenter = Segmenter(_OutOfMemoryAbove(model, limit=0), config=model.config, device="cpu", batch_size=1)
    with pytest.raises(torch.OutOfMemoryError):
        segmenter.segment(_case())


def test_device_choice() -> None:
    assert choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert choose_device("auto").type in ("cpu", "mps")
        with pytest.raises(ModelError, match="CUDA is not available"):
            choose_device("cuda")
    with pytest.raises(ModelError, match="unknown device"):
        choose_device("tpu-9000")


def test_segment_case_from_a_checkpoint_uses_its_preprocessing(tmp_path: Path) -> None:
    case = _case()
    model = _model().eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, preprocessing=PreprocessingConfig(crop_margin=0))
    from_file = segment_case(case, path, device="cpu")
    segmenter = Segmenter.from_checkpoint(path, device="cpu")
    assert segmenter.preprocessing.crop_margin == 0
    direct = Segmenter(model, preprocessing=PreprocessingConfig(crop_margin=0), device="cpu").segment(case)
    np.testing.assert_array_equal(from_file.labels, direct.labels)
    with pytest.raises(ModelError, match="no such checkpoint"):
        segment_case(case, tmp_path / "missing.safetensors")


def test_probabilities_none_keeps_labels_only() -> None:
    result = Segmenter(_model(), device="cpu", probabilities="none").segment(_case())
    assert result.probabilities is None and result.labels.any()
    with pytest.raises(ValueError):
        result.entropy()


def test_channels_last_layout_gives_the_same_segmentation() -> None:
    case = _case()
    default = Segmenter(_model(), device="cpu", probabilities="float16")
    assert default.channels_last  # static network on the CPU
    first = default.segment(case)
    second = Segmenter(_model(), device="cpu", probabilities="float16", channels_last=False).segment(case)
    np.testing.assert_allclose(first.class_probabilities(), second.class_probabilities(), atol=2e-3)
    assert (first.labels != second.labels).mean() < 1e-3
    assert not Segmenter(_model("dycnn"), device="cpu").channels_last
