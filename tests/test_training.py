"""Training: batches, the loop, resume, the Dy-CNN temperature schedule, the training state."""

from __future__ import annotations

import numpy as np
import pytest

TINY_SHAPE = (40, 64, 64)  # the conftest's SMALL_SHAPE: its anatomy is resampled once per session


@pytest.fixture(scope="module")
def tiny_cache():
    from napari_tumorseg.synth.generate import make_case
    from napari_tumorseg.training.data import build_slice_cache

    cases = [make_case("glioma", seed, shape=TINY_SHAPE) for seed in (0, 1)]
    return build_slice_cache(cases, multiple=4, tumour_slices=4, empty_slices=1)


def _tiny_trainer(arch, cache, steps, torch, **config):
    from napari_tumorseg.models import build_model
    from napari_tumorseg.training.data import Augmentation
    from napari_tumorseg.training.loop import TrainConfig, Trainer

    torch.manual_seed(0)
    model = build_model(arch, base_width=4, depth=2)
    config = TrainConfig(steps=steps, batch_size=2, epoch_steps=config.pop("epoch_steps", 4), warmup_steps=2,
                         augmentation=Augmentation(crop=32), **config)
    return Trainer(model, cache, config)


def _run(trainer, stop_after=None):
    """The training reports of a run (each progress report's TrainingReport), stopped after ``stop_after`` steps."""
    from napari_tumorseg.jobs import Cancelled, drive

    reports = []
    try:
        drive(trainer.run(cancel=lambda: stop_after is not None and trainer.step >= stop_after),
              on_progress=lambda progress: reports.append(progress.data))
    except Cancelled:
        assert stop_after is not None, "only a run asked to stop is cancelled"
    return reports


def test_cache_keeps_tumour_and_tumour_free_slices(tiny_cache, tmp_path):
    from napari_tumorseg.training.data import SliceCache

    assert tiny_cache.num_slices == 10 and tiny_cache.num_tumour_slices == 8
    assert all(img.dtype == np.float16 and img.shape[1] == 4 for img in tiny_cache.images)
    assert all(h % 4 == 0 and w % 4 == 0 for h, w in (img.shape[-2:] for img in tiny_cache.images))
    again = SliceCache.load(tiny_cache.save(tmp_path / "cache.npz"))
    assert again.names == tiny_cache.names
    assert all(np.array_equal(a, b) for a, b in zip(again.images, tiny_cache.images))


def test_batches_are_a_function_of_seed_and_step(tiny_cache):
    from napari_tumorseg.training.data import Augmentation, sample_batch

    aug = Augmentation(crop=32)
    x1, y1 = sample_batch(tiny_cache, 5, 0, 4, aug)
    x2, y2 = sample_batch(tiny_cache, 5, 0, 4, aug)
    x3, _ = sample_batch(tiny_cache, 6, 0, 4, aug)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (4, 8, 32, 32) and y1.shape == (4, 32, 32) and y1.dtype == np.int64


def test_modality_dropout_zeroes_channels_and_availability(tiny_cache):
    from napari_tumorseg.training.data import Augmentation, keep_mask, sample_batch

    aug = Augmentation(crop=32, modality_dropout=1.0, tumour_crop_prob=1.0)
    x, y = sample_batch(tiny_cache, 0, 0, 16, aug)
    availability = x[:, 4:, 0, 0]
    assert set(np.unique(availability)) <= {0.0, 1.0}
    kept = availability.sum(axis=1)
    assert kept.min() >= 1 and kept.max() <= 3  # a non-empty proper subset every time
    for sample, avail in zip(x, availability):
        assert np.all(sample[:4][avail == 0] == 0)  # dropped modalities are zero images
        assert np.all(sample[4:] == avail[:, None, None])  # availability planes are constant
    assert (y > 0).any(axis=(1, 2)).all()  # tumour-centred crops contain tumour
    rng = np.random.default_rng(0)
    masks = {tuple(keep_mask(np.ones(4), rng)) for _ in range(400)}
    assert (True, False, False, True) in masks  # FLAIR + T2 only is drawn
    assert len(masks) == 14
    assert tuple(keep_mask(np.array([0, 0, 1, 0]), rng)) == (False, False, True, False)


