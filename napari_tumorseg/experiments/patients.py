"""Synthetic metastasis patients prepared once for the meta-tune experiment, cached on disk.

For each patient the experiment needs, on the pretrained network's input
layout (prepared exactly as the segmenter prepares slices, through
``adapt.corrections.case_corrections``):

- ``eval_slices`` evaluation slices with tumour, evenly spread over the
  tumour's extent: the patient's "other slices", fixed for every k so Dice
  against k compares like with like;
- up to ``max_k`` correction candidates, from the remaining tumour slices, in
  a nested order: the slice with the largest tumour first, then each time the
  slice farthest in z from those already picked (a radiologist correcting k
  slices spreads them over the lesion). The corrections for k are the first k,
  so k = 1, 3, 5, 10 are nested.

A patient qualifies when it has ``eval_slices + max_k`` tumour slices; the
experiment takes the first qualifying seeds of its range. Making a BraTS-size
case takes seconds, so each patient is cached as a compressed ``.npz`` keyed
by everything that defines it (a cached "does not qualify" too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..adapt.corrections import CaseCorrections, case_corrections, slices_with_tumour
from ..adapt.eval_sets import EvalSet
from ..models.config import ModelConfig, PreprocessingConfig

CACHE_FORMAT = "napari-tumorseg-experiment-patient/1"


@dataclass(frozen=True, eq=False)
class PreparedPatient:
    """One patient's evaluation slices and nested correction candidates, network-ready.

    Args:
        name: the case name (``metastasis_30000``).
        seed: its synthetic seed.
        inputs: ``(n, C, H, W)`` float32: the evaluation slices, then the candidates in pick order.
        labels: ``(n, H, W)`` uint8 reference labels (the corrections are the reference).
        indices: canonical z of each slice.
        eval_count: how many of the first slices are evaluation slices.
    """

    name: str
    seed: int
    inputs: np.ndarray
    labels: np.ndarray
    indices: tuple[int, ...]
    eval_count: int

    @property
    def max_k(self) -> int:
        return len(self.indices) - self.eval_count

    def eval_set(self, name: str = "own") -> EvalSet:
        """The patient's evaluation ("other") slices."""
        e = self.eval_count
        return EvalSet(name, ((self.inputs[:e], self.labels[:e]),), {"case": self.name})

    def corrections(self, k: int) -> CaseCorrections:
        """The first ``k`` candidates as corrections, with the evaluation slices as held-out reference."""
        if not 1 <= k <= self.max_k:
            raise ValueError(f"{self.name}: k must be in 1..{self.max_k}, got {k}")
        e = self.eval_count
        return CaseCorrections(
            self.name,
            self.inputs[e : e + k],
            self.labels[e : e + k],
            self.indices[e : e + k],
            reference_inputs=self.inputs[:e],
            reference_labels=self.labels[:e],
            reference_indices=self.indices[:e],
        )


def spread_order(candidates: Sequence[int], areas: Sequence[float], count: int) -> list[int]:
    """Nested picks: the largest tumour first, then repeatedly the slice farthest from those picked.

    Args:
        candidates: axial indices to choose from.
        areas: the tumour area of each candidate (ties broken by the larger, then the lower index).
        count: how many to pick (at most len(candidates)).
    """
    remaining = list(range(len(candidates)))
    if not remaining or count <= 0:
        return []
    first = max(remaining, key=lambda i: (areas[i], -candidates[i]))
    picked = [first]
    remaining.remove(first)
    while remaining and len(picked) < count:
        best = max(
            remaining,
            key=lambda i: (min(abs(candidates[i] - candidates[j]) for j in picked), areas[i], -candidates[i]),
        )
        picked.append(best)
        remaining.remove(best)
    return [int(candidates[i]) for i in picked]


def choose_slices(label: np.ndarray, eval_slices: int, max_k: int) -> tuple[list[int], list[int]] | None:
    """(evaluation slices, correction candidates in pick order), or None when the case has too few.

    Args:
        label: ``(Z, Y, X)`` reference labels of the case.
        eval_slices: evaluation slices wanted.
        max_k: correction candidates wanted.
    """
    tumour = slices_with_tumour(label)
    if len(tumour) < eval_slices + max_k:
        return None
    evaluation = slices_with_tumour(label, limit=eval_slices) if eval_slices else []
    rest = [z for z in tumour if z not in set(evaluation)]
    areas = [float(np.count_nonzero(label[z])) for z in rest]
    return evaluation, spread_order(rest, areas, max_k)


