"""Training the brain-mask network on synthetic heads: a small dedicated trainer, resumable, as a long job.

``train_brain_net(settings)`` is a generator (the ``jobs`` contract): it
makes or reads the heads, trains with AdamW (linear warm-up, cosine decay)
on cross-entropy plus soft Dice of the brain, scores whole held-out heads
every ``epoch_steps``, saves its state beside the output there (and when
cancelled), and writes the float16 checkpoint with its card at the end.
``tumorseg train-brain`` runs it; ``scripts/train_brain_mask.sh`` holds the
command that made the shipped network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..jobs import CancelFlag, Cancelled, Clock, Progress
from ..prepare.brainnet import BrainNetConfig
from .brain_data import HEAD_SHAPE, BrainAugmentation, HeadSet, build_head_set, head_domain, sample_brain_batch

STATE_SUFFIX = ".train-state"


@dataclass(frozen=True)
class BrainTrainSettings:
    """One run's settings (saved in its state and its card)."""

    out: str
    heads: tuple[int, ...] = tuple(range(100))
    val_heads: tuple[int, ...] = tuple(range(9000, 9006))
    steps: int = 2000
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 50
    min_lr_fraction: float = 0.02
    weight_decay: float = 1e-4
    seed: int = 0
    epoch_steps: int = 250
    cache_dir: str | None = None
    net: BrainNetConfig = field(default_factory=BrainNetConfig)
    augmentation: BrainAugmentation = field(default_factory=BrainAugmentation)

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = min((step - self.warmup_steps) / max(self.steps - self.warmup_steps, 1), 1.0)
        floor = self.lr * self.min_lr_fraction
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heads"], data["val_heads"] = _span(self.heads), _span(self.val_heads)
        return data


def _span(seeds: tuple[int, ...]) -> str:
    if seeds and list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}:{seeds[-1] + 1}"
    return ",".join(str(s) for s in seeds)


def state_path_for(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + STATE_SUFFIX)


def brain_loss(logits, target):
    """Cross-entropy plus (1 - soft Dice of the brain class)."""
    import torch.nn.functional as F

    ce = F.cross_entropy(logits, target)
    probability = logits.softmax(dim=1)[:, 1]
    truth = target.to(probability.dtype)
    dice = (2 * (probability * truth).sum() + 1.0) / (probability.sum() + truth.sum() + 1.0)
    return ce + (1 - dice)


def score_heads(model, config: BrainNetConfig, data: HeadSet) -> float:
    """Mean Dice of the whole-volume brain mask over held-out heads, each through one sequence."""
    from ..prepare.brainnet import INPUT_CLIP, mask_from_probability, predict_probability
    from .brain_data import QUANT

    scores = []
    for index, (images, brain) in enumerate(zip(data.images, data.brains)):
        present = [c for c in range(images.shape[0]) if images[c].any()]
        channel = present[index % len(present)]
        volume = images[channel].astype(np.float32) * np.float32(INPUT_CLIP / QUANT)
        spacing = (config.spacing_mm,) * 3
        mask = mask_from_probability(predict_probability(model, config, volume, spacing))
        truth = brain > 0
        scores.append(2.0 * np.logical_and(mask, truth).sum() / max(mask.sum() + truth.sum(), 1))
    return float(np.mean(scores))


