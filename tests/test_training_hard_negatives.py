"""Hard negatives: mining a model's false tumour, drawing crops around it, the train command's options."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from napari_tumorseg.cli import main

TINY = "40,64,64"


def _slices(value: float, label: np.ndarray) -> "SliceCache":  # noqa: F821
    from napari_tumorseg.training.data import SliceCache

    images = np.full((len(label), 4, *label.shape[1:]), value, dtype=np.float16)
    return SliceCache(images=(images,), labels=(label,), availability=(np.ones(4, dtype=np.float32),),
                      names=("case",), context=0)


def test_the_slices_with_most_false_tumour_are_kept_in_order_and_thin_ones_dropped():
    from napari_tumorseg.training.hard_negatives import false_tumour_slices

    false = np.zeros((6, 8, 8), dtype=bool)
    false[1, :2, :2] = True  # 4 voxels
    false[3, :5, :5] = True  # 25
    false[4, :3, :3] = True  # 9
    assert false_tumour_slices(false, per_case=2, min_voxels=1).tolist() == [3, 4]
    assert false_tumour_slices(false, per_case=5, min_voxels=5).tolist() == [3, 4]
    assert false_tumour_slices(false, per_case=5, min_voxels=30).tolist() == []


def test_a_margin_keeps_only_false_tumour_that_far_from_the_lesion_in_millimetres():
    from napari_tumorseg.training.hard_negatives import away_from_tumour

    label = np.zeros((1, 1, 12), dtype=np.uint8)
    label[0, 0, 5] = 2
    np.testing.assert_array_equal(away_from_tumour(label, (1, 1, 1), 0)[0, 0], label[0, 0] == 0)
    # 1 mm voxels: 3 mm or more away leaves x <= 2 and x >= 8; 2 mm voxels double every distance
    assert np.flatnonzero(away_from_tumour(label, (1, 1, 1), 3)[0, 0]).tolist() == [0, 1, 2, 8, 9, 10, 11]
    assert np.flatnonzero(away_from_tumour(label, (1, 1, 2), 3)[0, 0]).tolist() == [0, 1, 2, 3, 7, 8, 9, 10, 11]
    assert away_from_tumour(np.zeros((2, 2, 2), np.uint8), (1, 1, 1), 5).all()  # no lesion: everything is away


@dataclass
class _Marks:
    """A stand-in segmenter: the truth plus a false blob on two slices (what a model confusing anatomy gives)."""

    blob: np.ndarray

    def __post_init__(self):
        from napari_tumorseg.models.config import PreprocessingConfig
        from napari_tumorseg.models.config import ModelConfig

        self.config = ModelConfig(base_width=4, depth=2)
        self.preprocessing = PreprocessingConfig()

    def segment(self, case):
        from types import SimpleNamespace

        labels = case.label.copy()
        labels[self.blob] = 2
        return SimpleNamespace(labels=labels)


def test_mining_keeps_the_falsely_marked_slices_with_their_truth_and_where_the_false_tumour_lies(small_glioma):
    from napari_tumorseg.inference.preprocess import prepare_case
    from napari_tumorseg.training.hard_negatives import mine_case

    case = small_glioma
    blob = np.zeros(case.label.shape, dtype=bool)
    brain = np.all([image > 0 for image in case.images.values()], axis=0)
    free = np.flatnonzero(~case.label.reshape(len(blob), -1).any(axis=1) & brain.reshape(len(blob), -1).any(axis=1))
    z1, z2 = int(free[len(free) // 2]), int(free[len(free) // 2 + 1])
    ys, xs = np.nonzero(brain[z1] & brain[z2])
    y, x = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    blob[[z1, z2], y - 2 : y + 3, x - 2 : x + 3] = True
    images, labels, availability, focus = mine_case(_Marks(blob), case, context=1, per_case=4, min_voxels=5)
    prepared = prepare_case(case, multiple=4)
    cropped_blob = prepared.crop.crop(blob)
    kept = np.flatnonzero(cropped_blob.reshape(len(cropped_blob), -1).any(axis=1))
    assert len(labels) == 2 and images.shape[:2] == (2, 12) and availability.tolist() == [1, 1, 1, 1]
    np.testing.assert_array_equal(focus, cropped_blob[kept])
    np.testing.assert_array_equal(labels, prepared.crop.crop(case.label)[kept])  # the truth, not the mistake
    np.testing.assert_array_equal(images[:, 4:8].astype(np.float32), prepared.images[:, kept].transpose(1, 0, 2, 3)
                                  .astype(np.float16).astype(np.float32))


def test_hard_crops_hold_their_false_tumour_and_none_are_drawn_at_probability_zero(tmp_path):
    from napari_tumorseg.training.data import Augmentation, sample_batch
    from napari_tumorseg.training.hard_negatives import HardNegatives

    rng = np.random.default_rng(0)
    plain = _slices(1.0, rng.integers(0, 4, (4, 48, 48)).astype(np.uint8))
    focus = np.zeros((1, 48, 48), dtype=bool)
    focus[0, 40, 3] = True  # one false voxel near a corner: a crop that missed it would show no class 2
    hard_label = np.zeros((1, 48, 48), dtype=np.uint8)
    hard_label[0, 40, 3] = 2
    hard = HardNegatives(_slices(7.0, hard_label), (focus,))
    again = HardNegatives.load(hard.save(tmp_path / "hard.npz"))
    x, y = sample_batch(plain, 3, 0, 6, Augmentation(crop=16, modality_dropout=0.0, hard_negative_prob=1.0), again)
    assert all((y[b] == 2).sum() == 1 for b in range(6))
    assert x[:, :4].min() > 5  # every sample came from the mined slice (value 7, jittered by at most 10 %)
    off = sample_batch(plain, 3, 0, 6, Augmentation(crop=16), hard)
    none = sample_batch(plain, 3, 0, 6, Augmentation(crop=16))
    np.testing.assert_array_equal(off[0], none[0])  # probability 0 draws nothing: older runs replay exactly
    with pytest.raises(ValueError, match="not a napari-tumorseg-hard-negatives"):
        HardNegatives.load(plain.save(tmp_path / "slices.npz"))  # a slice cache is not a mining


def test_a_mined_slice_without_false_tumour_is_refused():
    from napari_tumorseg.training.hard_negatives import HardNegatives

    with pytest.raises(ValueError, match="at least one focus voxel"):
        HardNegatives(_slices(1.0, np.zeros((1, 8, 8), dtype=np.uint8)), (np.zeros((1, 8, 8), dtype=bool),))


def _train_args(out, cache):
    return ["train", "--arch", "unet", "--out", str(out), "--synthetic-seeds", "0:2", "--val-seeds", "100:101",
            "--shape", TINY, "--batch", "2", "--crop", "32", "--base-width", "4", "--depth", "2",
            "--epoch-steps", "2", "--tumour-slices", "3", "--empty-slices", "1", "--threads", "1", "--workers", "1",
            "--cache-dir", str(cache), "--device", "cpu"]


def test_train_cli_mines_its_parent_and_the_card_says_so_then_refuses_options_without_a_model(
    tmp_path, capsys, torch_single_thread
):
    from napari_tumorseg.training.state import load_training_state, state_path_for

    parent, child = tmp_path / "parent.safetensors", tmp_path / "child.safetensors"
    assert main(_train_args(parent, tmp_path / "cache") + ["--steps", "2"]) == 0
    status = main(_train_args(child, tmp_path / "cache") + ["--steps", "2", "--init", str(parent), "--hard-negatives",
                                                            str(parent), "--hard-negative-prob", "0.5"])
    err = capsys.readouterr().err
    assert status == 0, err
    data = json.loads(child.with_name("child.card.json").read_text(encoding="utf-8"))["training"]["data"]
    mined = data["hard_negatives"]
    assert mined["seeds"] == "0:2" and mined["slices_per_case"] == 4 and mined["probability"] == 0.5
    assert mined["margin_mm"] == 0
    assert mined["slices"] >= 1 and mined["model"]["path"] == str(parent)
    assert f"{mined['slices']} hard slices on {mined['cases']} cases" in err  # the log says what was found
    assert list((tmp_path / "cache").glob("hard-glioma-*.npz"))  # mined once, kept for a resume
    assert load_training_state(state_path_for(child)).info["args"]["hard_negatives"] == str(parent)
    assert main(_train_args(tmp_path / "x.safetensors", tmp_path / "cache") + ["--hard-negative-prob", "0.5"]) == 2
    assert "need --hard-negatives" in capsys.readouterr().err
    assert main(_train_args(tmp_path / "y.safetensors", tmp_path / "cache") + [
        "--hard-negatives", str(parent), "--hard-negative-seeds", "5:7"]) == 2
    assert "are not training cases" in capsys.readouterr().err
    assert main(_train_args(tmp_path / "z.safetensors", tmp_path / "cache") + ["--hard-negative-margin", "5"]) == 2
    assert "need --hard-negatives" in capsys.readouterr().err
    assert main(_train_args(tmp_path / "w.safetensors", tmp_path / "cache") + [
        "--hard-negatives", str(parent), "--hard-negative-margin", "-1"]) == 2
    assert "must be 0 or more" in capsys.readouterr().err
