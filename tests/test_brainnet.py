"""The brain-mask network: its file, its inference on a volume, its training (tiny), and the shipped one on a head."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.errors import ModelError
from napari_tumorseg.prepare.brainnet import (
    BRAIN_THRESHOLD, SHIPPED, BrainNetConfig, build_brain_net, load_brain_net, mask_from_probability,
    predict_probability, save_brain_net, set_threshold, threshold_of,
)
from napari_tumorseg.resources import resource_path

TINY = BrainNetConfig(base_width=4, depth=2, context=1)


def test_the_network_file_loads_back_and_a_foreign_file_is_refused(tmp_path, torch_single_thread):
    model = build_brain_net(TINY)
    path = save_brain_net(tmp_path / "brain.safetensors", model, TINY, {"name": "tiny"})
    loaded, config, card = load_brain_net(path)
    assert config == TINY and card == {"name": "tiny"}
    for name, tensor in model.state_dict().items():
        np.testing.assert_allclose(loaded.state_dict()[name].numpy(), tensor.numpy(), atol=1e-3)  # stored as float16
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00\x01 not a network")
    for bad in (tmp_path / "garbage.safetensors", resource_path("models", "glioma-unet.safetensors"),
                tmp_path / "missing.safetensors"):
        with pytest.raises(ModelError) as caught:
            load_brain_net(bad)
        assert "\n" not in str(caught.value) and str(bad) in str(caught.value)


def test_prediction_lands_on_the_volume_grid_and_the_mask_is_one_filled_piece(torch_single_thread):
    model = build_brain_net(TINY)
    volume = np.random.default_rng(0).random((9, 21, 17)).astype(np.float32)
    probability = predict_probability(model, TINY, volume, (4.0, 1.3, 1.3))
    assert probability.shape == volume.shape and 0.0 <= probability.min() and probability.max() <= 1.0
    blobs = np.zeros((12, 12, 12), np.float32)
    blobs[2:8, 2:8, 2:8] = 0.9
    blobs[4, 4, 4] = 0.1  # a hole
    blobs[10, 10, 10] = 0.9  # a speck apart
    mask = mask_from_probability(blobs)
    assert mask[4, 4, 4] and not mask[10, 10, 10] and mask.sum() == 216
    blobs[1, 2:8, 2:8] = BRAIN_THRESHOLD - 0.02  # a rim the network is unsure of stays out just below the threshold
    assert mask_from_probability(blobs).sum() == 216
    blobs[1, 2:8, 2:8] = BRAIN_THRESHOLD + 0.02  # and joins just above it
    assert mask_from_probability(blobs).sum() == 216 + 36


def test_each_network_strips_at_the_threshold_its_file_carries(tmp_path, torch_single_thread):
    from napari_tumorseg.io.case import Geometry
    from napari_tumorseg.prepare.brain import extract_brain

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    path = save_brain_net(tmp_path / "brain.safetensors", build_brain_net(TINY), TINY, {"name": "tiny"})
    assert threshold_of(load_brain_net(path)[2]) == BRAIN_THRESHOLD  # never chosen: the default
    images = {"t1c": np.random.default_rng(2).random((9, 21, 17)).astype(np.float32)}
    geometry = Geometry(np.diag([1.3, 1.3, 4.0, 1.0]), (17, 21, 9))
    masks = {}
    for threshold in (0.02, 0.98):  # an untrained network's probabilities lie mostly between these
        low_or_high = tmp_path / f"brain-{threshold}.safetensors"
        low_or_high.write_bytes(path.read_bytes())
        set_threshold(low_or_high, threshold, "a test")
        _, _, card = load_brain_net(low_or_high)
        assert card["brain_threshold"] == threshold and card["threshold_note"] == "a test" and card["name"] == "tiny"
        masks[threshold] = extract_brain(images, geometry, net_path=str(low_or_high))
    assert masks[0.02].all() and masks[0.98].sum() < 0.5 * masks[0.02].sum()  # one threshold for both: equal
    with pytest.raises(ValueError):
        set_threshold(path, 1.5, "out of range")
    save_brain_net(tmp_path / "odd.safetensors", build_brain_net(TINY), TINY, {"brain_threshold": 7})
    with pytest.raises(ModelError, match="threshold"):
        load_brain_net(tmp_path / "odd.safetensors")


def test_the_shipped_network_carries_its_chosen_threshold():
    if not resource_path(*SHIPPED).is_file():
        pytest.skip("the shipped brain-mask network is not built")
    _, _, card = load_brain_net()
    assert threshold_of(card) == 0.6 and "validation heads" in card["threshold_note"]


def test_the_sequences_probabilities_are_averaged_then_brought_back_once(tmp_path, torch_single_thread):
    from napari_tumorseg.io.case import Geometry
    from napari_tumorseg.prepare.brain import brain_probability

    model = build_brain_net(TINY)
    path = save_brain_net(tmp_path / "brain.safetensors", model, TINY, {"name": "tiny"})
    model, _, _ = load_brain_net(path)  # the float16-stored weights brain_probability uses
    rng = np.random.default_rng(1)
    images = {key: rng.random((9, 21, 17)).astype(np.float32) for key in ("t1c", "flair", "t2")}
    geometry = Geometry(np.diag([1.3, 1.3, 4.0, 1.0]), (17, 21, 9))  # RAS storage: canonical (9, 21, 17)
    assert geometry.canonical_shape == (9, 21, 17)
    each = np.mean([predict_probability(model, TINY, v, geometry.spacing) for v in images.values()], axis=0)
    np.testing.assert_allclose(brain_probability(images, geometry, net_path=str(path)), each, atol=1e-5)


def test_training_a_few_steps_writes_the_network_and_its_card_and_resumes(tmp_path, torch_single_thread):
    from napari_tumorseg.jobs import drive
    from napari_tumorseg.training.brain import BrainTrainSettings, state_path_for, train_brain_net
    from napari_tumorseg.training.brain_data import BrainAugmentation

    settings = BrainTrainSettings(out=str(tmp_path / "brain.safetensors"), heads=(0,), val_heads=(1,), steps=3,
                                  batch_size=2, epoch_steps=2, head_shape=(24, 40, 40), net=TINY,
                                  augmentation=BrainAugmentation(crop=32), cache_dir=str(tmp_path / "heads"))
    out = drive(train_brain_net(settings, command="tumorseg train-brain ..."))
    _, config, card = load_brain_net(out)
    assert config == TINY and card["training"]["data"]["generator_version"] and len(card["training"]["history"]) == 2
    assert state_path_for(out).is_file() and len(list((tmp_path / "heads").glob("*.npz"))) == 2
    longer = BrainTrainSettings(**{**settings.__dict__, "steps": 4})
    drive(train_brain_net(longer, resume=True))
    _, _, card = load_brain_net(out)
    assert [h["step"] for h in card["training"]["history"]] == [2, 3, 4] and card["training"]["resumed"]
    # A longer schedule stopped where the state already is: the network is written without making any head.
    (tmp_path / "heads").rename(tmp_path / "kept")
    drive(train_brain_net(BrainTrainSettings(**{**settings.__dict__, "steps": 9}), resume=True, until=4))
    _, _, card = load_brain_net(out)
    assert not (tmp_path / "heads").exists() and card["training"]["steps_trained"] == 4
    page = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "Stopped at step 4 of the 9-step" in page and "not for clinical use" in page


@pytest.mark.skipif(not resource_path(*SHIPPED).is_file(), reason="the shipped brain-mask network is not built")
def test_the_shipped_network_finds_the_brain_of_an_unseen_synthetic_head(torch_single_thread):
    from napari_tumorseg.prepare.brain import extract_brain
    from napari_tumorseg.synth.head import make_head

    head = make_head("metastasis", 9101, shape=(78, 120, 120))  # about 2 mm, a seed no training used
    mask = extract_brain({"t1c": head.case.images["t1c"]}, head.case.geometry)
    dice = 2 * np.logical_and(mask, head.brain).sum() / (mask.sum() + head.brain.sum())
    assert dice > 0.9, dice
    stripped = head.stripped()
    mask = extract_brain({"t2": stripped.images["t2"]}, stripped.geometry)  # a stripped scan keeps its brain
    dice = 2 * np.logical_and(mask, head.brain).sum() / (mask.sum() + head.brain.sum())
    assert dice > 0.9, dice
