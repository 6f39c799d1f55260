"""The Segmenter: a network applied slice by slice to a case, with progress and cancel.

The work is a long job (see ``napari_tumorseg.jobs``): :meth:`Segmenter.run`
yields a Progress after every batch, whose ``data`` holds the labels of the
slices just finished (:class:`SegmentedSlices`) so a viewer can fill them in,
and checks the cancel flag before every batch: a cancel raises
``jobs.Cancelled`` at the next batch. Done, it returns a :class:`SegmentationResult`
(these types, and how the probabilities are kept, are ``results``'s).

Speed (CPU): only the brain's bounding box is run, slices without brain are
skipped, each batch runs under ``torch.inference_mode()``.

A GPU out-of-memory error halves the batch and retries; at batch size 1 the
model moves to the CPU. Both warn (``RuntimeWarning``).
"""

from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Generator, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.case import Case
from ..io.labels import NUM_CLASSES
from ..jobs import CancelFlag, Clock, Progress, drive
from ..models.config import ModelConfig, PreprocessingConfig
from .devices import DEFAULT_BATCH, choose_device, is_out_of_memory
from .mirroring import DEFAULT_MIRROR, mirrored_softmax, resolve_mirror
from .preprocess import PreprocessPlan, case_channels, normalized_slices, plan_preprocessing, slices_to_input
from .results import (
    BACKGROUND_PROBABILITIES,
    PHASE_SEGMENTING,
    PROBABILITY_STORAGE,
    SegmentationResult,
    SliceSegmentation,
    VolumeOutputs,
    argmax_classes,
)

if TYPE_CHECKING:
    import torch
    from torch import nn