def test_training_changes_weights_and_lowers_the_loss_on_its_batch(tiny_cache, torch_single_thread):
    import torch

    from napari_tumorseg.models.losses import dice_ce_loss
    from napari_tumorseg.training.data import Augmentation, sample_batch

    trainer = _tiny_trainer("unet", tiny_cache, 20, torch, lr=1e-2)
    x, y = (torch.from_numpy(a) for a in sample_batch(tiny_cache, 0, 0, 2, Augmentation(crop=32)))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with torch.no_grad():
        loss_before = float(dice_ce_loss(trainer.model(x), y))
    for _ in range(30):  # the same batch: it must be learned
        trainer.train_step(x, y)
    with torch.no_grad():
        loss_after = float(dice_ce_loss(trainer.model(x), y))
    assert loss_after < 0.7 * loss_before
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)


def test_run_reports_every_step_and_validates_each_epoch(tiny_cache, torch_single_thread):
    from napari_tumorseg.training.data import validation_slices

    trainer = _tiny_trainer("unet", tiny_cache, 6, torch_single_thread, epoch_steps=3)
    trainer.validation = validation_slices(tiny_cache, per_case=2)
    saved = []
    trainer.save_state = saved.append
    reports = _run(trainer)
    assert [r.step for r in reports] == list(range(1, 7))
    assert [r.validation is not None for r in reports] == [False, False, True, False, False, True]
    assert set(reports[-1].validation) == {"WT", "TC", "ET"}
    assert [s.step for s in saved] == [3, 6] and len(trainer.history) == 2
    assert reports[0].lr < reports[1].lr  # warm-up


@pytest.mark.parametrize("arch", ["unet", "dycnn"])
def test_resumed_run_equals_the_uninterrupted_run(arch, tiny_cache, tmp_path, torch_single_thread):
    import torch

    from napari_tumorseg.training.state import load_training_state, save_training_state

    straight = _tiny_trainer(arch, tiny_cache, 8, torch, anneal_fraction=0.5)
    straight_losses = [r.loss for r in _run(straight)]

    first = _tiny_trainer(arch, tiny_cache, 8, torch, anneal_fraction=0.5)
    first_losses = [r.loss for r in _run(first, stop_after=3)]
    assert first.step == 3
    path = save_training_state(tmp_path / "run.train-state", first.state())
    second = _tiny_trainer(arch, tiny_cache, 8, torch, anneal_fraction=0.5)  # fresh weights, then the state
    second.load_state(load_training_state(path))
    assert second.step == 3
    second_losses = [r.loss for r in _run(second)]

    assert first_losses + second_losses == straight_losses
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    if arch == "dycnn":
        assert second.model.temperature == straight.model.temperature == 1.0


def test_dycnn_temperature_anneals_from_30_to_1_then_stays(tiny_cache, torch_single_thread):
    trainer = _tiny_trainer("dycnn", tiny_cache, 10, torch_single_thread, anneal_fraction=0.4)
    temperatures = [r.temperature for r in _run(trainer)]
    assert temperatures[0] == 30.0
    assert all(a > b for a, b in zip(temperatures[:4], temperatures[1:5]))
    assert temperatures[4:] == [1.0] * 6
    assert trainer.model.temperature == 1.0


def test_training_state_holds_no_pickle_and_rejects_other_files(tmp_path, torch_single_thread):
    import torch

    from napari_tumorseg.errors import ModelError
    from napari_tumorseg.training.state import TrainingState, load_training_state, save_training_state

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    path = save_training_state(tmp_path / "x.train-state", TrainingState(1, model.state_dict(), optimizer.state_dict(),
                                                                         {"note": "x"}))
    assert b"pickle" not in path.read_bytes() and path.read_bytes()[8:9] == b"{"  # a safetensors JSON header
    loaded = load_training_state(path)
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters())
    fresh.load_state_dict(loaded.optimizer)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    (tmp_path / "bad.train-state").write_bytes(b"not a state")
    with pytest.raises(ModelError, match="bad.train-state"):
        load_training_state(tmp_path / "bad.train-state")


def test_seed_ranges():
    from napari_tumorseg.training.data import overlapping, seed_range

    assert seed_range("3:6") == [3, 4, 5] and seed_range("1,4") == [1, 4]
    with pytest.raises(ValueError):
        seed_range("5:5")
    assert overlapping(range(5000, 5003), [5001, 7]) == [5001]