def _cache_path(
    folder: Path, domain: str, seed: int, shape: tuple[int, int, int] | None, layout: tuple[int, int, int],
    eval_slices: int, max_k: int,
) -> Path:
    from ..synth.generate import GENERATOR_VERSION

    described = {
        "format": CACHE_FORMAT, "generator": GENERATOR_VERSION, "domain": domain, "seed": seed,
        "shape": list(shape) if shape else None, "layout": list(layout), "eval": eval_slices, "max_k": max_k,
    }
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:20]
    return folder / f"patient-{domain}-{seed}-{key}.npz"


def _read(path: Path) -> PreparedPatient | None | bool:
    """The cached patient, False for a cached "does not qualify", None when missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != CACHE_FORMAT:
                return None
            if not bool(data["qualifies"]):
                return False
            return PreparedPatient(
                str(data["name"]), int(data["seed"]), data["inputs"], data["labels"],
                tuple(int(i) for i in data["indices"]), int(data["eval_count"]),
            )
    except (OSError, KeyError, ValueError):
        return None


def _write(path: Path, patient: PreparedPatient | None, seed: int) -> None:
    arrays: dict[str, np.ndarray] = {"format": np.array(CACHE_FORMAT), "qualifies": np.array(patient is not None)}
    if patient is not None:
        arrays.update(
            name=np.array(patient.name), seed=np.array(seed), inputs=patient.inputs, labels=patient.labels,
            indices=np.asarray(patient.indices, dtype=np.int64), eval_count=np.array(patient.eval_count),
        )
    from ..errors import WriteError
    from ..io.atomic import atomic_write_stream

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_stream(path, lambda stream: np.savez_compressed(stream, **arrays), overwrite=True)
    except (OSError, WriteError):
        return  # an unwritable cache only costs time


def prepare_patient(
    domain: str,
    seed: int,
    model_config: ModelConfig,
    preprocessing: PreprocessingConfig | None = None,
    *,
    shape: tuple[int, int, int] | None = None,
    eval_slices: int = 8,
    max_k: int = 10,
    cache_dir: Path | None = None,
) -> PreparedPatient | None:
    """One synthetic patient prepared for ``model_config``'s input, or None if it has too few tumour slices.

    Args:
        domain: "metastasis" (or "glioma").
        seed: the synthetic seed.
        model_config: the network (its size multiple and 2.5D context shape the input).
        preprocessing: its preprocessing (crop margin); default settings if None.
        shape: synthetic grid (None: the BraTS 1 mm grid).
        eval_slices: evaluation slices.
        max_k: correction candidates (0 for a held-out patient).
        cache_dir: folder of cached patients, or None for no cache.
    """
    from ..synth.generate import make_case

    preprocessing = preprocessing or PreprocessingConfig()
    layout = (model_config.depth, model_config.context, preprocessing.crop_margin)
    path = None
    if cache_dir is not None:
        path = _cache_path(Path(cache_dir), domain, int(seed), shape, layout, eval_slices, max_k)
        cached = _read(path) if path.is_file() else None
        if cached is not None:
            return cached or None
    case = make_case(domain, int(seed), **({"shape": tuple(shape)} if shape else {}))
    assert case.label is not None  # synthetic cases carry their reference
    chosen = choose_slices(case.label, eval_slices, max_k)
    patient = None
    if chosen is not None:
        evaluation, candidates = chosen
        slices = evaluation + candidates
        prepared = case_corrections(
            case, case.label, slices, model_config=model_config, preprocessing=preprocessing, reference_slices=0
        )
        patient = PreparedPatient(
            case.name, int(seed), prepared.inputs, prepared.labels, tuple(slices), len(evaluation)
        )
    if path is not None:
        _write(path, patient, int(seed))
    return patient


def held_out_set(patients: Sequence[PreparedPatient], name: str = "held_out") -> EvalSet:
    """The evaluation slices of several patients as one set (one group per patient, voxels pooled when scored)."""
    groups = tuple((p.inputs[: p.eval_count], p.labels[: p.eval_count]) for p in patients)
    return EvalSet(name, groups, {"cases": [p.name for p in patients]})
