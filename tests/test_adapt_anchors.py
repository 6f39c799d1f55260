"""The source anchor and replay sets: deterministic, cached once on disk, rebuilt when damaged, cancellable."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_tumorseg.adapt import anchors
from napari_tumorseg.adapt.config import PHASE_PREPARING_SOURCE
from napari_tumorseg.jobs import Cancelled
from napari_tumorseg.models.config import ModelConfig

SHAPE = (48, 80, 80)
SEEDS = (5001, 5002)
CONFIG = ModelConfig(depth=3)


@pytest.fixture(autouse=True)
def _empty_memory():
    anchors._MEMORY.clear()
    yield
    anchors._MEMORY.clear()


def test_anchor_set_is_cached_on_disk_and_identical_when_read_back(tmp_path):
    first = anchors.anchor_set(CONFIG, seeds=SEEDS, shape=SHAPE, cache_dir=tmp_path)
    files = list(tmp_path.glob("source-slices-*.npz"))
    assert len(files) == 1
    assert first.num_slices == 2 * anchors.ANCHOR_SLICES_PER_CASE
    assert first.description["names"][0].startswith("glioma_05001:z")
    for inputs, labels in first.groups:
        assert inputs.shape[1] == CONFIG.in_channels and inputs.shape[2] % 8 == 0
        assert (labels > 0).any(axis=(1, 2)).all(), "every anchor slice goes through the tumour"
    anchors._MEMORY.clear()
    steps = anchors.anchor_set_steps(CONFIG, seeds=SEEDS, shape=SHAPE, cache_dir=tmp_path)
    with pytest.raises(StopIteration) as stop:
        next(steps)  # read from disk: no case is made, so no progress
    again = stop.value.value
    for (a, b), (c, d) in zip(first.groups, again.groups, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_a_damaged_cache_is_rebuilt(tmp_path):
    first = anchors.anchor_set(CONFIG, seeds=SEEDS[:1], shape=SHAPE, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("source-slices-*.npz")
    cache.write_bytes(b"not a zip file")
    anchors._MEMORY.clear()
    rebuilt = anchors.anchor_set(CONFIG, seeds=SEEDS[:1], shape=SHAPE, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.groups[0][0], rebuilt.groups[0][0])
    assert np.load(cache)["count"] == 1


def test_building_reports_progress_and_can_be_cancelled(tmp_path):
    cancel = threading.Event()
    steps = anchors.anchor_set_steps(CONFIG, seeds=SEEDS, shape=SHAPE, cache_dir=tmp_path, cancel=cancel)
    progress = next(steps)
    assert progress.phase == PHASE_PREPARING_SOURCE and (progress.done, progress.total) == (1, 2)
    cancel.set()
    with pytest.raises(Cancelled):
        next(steps)
    assert not list(tmp_path.glob("source-slices-*.npz")), "a cancelled build caches nothing"


def test_replay_pools_take_other_seeds_than_the_anchor(tmp_path):
    pools = anchors.replay_pools(5, CONFIG, shape=SHAPE, cache_dir=tmp_path)
    assert [len(p) for p in pools] == [4, 1]
    assert all(name.startswith("glioma_0600") for pool in pools for name in pool.names)
    assert not set(anchors.REPLAY_SEEDS) & set(anchors.ANCHOR_SEEDS)
    assert anchors.replay_pools(0, CONFIG, cache_dir=tmp_path) == []


def test_the_guards_anchor_is_one_middle_slice_from_each_of_sixteen_cases(tmp_path):
    # Four slices of four cases measured four tumours; the guard's verdicts follow a larger
    # held-out source set far better with one slice from each of sixteen (docs/results/guard-anchor).
    anchor = anchors.anchor_set(CONFIG, shape=SHAPE, cache_dir=tmp_path)
    cases = [name.split(":z")[0] for name in anchor.description["names"]]
    assert anchor.num_slices == 16 and len(set(cases)) == 16
    assert not set(anchor.description["seeds"]) & set(anchors.REPLAY_SEEDS)


def test_the_faint_replay_case_enhances_faintly_on_every_replayed_slice():
    # The full BraTS grid, as the plugin replays it: the case must teach faint enhancement on each of its slices.
    from napari_tumorseg.adapt.corrections import slices_with_tumour
    from napari_tumorseg.synth import generate_phantom

    phantom = generate_phantom(anchors.DOMAIN, anchors.REPLAY_FAINT_SEED, version=anchors.REPLAY_FAINT_VERSION)
    assert phantom.contrast.faint == "enhancement"
    picks = slices_with_tumour(phantom.case.label, limit=anchors.REPLAY_SLICES_PER_CASE)
    assert len(picks) == anchors.REPLAY_SLICES_PER_CASE and all((phantom.case.label[z] == 3).any() for z in picks)  # 3: enhancing


def test_a_faint_replay_swaps_only_the_last_case(tmp_path):
    default = anchors.replay_pools(8, CONFIG, shape=SHAPE, cache_dir=tmp_path)
    faint = anchors.replay_pools(8, CONFIG, shape=SHAPE, cache_dir=tmp_path, faint=True)
    assert default[0].names == faint[0].names and torch.equal(default[0].inputs, faint[0].inputs)
    assert all(name.startswith("glioma_06002") for name in default[1].names)
    assert len(faint[1]) == 4 and all(name.startswith("glioma_06018") for name in faint[1].names)
    assert len(list(tmp_path.glob("source-slices-*.npz"))) == 2 + 1, "the version-7 case has a cache of its own"
    only = anchors.replay_pools(3, CONFIG, shape=SHAPE, cache_dir=tmp_path, faint=True)
    assert len(only) == 1 and all(name.startswith("glioma_06018") for name in only[0].names)


def test_the_faint_replay_reaches_the_configuration_from_the_command_line():
    from napari_tumorseg.cli import build_parser
    from napari_tumorseg.cli.adapt import _config

    for flags, expected in (([], False), (["--replay-faint"], True), (["--no-replay-faint"], False)):
        assert _config(build_parser().parse_args(["bench-adapt", *flags])).replay_faint is expected


def test_the_faint_calibration_cases_enhance_faintly_on_their_calibration_slice():
    # The full BraTS grid, as the plugin builds the set: each slice must hold faintly enhancing tumour.
    from napari_tumorseg.adapt.corrections import slices_with_tumour
    from napari_tumorseg.synth import generate_phantom

    assert len(anchors.FAINT_CALIBRATION_SEEDS) == 4
    assert not set(anchors.FAINT_CALIBRATION_SEEDS) & set(anchors.ANCHOR_SEEDS + anchors.REPLAY_SEEDS)
    for seed in anchors.FAINT_CALIBRATION_SEEDS:
        phantom = generate_phantom(anchors.DOMAIN, seed, version=anchors.REPLAY_FAINT_VERSION)
        assert phantom.contrast.faint == "enhancement"
        (z,) = slices_with_tumour(phantom.case.label, limit=1)
        assert (phantom.case.label[z] == 3).any()  # 3: enhancing


def test_the_calibration_sets_follow_the_config(tmp_path):
    from napari_tumorseg.adapt.config import default_config

    assert anchors.calibration_sets(default_config("active"), CONFIG, shape=SHAPE, cache_dir=tmp_path) == []
    off = default_config("active", keep_absent=False, keep_absent_faint=True)
    assert anchors.calibration_sets(off, CONFIG, shape=SHAPE, cache_dir=tmp_path) == []
    (faint,) = anchors.calibration_sets(default_config("active", keep_absent_faint=True), CONFIG, shape=SHAPE,
                                        cache_dir=tmp_path)
    assert faint.name == anchors.FAINT_CALIBRATION_SET and faint.num_slices == 4
    assert all(name.startswith(f"glioma_0{s}") for name, s in zip(faint.description["names"],
                                                                   anchors.FAINT_CALIBRATION_SEEDS))