def test_random_appearance_keeps_background_and_normalisation_but_changes_contrast():
    from napari_tumorseg.training.intensity import randomise_appearance

    rng = np.random.default_rng(0)
    image = np.zeros((3, 64, 64), dtype=np.float32)
    image[:, 8:56, 8:56] = rng.normal(0.0, 1.0, (3, 48, 48)).astype(np.float32)
    image[:, 20:30, 20:30] += 3.0  # a bright lesion
    out = randomise_appearance(image.copy(), np.random.default_rng(1))
    brain = image != 0
    assert (out[~brain] == 0).all() and (out[brain] != 0).mean() > 0.99
    assert out[brain].mean() == pytest.approx(image[brain].mean(), abs=1e-3)
    assert out[brain].std() == pytest.approx(image[brain].std(), rel=1e-3)
    assert np.abs(out - image)[brain].mean() > 0.05
    # The lesion stays brighter than the rest: a contrast curve, not a shuffle.
    assert out[:, 20:30, 20:30].mean() > out[:, 35:55, 35:55].mean() + 1.0


def test_resampling_smoothness_removes_grain_but_keeps_background_normalisation_and_lesion():
    from napari_tumorseg.training.intensity import smooth_like_resampling

    rng = np.random.default_rng(0)
    image = np.zeros((3, 64, 64), dtype=np.float32)
    image[:, 8:56, 8:56] = 2.0 + rng.normal(0.0, 1.0, (3, 48, 48)).astype(np.float32)
    image[:, 20:30, 20:30] += 3.0
    out = smooth_like_resampling(image.copy(), np.random.default_rng(1))
    brain = image != 0
    assert (out[~brain] == 0).all()
    assert out[brain].mean() == pytest.approx(image[brain].mean(), abs=1e-4)
    assert out[brain].std() == pytest.approx(image[brain].std(), rel=1e-4)
    grain = [np.abs(np.diff(v[1, 8:56, 8:56], axis=-1)).mean() for v in (image, out)]
    assert grain[1] < 0.5 * grain[0]
    # The brain's edge is not darkened by the zeros around it (a normalised convolution).
    assert abs(out[1, 8, 35:55].mean() - out[1, 40:50, 35:55].mean()) < 0.3
    assert out[:, 20:30, 20:30].mean() > out[:, 35:55, 35:55].mean() + 1.0


def test_appearance_off_draws_nothing_so_older_runs_replay():
    from napari_tumorseg.training.data import Augmentation, SliceCache, sample_batch

    rng = np.random.default_rng(0)
    cache = SliceCache(images=(rng.normal(size=(4, 4, 32, 32)).astype(np.float16),),
                       labels=(rng.integers(0, 4, (4, 32, 32)).astype(np.uint8),),
                       availability=(np.ones(4, dtype=np.float32),), names=("a",), context=0)
    plain = sample_batch(cache, 3, 0, 4, Augmentation(crop=16))
    again = sample_batch(cache, 3, 0, 4, Augmentation(crop=16, appearance=0.0))
    changed = sample_batch(cache, 3, 0, 4, Augmentation(crop=16, appearance=1.0))
    unsmoothed = sample_batch(cache, 3, 0, 4, Augmentation(crop=16, smoothing=0.0))
    smoothed = sample_batch(cache, 3, 0, 4, Augmentation(crop=16, smoothing=1.0))
    np.testing.assert_array_equal(plain[0], again[0])
    np.testing.assert_array_equal(plain[0], unsmoothed[0])
    assert not np.array_equal(plain[0], changed[0])
    assert not np.array_equal(plain[0], smoothed[0])


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_case_making_workers_end_when_the_run_is_killed(tmp_path):
    """A busy worker started with die_with_parent ends when its parent is SIGKILLed (no orphans holding the CPU)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from multiprocessing import get_context\n"
        "from napari_tumorseg.training.sources import die_with_parent\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=get_context('spawn'), initializer=die_with_parent)\n"
        "    print(pool.submit(__import__('os').getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 60)  # the worker is busy, as when making a case\n"
        "    time.sleep(60)\n", encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        raise AssertionError("the worker outlived its killed parent")


def test_synthetic_training_slices_follow_the_generator_version_asked(tmp_path):
    """``tumorseg train --generator-version 3`` trains on version-3 cases, cached apart from version 2's."""
    from napari_tumorseg.synth.generate import GENERATOR_VERSION
    from napari_tumorseg.training.sources import SliceLayout, synthetic_cache_key, synthetic_slice_cache

    layout = SliceLayout(multiple=4, tumour_slices=2, empty_slices=1)
    caches = {v: synthetic_slice_cache("glioma", [1], layout, shape=TINY_SHAPE, cache_dir=tmp_path, workers=1,
                                       version=v) for v in ("2", "3")}
    assert synthetic_cache_key("glioma", [1], TINY_SHAPE, layout, "2") != synthetic_cache_key(
        "glioma", [1], TINY_SHAPE, layout, "3")
    assert len(list(tmp_path.glob("slices-glioma-*.npz"))) == 2
    assert not np.array_equal(caches["2"].images[0], caches["3"].images[0])
    assert synthetic_cache_key("glioma", [1], TINY_SHAPE, layout) == synthetic_cache_key(
        "glioma", [1], TINY_SHAPE, layout, GENERATOR_VERSION), "no version asked is the default version"


