"""Supervised training as a small template: ``train_step``, ``validation_step``, ``on_epoch_end``.

:meth:`Trainer.run` is a long job (see ``napari_tumorseg.jobs``): it yields a
Progress after every step, whose ``data`` is the step's :class:`TrainingReport`,
and checks the cancel flag before each one (a cancel saves the state, then
raises ``jobs.Cancelled``), so a GUI runs it in a thread and the CLI with a
progress line. An "epoch" is ``epoch_steps`` steps
(the data are random crops, there is no natural pass over them): at its end
the validation slices are scored and the training state is written, so a
crash loses at most one epoch.

Everything random is a function of ``(seed, step)``: the batch
(:func:`~napari_tumorseg.training.data.sample_batch`) and torch's generator,
reseeded before every step. A run resumed from its state therefore follows,
step for step, the run that was not interrupted (same device and threads).

Schedule: AdamW, linear warm-up then cosine decay of the learning rate to
``min_lr_fraction`` of it. For the Dy-CNN the attention temperature goes
linearly from 30 to 1 over the first ``anneal_fraction`` of the steps and
stays at 1 (Chen et al. 2020, sec. 3.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from ..jobs import CancelFlag, Cancelled, Clock, Progress
from ..models.labels import class_map
from ..models.losses import dice_ce_loss, region_dice
from ..models.precision import compute_precision, full_precision
from ..models.dynconv import TemperatureAnnealer, get_temperature
from .averaging import WeightAverage
from .data import Augmentation, FocusedSlices, SliceCache, sample_batch
from .distillation import FlipTeacher, distillation_loss
from .state import TrainingState

TRAINING_PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (saved in the state and the model card).

    Args:
        steps: optimisation steps in all.
        batch_size: crops per step.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay.
        warmup_steps: linear warm-up from 0 to ``lr``.
        min_lr_fraction: the cosine decay ends at ``lr * min_lr_fraction``.
        seed: seeds the initial weights and every random draw.
        epoch_steps: steps between validations and saved states.
        temperature_start: Dy-CNN attention temperature at step 0.
        temperature_end: and from the end of the annealing on.
        anneal_fraction: part of the steps over which the temperature is annealed.
        augmentation: crops and random transforms.
        precision: "fp32", or "bf16" for mixed precision (the forward passes' convolutions in
            bfloat16; weights, AdamW and the loss float32): 1.85x faster per step for the base-16
            U-Net on a CPU with bfloat16 units, no faster for the Dy-CNN (``models.precision``).
            No "auto": a model's recipe does not change with the machine that trains it.
        ema_decay: 0 to write the last step's weights; else also keep an exponential moving
            average of the weights with this decay per step and write that (``training.averaging``).
        distill_weight: weight of the distillation term (KL from a teacher's softmax,
            ``training.distillation``) added to the truth's loss; used only with a teacher.
    """

    steps: int = 1000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    min_lr_fraction: float = 0.02
    seed: int = 0
    epoch_steps: int = 50
    temperature_start: float = 30.0
    temperature_end: float = 1.0
    anneal_fraction: float = 0.1
    augmentation: Augmentation = field(default_factory=Augmentation)
    precision: str = "fp32"
    ema_decay: float = 0.0
    distill_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.precision not in TRAINING_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(TRAINING_PRECISIONS)}, got {self.precision!r}")
        if self.steps < 1 or self.batch_size < 1 or self.epoch_steps < 1:
            raise ValueError("steps, batch_size and epoch_steps must be >= 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.distill_weight < 0:
            raise ValueError(f"distill_weight must be >= 0, got {self.distill_weight}")
        if not 0.0 <= self.anneal_fraction <= 1.0:
            raise ValueError(f"anneal_fraction must be in [0, 1], got {self.anneal_fraction}")

    @property
    def anneal_steps(self) -> int:
        return int(round(self.steps * self.anneal_fraction))

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(self.steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        floor = self.lr * self.min_lr_fraction
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["augmentation"] = Augmentation(**data.get("augmentation", {}))
        return cls(**data)


@dataclass(frozen=True)
class TrainingReport:
    """One step done.

    Args:
        step: steps done so far.
        total: steps in the run.
        loss: the training loss of this step.
        lr: its learning rate.
        temperature: the Dy-CNN's attention temperature (None for a static network).
        elapsed: seconds of training in this process.
        validation: region Dice on the validation slices, at the end of an epoch.
        validation_average: the same for the weight average, when the run keeps one.
    """

    step: int
    total: int
    loss: float
    lr: float
    temperature: float | None
    elapsed: float
    validation: dict[str, float] | None = None
    validation_average: dict[str, float] | None = None


class Trainer:
    """Trains a segmentation network on a :class:`SliceCache`.

    Args:
        model: the network (from ``build_model``); trained in place.
        data: the training slices.
        config: the hyper-parameters.
        validation: per case ``(inputs, labels)`` of whole slices to score at each epoch's end, or None.
        device: where to train.
        save_state: called with a :class:`TrainingState` at each epoch's end and at the end.
        teacher: a frozen network whose (flip-averaged) softmax the model also learns, weighted
            ``config.distill_weight`` (``training.distillation``); None trains on the truth alone.
        hard: mined hard slices (``training.hard_negatives``), drawn with chance
            ``config.augmentation.hard_negative_prob``; None for none.
    """

    def __init__(
        self,
        model: nn.Module,
        data: SliceCache,
        config: TrainConfig,
        *,
        validation: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
        device: torch.device | str = "cpu",
        save_state: Callable[[TrainingState], None] | None = None,
        teacher: FlipTeacher | None = None,
        hard: FocusedSlices | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.teacher = None if teacher is None else teacher.to(self.device)
        self.data = data
        self.hard = hard
        self.config = config
        self.validation = validation
        self.save_state = save_state
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.annealer: TemperatureAnnealer | None = None
        if get_temperature(self.model) is not None:
            self.annealer = TemperatureAnnealer(
                self.model, config.temperature_start, config.temperature_end, config.anneal_steps
            )

    # --- hooks ------------------------------------------------------------------------------

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        """One optimisation step on a batch; returns its loss."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with compute_precision(self.config.precision, self.device):
            logits = self.model(inputs)
        loss = dice_ce_loss(full_precision(logits), targets)
        if self.teacher is not None and self.config.distill_weight > 0:
            loss = loss + self.config.distill_weight * distillation_loss(logits, self.teacher(inputs))
        loss.backward()
        self.optimizer.step()
        if self.average is not None:
            self.average.update(self.model)
        return float(loss.detach())

    def final_model(self) -> nn.Module:
        """The network to write: the weight average when the run keeps one, else the model as trained."""
        return self.model if self.average is None else self.average.averaged_model(self.model)

    @torch.inference_mode()
    def validation_step(self, model: nn.Module | None = None) -> dict[str, float] | None:
        """Region Dice (WT, TC, ET) of ``model`` (default: the trained one) over the validation slices, pooled;
        None without validation data."""
        if not self.validation:
            return None
        model = self.model if model is None else model
        model.eval()
        predictions, references = [], []
        for inputs, labels in zip(*self.validation):
            for start in range(0, len(inputs), 4):
                batch = torch.from_numpy(inputs[start : start + 4]).to(self.device)
                predictions.append(class_map(model(batch)).cpu().numpy().ravel())
            references.append(labels.ravel())  # cases differ in size: pool their voxels
        return region_dice(np.concatenate(predictions), np.concatenate(references))

    def on_epoch_end(self, report: TrainingReport) -> None:
        """Record the epoch in the history and write the training state."""
        entry = {"step": report.step, "loss": report.loss, "lr": report.lr,
                 "temperature": report.temperature, "validation": report.validation}
        if report.validation_average is not None:
            entry["validation_average"] = report.validation_average
        self.history.append(entry)
        if self.save_state is not None:
            self.save_state(self.state())

    # --- state ------------------------------------------------------------------------------

    def state(self) -> TrainingState:
        model = {k: v.detach().to("cpu", torch.float32) for k, v in self.model.state_dict().items()}
        info = {
            "config": self.config.to_dict(),
            "annealer": None if self.annealer is None else self.annealer.state_dict(),
            "history": self.history,
        }
        average = None if self.average is None else {k: v.detach().to("cpu") for k, v in self.average.shadow.items()}
        return TrainingState(step=self.step, model=model, optimizer=self.optimizer.state_dict(), info=info,
                             average=average)

    def load_state(self, state: TrainingState) -> None:
        """Continue from a saved state (same model architecture and optimiser)."""
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.step = state.step
        self.history = list(state.info.get("history", []))
        if self.average is not None:
            if state.average is None:
                raise ModelError("the saved run kept no weight average: resume it without --ema-decay")
            self.average.load({k: v.to(self.device) for k, v in state.average.items()})
        if self.annealer is not None and state.info.get("annealer"):
            self.annealer.load_state_dict(state.info["annealer"])

    # --- the run ----------------------------------------------------------------------------

    def run(self, cancel: CancelFlag = None) -> Generator[Progress, None, None]:
        """Train up to ``config.steps``; yields a Progress per step (its ``data`` a TrainingReport).

        Args:
            cancel: checked before every step; when it says stop the state is
                saved and ``jobs.Cancelled`` is raised.
        """
        config = self.config
        started = time.perf_counter()
        clock = Clock(config.steps, "training", cancel)
        clock.done = self.step
        while self.step < config.steps:
            try:
                clock.check()
            except Cancelled:
                if self.save_state is not None:
                    self.save_state(self.state())
                raise
            inputs, targets = sample_batch(self.data, self.step, config.seed, config.batch_size, config.augmentation,
                                           self.hard)
            torch.manual_seed(config.seed * 1_000_003 + self.step)
            lr = config.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            temperature = get_temperature(self.model)
            loss = self.train_step(torch.from_numpy(inputs).to(self.device), torch.from_numpy(targets).to(self.device))
            self.step += 1
            if self.annealer is not None:
                self.annealer.step()
            report = TrainingReport(self.step, config.steps, loss, lr, temperature, time.perf_counter() - started)
            if self.step % config.epoch_steps == 0 or self.step == config.steps:
                averaged = None if self.average is None else self.validation_step(self.final_model())
                report = TrainingReport(**{**asdict(report), "validation": self.validation_step(),
                                           "validation_average": averaged})
                self.on_epoch_end(report)
            yield clock.tick(loss=loss, data=report)
