"""Training the segmenters: slice caches, random batches, the training loop, its state, model cards, evaluation.

Importing this package does not import torch; the loop (``training.loop``)
does. The command line is ``tumorseg train`` and ``tumorseg evaluate``.

    cache = synthetic_slice_cache("glioma", range(64), SliceLayout(), cache_dir=folder)
    trainer = Trainer(build_model("unet"), cache, TrainConfig(steps=500))
    drive(trainer.run(), on_progress=print)   # napari_tumorseg.jobs.drive: a Progress per step
"""

from __future__ import annotations

from .data import Augmentation, SliceCache, build_slice_cache, sample_batch, validation_slices
from .sources import SliceLayout, folder_slice_cache, synthetic_slice_cache
from .state import TrainingState, load_training_state, save_training_state, state_path_for

__all__ = [
    "Augmentation",
    "SliceCache",
    "SliceLayout",
    "TrainingState",
    "build_slice_cache",
    "folder_slice_cache",
    "load_training_state",
    "sample_batch",
    "save_training_state",
    "state_path_for",
    "synthetic_slice_cache",
    "validation_slices",
]