def test_bf16_training_runs_its_convolutions_in_bf16_keeps_float32_weights_and_learns(tiny_cache, torch_single_thread):
    import torch

    from napari_tumorseg.models.losses import dice_ce_loss
    from napari_tumorseg.training.data import Augmentation, sample_batch
    from napari_tumorseg.training.loop import TrainConfig

    trainer = _tiny_trainer("unet", tiny_cache, 20, torch, lr=1e-2, precision="bf16")
    seen: set[torch.dtype] = set()
    for module in trainer.model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype) if torch.is_grad_enabled() else None)
    x, y = (torch.from_numpy(a) for a in sample_batch(tiny_cache, 0, 0, 2, Augmentation(crop=32)))
    with torch.no_grad():
        loss_before = float(dice_ce_loss(trainer.model(x), y))
    for _ in range(30):
        trainer.train_step(x, y)
    with torch.no_grad():
        loss_after = float(dice_ce_loss(trainer.model(x), y))
    assert seen == {torch.bfloat16}
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    assert loss_after < 0.7 * loss_before
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        TrainConfig(precision="auto")


def test_the_weight_average_follows_its_recurrence_resumes_exactly_and_is_what_is_written(
    tiny_cache, tmp_path, torch_single_thread
):
    torch = torch_single_thread
    from napari_tumorseg.errors import ModelError
    from napari_tumorseg.training.state import load_training_state, save_training_state

    decay = 0.6
    straight = _tiny_trainer("unet", tiny_cache, 6, torch, ema_decay=decay)
    expected = {n: p.detach().clone() for n, p in straight.model.named_parameters()}
    for _ in straight.run():  # each yield follows one optimiser step
        for name, parameter in straight.model.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * parameter.detach()
    for name, value in expected.items():
        torch.testing.assert_close(straight.average.shadow[name], value, rtol=0, atol=1e-6)
    written = straight.final_model()
    for name, parameter in written.named_parameters():
        assert torch.equal(parameter, straight.average.shadow[name])
    assert not all(torch.equal(a, b) for a, b in zip(written.parameters(), straight.model.parameters()))

    first = _tiny_trainer("unet", tiny_cache, 6, torch, ema_decay=decay)
    _run(first, stop_after=2)
    path = save_training_state(tmp_path / "run.train-state", first.state())
    second = _tiny_trainer("unet", tiny_cache, 6, torch, ema_decay=decay)
    second.load_state(load_training_state(path))
    _run(second)
    for name, value in straight.average.shadow.items():
        assert torch.equal(second.average.shadow[name], value), name

    plain = _tiny_trainer("unet", tiny_cache, 6, torch)
    _run(plain, stop_after=2)
    assert plain.final_model() is plain.model and plain.state().average is None
    averaged = _tiny_trainer("unet", tiny_cache, 6, torch, ema_decay=decay)
    with pytest.raises(ModelError, match="no weight average"):
        averaged.load_state(plain.state())


def test_averaged_checkpoints_hold_the_mean_weights_and_refuse_another_architecture(tmp_path, torch_single_thread):
    import torch

    from napari_tumorseg.errors import ModelError
    from napari_tumorseg.models import build_model
    from napari_tumorseg.models.checkpoint import save_checkpoint
    from napari_tumorseg.training.averaging import average_checkpoints

    paths, models = [], []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        models.append(build_model("unet", base_width=4, depth=2))
        paths.append(tmp_path / f"m{seed}.safetensors")
        save_checkpoint(paths[-1], models[-1])
    averaged = dict(average_checkpoints(paths).named_parameters())
    moved = 0
    for name, parameter in models[0].named_parameters():
        mean = sum(dict(m.named_parameters())[name].detach() for m in models) / 3
        assert torch.allclose(averaged[name], mean, atol=1e-6)
        moved += not torch.allclose(averaged[name], parameter)
    assert moved > 0  # the random convolutions (norm scales start at 1 in every seed)
    save_checkpoint(tmp_path / "wide.safetensors", build_model("unet", base_width=8, depth=2))
    with pytest.raises(ModelError, match="wide.safetensors: its architecture differs"):
        average_checkpoints([paths[0], tmp_path / "wide.safetensors"])
