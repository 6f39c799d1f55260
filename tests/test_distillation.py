"""Distillation: a frozen teacher's flip-averaged softmax as a second target, the loss, the Trainer and the CLI."""

from __future__ import annotations

import json

import pytest

from napari_tumorseg.cli import main

TINY = "24,48,48"


def _tiny(torch, seed, **kwargs):
    from napari_tumorseg.models import build_model

    torch.manual_seed(seed)
    return build_model("unet", base_width=4, depth=2, **kwargs).eval()


def test_the_teacher_gives_its_flip_averaged_softmax_and_is_frozen(torch_single_thread):
    import torch

    from napari_tumorseg.training.distillation import FlipTeacher

    model = _tiny(torch, 0)
    x = torch.randn(2, model.config.in_channels, 32, 32)
    teacher = FlipTeacher(model, "all")
    with torch.no_grad():
        by_hand = sum(torch.flip(torch.softmax(model(torch.flip(x, d)), 1), d) for d in ((), (-1,), (-2,), (-2, -1)))
    assert torch.allclose(teacher(x), by_hand / 4, atol=1e-6)
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="flips must be one of"):
        FlipTeacher(model, "sideways")


def test_distillation_loss_is_zero_on_agreement_and_its_gradient_moves_the_student_to_the_teacher():
    import torch

    from napari_tumorseg.training.distillation import distillation_loss

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=generator)
    assert float(distillation_loss(logits, logits.softmax(1))) == pytest.approx(0.0, abs=1e-6)
    teacher = torch.randn(2, 4, 8, 8, generator=generator).softmax(1)
    student = logits.clone().requires_grad_(True)
    before = distillation_loss(student, teacher)
    assert before.item() > 0.1
    before.backward()
    with torch.no_grad():
        after = distillation_loss(student - 10.0 * student.grad, teacher)
    assert after.item() < before.item()


def test_the_trainer_adds_the_weighted_teacher_term_to_the_truths_loss(torch_single_thread):
    import torch

    from napari_tumorseg.models.losses import dice_ce_loss
    from napari_tumorseg.training.data import Augmentation, sample_batch
    from napari_tumorseg.training.distillation import FlipTeacher, distillation_loss
    from napari_tumorseg.training.loop import TrainConfig, Trainer
    from napari_tumorseg.synth.generate import make_case
    from napari_tumorseg.training.data import build_slice_cache

    cache = build_slice_cache([make_case("glioma", 0, shape=(24, 48, 48))], multiple=4, tumour_slices=3,
                              empty_slices=1)
    aug = Augmentation(crop=32)
    inputs, targets = (torch.from_numpy(a) for a in sample_batch(cache, 0, 0, 2, aug))
    teacher = FlipTeacher(_tiny(torch, 1), "lr")
    student = _tiny(torch, 0)
    with torch.no_grad():
        logits = student.train()(inputs)
        expected = dice_ce_loss(logits, targets) + 0.7 * distillation_loss(logits, teacher(inputs))
    config = TrainConfig(steps=1, batch_size=2, distill_weight=0.7, augmentation=aug)
    trainer = Trainer(student, cache, config, teacher=teacher)
    assert trainer.train_step(inputs, targets) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="distill_weight"):
        TrainConfig(distill_weight=-1.0)


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A tiny U-Net trained 2 steps by the CLI: the starting weights and the teacher of the runs below."""
    folder = tmp_path_factory.mktemp("distil")
    out = folder / "parent.safetensors"
    assert main(_train_args(out, folder / "cache") + ["--steps", "2"]) == 0
    return out


def _train_args(out, cache):
    return ["train", "--arch", "unet", "--out", str(out), "--synthetic-seeds", "0:2", "--val-seeds", "100:101",
            "--shape", TINY, "--batch", "2", "--crop", "32", "--base-width", "4", "--depth", "2",
            "--epoch-steps", "2", "--tumour-slices", "3", "--empty-slices", "1", "--threads", "1", "--workers", "1",
            "--cache-dir", str(cache), "--device", "cpu"]


def test_train_cli_starts_from_init_learns_a_teacher_and_its_card_names_both(parent, tmp_path, torch_single_thread):
    import hashlib

    import torch

    from napari_tumorseg.models.checkpoint import load_checkpoint
    from napari_tumorseg.training.state import load_training_state, state_path_for

    out, init = tmp_path / "student.safetensors", tmp_path / "start.safetensors"
    init.write_bytes(parent.read_bytes())
    # A learning rate of ~0: the written weights are the starting ones, so --init reached the network.
    args = _train_args(out, parent.parent / "cache") + ["--steps", "1", "--lr", "1e-12", "--init", str(init),
                                                         "--teacher", str(parent), "--teacher-flips", "lr"]
    assert main(args) == 0
    start, written = load_checkpoint(parent).model.state_dict(), load_checkpoint(out).model.state_dict()
    assert all(torch.allclose(start[k], written[k], atol=1e-6) for k in start)
    training = json.loads(out.with_name("student.card.json").read_text(encoding="utf-8"))["training"]
    digest = hashlib.sha256(parent.read_bytes()).hexdigest()
    assert training["initial_weights"] == {"path": str(init), "sha256": digest}
    assert training["teacher"] == {"path": str(parent), "sha256": digest, "flips": "lr", "weight": 1.0}
    assert "KL(teacher's softmax averaged over flips 'lr'" in training["loss"]
    page = (tmp_path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"- Started from: `{init}` (SHA-256 {digest[:12]}…)" in page and "flips 'lr', weight 1.0" in page
    assert "--teacher-flips lr" in training["command"] and "--distill-weight 1.0" in training["command"]
    assert load_training_state(state_path_for(out)).info["args"]["teacher"] == str(parent)  # a resume keeps it
    init.unlink()  # a resumed run takes its weights from its state, and its card keeps what it started from
    assert main(["train", "--resume", str(state_path_for(out)), "--out", str(out), "--steps", "2", "--threads", "1",
                 "--device", "cpu", "--workers", "1", "--cache-dir", str(parent.parent / "cache")]) == 0
    resumed = json.loads(out.with_name("student.card.json").read_text(encoding="utf-8"))["training"]
    assert resumed["steps"] == 2 and resumed["initial_weights"] == training["initial_weights"]
    assert resumed["teacher"] == training["teacher"]


def test_train_cli_refuses_a_teacher_setting_without_a_teacher_and_a_teacher_of_other_inputs(parent, tmp_path, capsys):
    cache = parent.parent / "cache"
    assert main(_train_args(tmp_path / "a.safetensors", cache) + ["--distill-weight", "0.5"]) == 2
    assert "--teacher-flips and --distill-weight need --teacher" in capsys.readouterr().err
    status = main(_train_args(tmp_path / "b.safetensors", cache) + ["--steps", "1", "--context", "1",
                                                                  "--teacher", str(parent)])
    err = capsys.readouterr().err
    assert status == 2 and "the teacher's context is 0, the network's 1" in err and "Traceback" not in err
    assert not (tmp_path / "b.safetensors").exists()