def train_brain_net(settings: BrainTrainSettings, *, resume: bool = False, command: str = "",
                    cancel: CancelFlag = None) -> Generator[Progress, None, Path]:
    """Train (or continue) the brain-mask network; returns the checkpoint written.

    Args:
        settings: the run.
        resume: continue from the state beside ``settings.out`` (its step, weights and optimiser).
        command: the command line, for the card.
        cancel: checked before every step; a cancel saves the state, then raises ``jobs.Cancelled``.
    """
    import torch

    from ..models.unet import to_channels_last
    from ..prepare.brainnet import build_brain_net, save_brain_net
    from .state import TrainingState, load_training_state, save_training_state

    clock = Clock(len(settings.heads) + len(settings.val_heads), "making heads", cancel)
    data = yield from _heads(settings.heads, settings.cache_dir, clock)
    validation = yield from _heads(settings.val_heads, settings.cache_dir, clock)
    torch.manual_seed(settings.seed)
    model = to_channels_last(build_brain_net(settings.net))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    step, history, wall = 0, [], 0.0
    state_path = state_path_for(settings.out)
    if resume:
        state = load_training_state(state_path)
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        step, history, wall = state.step, state.info.get("history", []), float(state.info.get("wall_time_s", 0.0))

    def save_state() -> None:
        weights = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
        info = {"settings": settings.to_dict(), "history": history, "wall_time_s": wall + clock.elapsed}
        save_training_state(state_path, TrainingState(step, weights, optimizer.state_dict(), info))

    clock = Clock(settings.steps, "training", cancel)
    clock.done = step
    while step < settings.steps:
        try:
            clock.check()
        except Cancelled:
            save_state()
            raise
        try:
            loss = _step(model, optimizer, data, settings, step)
        except KeyboardInterrupt:  # Ctrl-C between two checks: keep what the run has learnt
            save_state()
            raise
        step += 1
        entry = {"step": step, "loss": loss}
        if step % settings.epoch_steps == 0 or step == settings.steps:
            entry["validation_dice"] = score_heads(model, settings.net, validation)
            history.append(entry)
            save_state()
        yield clock.tick(detail=f"Dice {entry.get('validation_dice', float('nan')):.3f}", loss=entry["loss"], data=entry)
    wall += clock.elapsed
    card = _card(settings, data, history, wall, command, resume)
    out = save_brain_net(settings.out, model, settings.net, card)
    from ..io.atomic import atomic_write_json

    atomic_write_json(Path(out).with_name(Path(out).stem + ".card.json"), card, overwrite=True, sort_keys=True)
    return out


def _step(model, optimizer, data: HeadSet, settings: BrainTrainSettings, step: int) -> float:
    """One optimisation step; returns its loss."""
    import torch

    inputs, targets = sample_brain_batch(data, step, settings.seed, settings.batch_size, settings.net.context,
                                         settings.augmentation)
    for group in optimizer.param_groups:
        group["lr"] = settings.lr_at(step)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    x = torch.from_numpy(inputs).contiguous(memory_format=torch.channels_last)
    loss = brain_loss(model(x), torch.from_numpy(targets))
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _heads(seeds, cache_dir, clock: Clock) -> Generator[Progress, None, HeadSet]:
    """Make the heads one by one, a progress report after each (and a cancel check before each)."""
    made: list[HeadSet] = []
    for seed in seeds:
        clock.check()
        made.append(build_head_set([seed], cache_dir))
        yield clock.tick(detail=made[-1].names[0])
    return HeadSet([m.images[0] for m in made], [m.brains[0] for m in made], [m.names[0] for m in made])


def _card(settings: BrainTrainSettings, data: HeadSet, history: list, wall: float, command: str,
          resumed: bool) -> dict[str, Any]:
    from datetime import datetime, timezone

    from ..machine import describe_machine
    from ..synth.generate import GENERATOR_VERSION
    from ..synth.head import HEAD_VERSION

    final = next((h["validation_dice"] for h in reversed(history) if "validation_dice" in h), None)
    return {
        "name": Path(settings.out).stem,
        "intended_use": "Brain extraction (skull stripping) before tumour segmentation. Trained on synthetic heads "
                        "only; not a medical device; not for clinical use.",
        "architecture": {**asdict(settings.net), "arch": "2D U-Net, instance norm", "outputs": "background, brain",
                         "storage": "float16"},
        "training": {
            "data": {"source": "synthetic heads (napari_tumorseg.synth.head.make_head)", "heads": _span(settings.heads),
                     "domains": sorted({head_domain(s) for s in settings.heads}), "cases": len(data),
                     "grid": f"{HEAD_SHAPE} phantom grid (about 2 mm) plus neck and vertex",
                     "generator_version": GENERATOR_VERSION, "head_version": HEAD_VERSION},
            "settings": settings.to_dict(),
            "command": command,
            "resumed": resumed,
            "wall_time_s": round(wall, 1),
            "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "hardware": describe_machine(),
            "history": history,
        },
        "evaluation": {"validation_heads_dice": final, "validation_heads": _span(settings.val_heads)},
    }
