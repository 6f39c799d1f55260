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
    head_shape: tuple[int, int, int] = HEAD_SHAPE
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
                    cancel: CancelFlag = None, until: int | None = None) -> Generator[Progress, None, Path]:
    """Train (or continue) the brain-mask network; returns the checkpoint written.

    Args:
        settings: the run.
        resume: continue from the state beside ``settings.out`` (its step, weights and optimiser).
        command: the command line, for the card.
        cancel: checked before every step; a cancel saves the state, then raises ``jobs.Cancelled``.
        until: stop at this step (the learning-rate schedule stays ``settings.steps`` long) and write the network
            as it is there; a resumed state already there is written without making the heads.
    """
    import torch

    from ..models.unet import to_channels_last
    from ..prepare.brainnet import build_brain_net, save_brain_net
    from ..synth.head import HEAD_VERSION
    from .state import TrainingState, load_training_state, save_training_state

    stop = settings.steps if until is None else min(until, settings.steps)
    state = load_training_state(state_path_for(settings.out)) if resume else None
    heads_needed = state is None or state.step < stop
    data = validation = HeadSet([], [], [])
    if heads_needed:
        clock = Clock(len(settings.heads) + len(settings.val_heads), "making heads", cancel)
        data = yield from _heads(settings.heads, settings.cache_dir, clock, settings.head_shape)
        validation = yield from _heads(settings.val_heads, settings.cache_dir, clock, settings.head_shape)
    torch.manual_seed(settings.seed)
    model = to_channels_last(build_brain_net(settings.net))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    step, history, wall, head_versions = 0, [], 0.0, [HEAD_VERSION]
    state_path = state_path_for(settings.out)
    if state is not None:
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        step, history, wall = state.step, state.info.get("history", []), float(state.info.get("wall_time_s", 0.0))
        # A state from before head versions were recorded was trained on version 1 heads.
        head_versions = list(state.info.get("head_versions", ["1"]))
        if heads_needed and head_versions[-1] != HEAD_VERSION:
            head_versions.append(HEAD_VERSION)

    def save_state() -> None:
        weights = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
        info = {"settings": settings.to_dict(), "history": history, "wall_time_s": wall + clock.elapsed,
                "head_versions": head_versions}
        save_training_state(state_path, TrainingState(step, weights, optimizer.state_dict(), info))

    clock = Clock(stop, "training", cancel)
    clock.done = step
    while step < stop:
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
        if step % settings.epoch_steps == 0 or step == stop:
            entry["validation_dice"] = score_heads(model, settings.net, validation)
            history.append(entry)
            save_state()
        yield clock.tick(detail=f"Dice {entry.get('validation_dice', float('nan')):.3f}", loss=entry["loss"], data=entry)
    wall += clock.elapsed
    card = _card(settings, len(settings.heads), history, wall, command, resume, step, head_versions)
    out = save_brain_net(settings.out, model, settings.net, card)
    from ..io.atomic import atomic_write_json, atomic_write_text

    atomic_write_json(Path(out).with_name(Path(out).stem + ".card.json"), card, overwrite=True, sort_keys=True)
    atomic_write_text(Path(out).with_name("README.md"), card_markdown(card), overwrite=True)
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


def _heads(seeds, cache_dir, clock: Clock, shape: tuple[int, int, int]) -> Generator[Progress, None, HeadSet]:
    """Make the heads one by one, a progress report after each (and a cancel check before each)."""
    made: list[HeadSet] = []
    for seed in seeds:
        clock.check()
        made.append(build_head_set([seed], cache_dir, shape=shape))
        yield clock.tick(detail=made[-1].names[0])
    return HeadSet([m.images[0] for m in made], [m.brains[0] for m in made], [m.names[0] for m in made])


def _card(settings: BrainTrainSettings, cases: int, history: list, wall: float, command: str,
          resumed: bool, step: int, head_versions: list[str]) -> dict[str, Any]:
    from datetime import datetime, timezone

    from ..machine import describe_machine
    from ..synth.generate import GENERATOR_VERSION

    final = next((h["validation_dice"] for h in reversed(history) if "validation_dice" in h), None)
    return {
        "name": Path(settings.out).stem,
        "intended_use": "Brain extraction (skull stripping) before tumour segmentation. Trained on synthetic heads "
                        "only; not a medical device; not for clinical use.",
        "architecture": {**asdict(settings.net), "arch": "2D U-Net, instance norm", "outputs": "background, brain",
                         "storage": "float16"},
        "training": {
            "data": {"source": "synthetic heads (napari_tumorseg.synth.head.make_head)", "heads": _span(settings.heads),
                     "domains": sorted({head_domain(s) for s in settings.heads}), "cases": cases,
                     "grid": f"{settings.head_shape} phantom grid plus neck and vertex",
                     "generator_version": GENERATOR_VERSION, "head_version": " then ".join(head_versions)},
            "settings": settings.to_dict(),
            "command": command,
            "resumed": resumed,
            "steps_trained": step,
            "wall_time_s": round(wall, 1),
            "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "hardware": describe_machine(),
            "history": history,
        },
        "evaluation": {"validation_heads_dice": final, "validation_heads": _span(settings.val_heads)},
    }


def _threads(count: Any) -> str:
    return f"{count} torch thread" + ("" if count == 1 else "s")


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a page for people (``resources/models/brain/README.md``)."""
    training, data = card.get("training", {}), card.get("training", {}).get("data", {})
    arch, hardware = card.get("architecture", {}), training.get("hardware", {})
    history = training.get("history", [])
    lines = [f"# {card.get('name')}: the brain-mask network", "", f"**{card.get('intended_use')}**", "",
             f"- Architecture: {arch.get('arch')}, base width {arch.get('base_width')}, depth {arch.get('depth')}, "
             f"{2 * int(arch.get('context', 0)) + 1} slices of {arch.get('spacing_mm')} mm in, {arch.get('outputs')} "
             f"out; stored as {arch.get('storage')}.",
             f"- Data: {data.get('source')}, heads {data.get('heads')} ({', '.join(data.get('domains', []))}), "
             f"{data.get('grid')}; generator version {data.get('generator_version')}, head version "
             f"{data.get('head_version')}. No real image was used.",
             f"- Command: `{training.get('command')}` (`scripts/train_brain_mask.sh`)",
             f"- Trained: finished {training.get('finished')} UTC, {training.get('wall_time_s', 0) / 60:.0f} min of "
             f"training on {hardware.get('cpu')} ({_threads(hardware.get('torch_threads'))}, load average "
             f"{hardware.get('load_average')} at the end).",
             *([f"- Stopped at step {training['steps_trained']} of the {training['settings']['steps']}-step "
                f"learning-rate schedule (`--until`)."]
               if training.get("steps_trained", 0) < training.get("settings", {}).get("steps", 0) else []),
             *([f"- Note: {training['note']}"] if training.get("note") else []),
             (f"- Brain threshold: {card['brain_threshold']} ({card.get('threshold_note', '')})"
              if "brain_threshold" in card else "- Brain threshold: not chosen yet (the default "
              "`prepare.brainnet.BRAIN_THRESHOLD` applies; choose it with scripts/brain_threshold_sweep.py)."),
             "", "| step | loss | held-out heads brain Dice (2 mm, one sequence each) |", "|---|---|---|"]
    lines += [f"| {h['step']} | {h['loss']:.4f} | {h.get('validation_dice', float('nan')):.4f} |" for h in history]
    lines += ["", "Measured on whole synthetic raw heads at 1 mm by `tumorseg bench-prepare` (see the README)."]
    return "\n".join(lines) + "\n"