class Segmenter:
    """Runs a 2D/2.5D network over a case's axial slices.

    Args:
        model: the network (input ``(B, C, H, W)``, output ``(B, 4, H, W)`` logits).
        config: its architecture (default: ``model.config``).
        preprocessing: the preprocessing it was trained with (default settings if None).
        device: "auto" (CUDA, MPS, CPU), or e.g. "cpu", "cuda:0".
        batch_size: slices per batch (default 4 on the CPU, 32 on CUDA, 16 on MPS).
        probabilities: "uint8" (default), "float16" or "none"; see SegmentationResult.
        num_threads: if given, ``torch.set_num_threads`` (process-wide) before running.
        channels_last: run in the channels-last memory layout (the model's 4-D
            weights are converted in place). Default: on the CPU and CUDA for
            static networks, where it is several times faster on the CPU; the
            Dy-CNN's grouped convolution folds the batch into the channels and
            stays channels-first.
        min_lesion_mm3: tumour components smaller than this are removed from a
            volume's labels (default 20 mm³; 0 keeps everything). The
            probabilities are left as the network gave them.
        uncertain_max_ml, uncertain_mean: then tumour components smaller than
            ``uncertain_max_ml`` (default 1 ml; 0 keeps them) whose mean tumour
            probability is under ``uncertain_mean`` (default 0.8) are removed
            too (see postprocess.py).
        mirror: in-plane flips whose softmax is averaged with the plain pass:
            "none", "lr", "ap", "all", or "auto" (the default: all on a GPU,
            none on the CPU); see mirroring.py. Each flip is one more forward
            pass.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        config: ModelConfig | None = None,
        preprocessing: PreprocessingConfig | None = None,
        device: str | None = "auto",
        batch_size: int | None = None,
        probabilities: str = "uint8",
        num_threads: int | None = None,
        channels_last: bool | None = None,
        min_lesion_mm3: float | None = None,
        mirror: str | None = None,
        uncertain_max_ml: float | None = None,
        uncertain_mean: float | None = None,
    ) -> None:
        import torch

        config = config or getattr(model, "config", None)
        _check_options(config, probabilities, batch_size)
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self._set_cleanup(min_lesion_mm3, uncertain_max_ml, uncertain_mean)
        self.config = config
        self.preprocessing = preprocessing or PreprocessingConfig()
        self.device = choose_device(device)
        # Softmax averaged over in-plane flips (see mirroring.py); one forward pass per flip.
        self.mirror_choice = DEFAULT_MIRROR if mirror is None else mirror
        self.mirror = resolve_mirror(self.mirror_choice, self.device.type)
        self._place_model(model, channels_last)
        self.batch_size = batch_size or DEFAULT_BATCH.get(self.device.type, 4)
        self.probabilities = probabilities
        self._plan_cache: tuple[weakref.ref, PreprocessPlan] | None = None

    def _set_cleanup(
        self, min_lesion_mm3: float | None, uncertain_max_ml: float | None, uncertain_mean: float | None
    ) -> None:
        """Specks smaller than ``min_lesion_mm3``, then small uncertain components, are removed from the
        volume's labels (None: postprocess.py's defaults)."""
        from . import postprocess

        self.min_lesion_mm3 = postprocess.DEFAULT_MIN_LESION_MM3 if min_lesion_mm3 is None else float(min_lesion_mm3)
        self.uncertain_max_ml = float(postprocess.DEFAULT_UNCERTAIN_MAX_ML if uncertain_max_ml is None else uncertain_max_ml)
        self.uncertain_mean = float(postprocess.DEFAULT_UNCERTAIN_MEAN if uncertain_mean is None else uncertain_mean)

    def _place_model(self, model: nn.Module, channels_last: bool | None) -> None:
        """Put the network on the device, in the channels-last layout where asked (see ``channels_last`` above)."""
        from ..models.dynconv import dynamic_convs
        from ..models.unet import to_channels_last

        self.model = model.eval().to(self.device)
        if channels_last is None:
            channels_last = self.device.type in ("cpu", "cuda") and not dynamic_convs(model)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            to_channels_last(self.model)

    @property
    def cleanup(self) -> dict[str, float]:
        """The clean-up of the volume's labels (see postprocess.py), as results and cards record it."""
        return {"min_lesion_mm3": self.min_lesion_mm3, "uncertain_max_ml": self.uncertain_max_ml,
                "uncertain_mean": self.uncertain_mean}

    @classmethod
    def from_checkpoint(cls, path: str | PathLike[str], **kwargs: Any) -> Segmenter:
        """A Segmenter for a saved model, with the preprocessing saved alongside it."""
        from ..models.checkpoint import load_checkpoint

        loaded = load_checkpoint(path)
        return cls(loaded.model, config=loaded.config, preprocessing=loaded.preprocessing, **kwargs)

    # --- preparation -------------------------------------------------------------------

    def plan(self, case: Case) -> PreprocessPlan:
        """The brain box and statistics of ``case`` (kept for the last case: a slice or a prompt after a
        volume reuses them; computing them reads every voxel, ~0.3-0.7 s on a BraTS-size case)."""
        cached = self._plan_cache
        if cached is not None and cached[0]() is case:
            return cached[1]
        plan = plan_preprocessing(
            case_channels(case), multiple=self.config.size_multiple, margin=self.preprocessing.crop_margin
        )
        self._plan_cache = (weakref.ref(case), plan)
        return plan

    # --- the network -------------------------------------------------------------------

    def _forward(self, batch: np.ndarray) -> torch.Tensor:
        """Softmax probabilities ``(B, 4, H, W)`` float32 on the CPU, in chunks of the batch size.

        On out-of-memory: halve the batch size and retry, then move to the CPU.
        """
        import torch

        outputs = []
        start = 0
        while start < len(batch):
            chunk = batch[start : start + self.batch_size]
            try:
                with torch.inference_mode():
                    x = torch.from_numpy(chunk).to(self.device)
                    probs = mirrored_softmax(self.model, x, self.mirror, self.channels_last).cpu()
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                self._recover_from_oom(error)
                continue
            outputs.append(probs)
            start += len(chunk)
        return torch.cat(outputs)

    def _recover_from_oom(self, error: BaseException) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size = max(1, self.batch_size // 2)
            warnings.warn(
                f"out of memory on {self.device}; retrying with batch size {self.batch_size}",
                RuntimeWarning,
                stacklevel=3,
            )
        elif self.device.type != "cpu":
            warnings.warn(
                f"out of memory on {self.device} at batch size 1; falling back to the CPU",
                RuntimeWarning,
                stacklevel=3,
            )
            self.device = torch.device("cpu")
            self.model = self.model.to(self.device)
            self.batch_size = DEFAULT_BATCH["cpu"]
        else:
            raise error

    # --- the work ----------------------------------------------------------------------

    def run(self, case: Case, cancel: CancelFlag = None) -> Generator[Progress, None, SegmentationResult]:
        """Segment ``case``; yields a Progress after every batch; returns the result.

        Args:
            case: the case (any non-empty subset of modalities).
            cancel: a threading.Event or a callable returning True, checked
                before every batch; a cancel raises ``jobs.Cancelled``.
        """
        started = time.perf_counter()
        channels = case_channels(case)
        plan = self.plan(case)
        outputs = VolumeOutputs(plan.crop, self.probabilities, keep_tumour_probability=self.uncertain_max_ml > 0)
        todo = np.flatnonzero(plan.brain_slices)
        volume = normalized_slices(channels, plan)
        clock = Clock(len(todo), PHASE_SEGMENTING, cancel)
        yield clock.start()
        done = 0
        while done < len(todo):
            clock.check()
            batch_slices = todo[done : done + self.batch_size]
            probs = self._forward(slices_to_input(volume, plan.availability, batch_slices, self.config.context))
            finished = outputs.add(batch_slices, probs)
            done += len(batch_slices)
            yield clock.tick(units=len(batch_slices), data=finished)
        labels, uncertain_removed = self._clean(outputs.labels, case, outputs.tumour_probability())
        return SegmentationResult(
            labels=labels,
            probabilities=outputs.probabilities(),
            seconds=time.perf_counter() - started,
            device=str(self.device),
            batch_size=self.batch_size,
            slices_run=len(todo),
            uncertain_removed=uncertain_removed,
        )

    def _clean(
        self, labels: np.ndarray, case: Case, tumour_probability: np.ndarray | None
    ) -> tuple[np.ndarray, int]:
        """The volume's labels without specks and small uncertain components, and how many of the latter went."""
        from .postprocess import clean_labels

        cleaned, _, uncertain = clean_labels(
            labels, case.geometry.spacing, tumour_probability, self.min_lesion_mm3, self.uncertain_max_ml,
            self.uncertain_mean,
        )
        return cleaned, uncertain

    def segment(self, case: Case) -> SegmentationResult:
        """Blocking :meth:`run` to the end."""
        return drive(self.run(case))

    def segment_slice(self, case: Case, z: int) -> SliceSegmentation:
        """One axial slice (canonical index ``z``), e.g. to refresh the slice on screen.

        Speck removal (``min_lesion_mm3``) needs the whole volume, so a single
        slice is the network's output as it is.
        """
        if not 0 <= z < case.shape[0]:
            raise IndexError(f"slice {z} is outside the case's {case.shape[0]} axial slices")
        probabilities = self.predict_slices(case, [z])[0]
        return SliceSegmentation(z, argmax_classes(_as_tensor(probabilities[None]))[0], probabilities)

    def predict_slices(self, case: Case, slices: Sequence[int]) -> np.ndarray:
        """Class probabilities ``(n, 4, Y, X)`` float32 of some axial slices, in one batch (the prompts'
        model). Outside the brain's box, and on slices without brain, background has probability 1."""
        full_z, full_y, full_x = case.shape
        slices = [int(z) for z in slices]
        if any(not 0 <= z < full_z for z in slices):
            raise IndexError(f"slices {slices} are not all inside the case's {full_z} axial slices")
        channels = case_channels(case)
        plan = self.plan(case)
        crop = plan.crop
        out = np.zeros((len(slices), NUM_CLASSES, full_y, full_x), dtype=np.float32)
        out[:, 0] = 1.0
        local = np.array([z - crop.start[0] for z in slices])
        inside = (local >= 0) & (local < crop.shape[0])
        inside[inside] = plan.brain_slices[local[inside]]
        if not inside.any():
            return out
        k = self.config.context
        wanted = local[inside]
        # Normalise only the slices and their context: the rest of the volume only gave the statistics.
        needed = np.unique(np.concatenate([wanted + offset for offset in range(-k, k + 1)]))
        needed = needed[(needed >= 0) & (needed < crop.shape[0])]
        block = np.zeros((len(channels), crop.shape[0], *crop.padded_hw), dtype=np.float32)
        block[:, needed] = normalized_slices(channels, plan, needed)
        probs = self._forward(slices_to_input(block, plan.availability, wanted, k)).numpy().transpose(1, 0, 2, 3)
        out[inside] = crop.uncrop_slices(probs, fill=BACKGROUND_PROBABILITIES).transpose(1, 0, 2, 3)
        return out


def _check_options(config: ModelConfig | None, probabilities: str, batch_size: int | None) -> None:
    """A ValueError for a model without its config, an unknown probability storage or a batch under 1."""
    if not isinstance(config, ModelConfig):
        raise ValueError("the model has no .config; pass config=")
    if probabilities not in PROBABILITY_STORAGE:
        raise ValueError(f"probabilities must be one of {PROBABILITY_STORAGE}, got {probabilities!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _as_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def segment_case(
    case: Case,
    model: nn.Module | str | PathLike[str],
    *,
    device: str | None = "auto",
    batch_size: int | None = None,
    probabilities: str = "uint8",
    mirror: str | None = None,
) -> SegmentationResult:
    """Segment a case with a network or a checkpoint file, blocking."""
    options = {"device": device, "batch_size": batch_size, "probabilities": probabilities, "mirror": mirror}
    if isinstance(model, (str, PathLike)):
        segmenter = Segmenter.from_checkpoint(model, **options)
    else:
        segmenter = Segmenter(model, **options)
    return segmenter.segment(case)
