"""Inference: preprocessing shared with training, and the Segmenter (no torch import until used)."""

from __future__ import annotations

from .preprocess import (
    CropBox,
    PreparedVolume,
    PreprocessPlan,
    normalized_slices,
    plan_preprocessing,
    prepare_case,
    prepare_channels,
    slices_to_input,
)
from .devices import choose_device
from .results import SegmentationResult, SegmentedSlices, SliceSegmentation
from .segmenter import Segmenter, segment_case

__all__ = [
    "CropBox",
    "PreparedVolume",
    "PreprocessPlan",
    "SegmentationResult",
    "SegmentedSlices",
    "Segmenter",
    "SliceSegmentation",
    "choose_device",
    "normalized_slices",
    "plan_preprocessing",
    "prepare_case",
    "prepare_channels",
    "segment_case",
    "slices_to_input",
]
