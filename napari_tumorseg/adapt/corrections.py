"""Corrections: what a radiologist fixed, in the form the networks train on.

A :class:`CaseCorrections` holds, for one case, the network-ready input of
each corrected axial slice (preprocessed, cropped to the brain and padded, as
the segmenter feeds it), the corrected label slices in internal labels on the
same grid, and the slice indices in the case. Optionally it also holds other
slices of the case that have a reference mask (a BraTS ``seg`` file, a
synthetic case), on which the guard measures whether the correction
generalised beyond the slices that were painted.

:class:`Corrections` groups the cases of one adaptation run and gives the
stable hash recorded with every model version (provenance: which corrections
made this model).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AdaptationError
from ..io.case import Case, content_key
from ..io.labels import ET
from ..models.config import ModelConfig, PreprocessingConfig

if TYPE_CHECKING:
    from ..inference.preprocess import PreprocessPlan
    from .labelfree import UnlabelledSlices


def _check_pair(inputs: np.ndarray, labels: np.ndarray, indices: tuple[int, ...], what: str) -> None:
    if inputs.ndim != 4:
        raise AdaptationError(f"{what}: inputs must be (N, C, H, W), got shape {inputs.shape}")
    if labels.shape != (inputs.shape[0], *inputs.shape[2:]):
        raise AdaptationError(f"{what}: labels of shape {labels.shape} do not match inputs {inputs.shape}")
    if len(indices) != inputs.shape[0]:
        raise AdaptationError(f"{what}: {len(indices)} slice indices for {inputs.shape[0]} slices")
    if len(set(indices)) != len(indices):
        raise AdaptationError(f"{what}: slice indices repeat: {list(indices)}")
    if labels.size and int(labels.max()) > ET:
        raise AdaptationError(f"{what}: labels must be internal (0..3), found {int(labels.max())}")


@dataclass(frozen=True, eq=False)
class CaseCorrections:
    """The corrected slices of one case, network-ready.

    Args:
        case_name: the case identifier (for reports).
        inputs: (N, C, H, W) float32 network input of each corrected slice.
        labels: (N, H, W) uint8 corrected labels, internal convention, same grid.
        slice_indices: axial index of each slice in the case (canonical z).
        reference_inputs: (M, C, H, W) network input of other slices that have
            a reference mask, or None.
        reference_labels: (M, H, W) their reference labels, or None.
        reference_indices: their axial indices.
        key: a stable identity of the case (its content fingerprint, see
            ``io.case.content_key``), by which the memory of past corrections
            keeps it; "" uses the case name.
        unlabelled: uncorrected slices for the label-free check, or None.
    """

    case_name: str
    inputs: np.ndarray
    labels: np.ndarray
    slice_indices: tuple[int, ...]
    reference_inputs: np.ndarray | None = None
    reference_labels: np.ndarray | None = None
    reference_indices: tuple[int, ...] = field(default=())
    key: str = ""
    unlabelled: UnlabelledSlices | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", np.ascontiguousarray(self.inputs, dtype=np.float32))
        object.__setattr__(self, "labels", np.ascontiguousarray(self.labels, dtype=np.uint8))
        object.__setattr__(self, "slice_indices", tuple(int(i) for i in self.slice_indices))
        object.__setattr__(self, "reference_indices", tuple(int(i) for i in self.reference_indices))
        if self.inputs.shape[0] == 0:
            raise AdaptationError(f"case {self.case_name}: no corrected slices")
        _check_pair(self.inputs, self.labels, self.slice_indices, f"case {self.case_name}")
        if (self.reference_inputs is None) != (self.reference_labels is None):
            raise AdaptationError(f"case {self.case_name}: reference inputs and labels go together")
        if self.reference_inputs is not None:
            ref_in = np.ascontiguousarray(self.reference_inputs, dtype=np.float32)
            ref_lab = np.ascontiguousarray(self.reference_labels, dtype=np.uint8)
            object.__setattr__(self, "reference_inputs", ref_in)
            object.__setattr__(self, "reference_labels", ref_lab)
            _check_pair(ref_in, ref_lab, self.reference_indices, f"case {self.case_name} (reference)")
            if ref_in.shape[1:] != self.inputs.shape[1:]:
                raise AdaptationError(f"case {self.case_name}: reference slices are not on the corrections' grid")
            overlap = set(self.reference_indices) & set(self.slice_indices)
            if overlap:
                raise AdaptationError(
                    f"case {self.case_name}: slices {sorted(overlap)} are both corrected and held out"
                )
        if self.unlabelled is not None:
            if self.unlabelled.inputs.shape[1:] != self.inputs.shape[1:]:
                raise AdaptationError(f"case {self.case_name}: unlabelled slices are not on the corrections' grid")
            if set(self.unlabelled.indices) & set(self.slice_indices):
                raise AdaptationError(f"case {self.case_name}: a corrected slice cannot be checked without labels")

    @property
    def num_slices(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def case_key(self) -> str:
        """The identity the memory keeps this case under (the fingerprint, else a hash of the name)."""
        return self.key or "name-" + hashlib.blake2b(self.case_name.encode("utf-8"), digest_size=12).hexdigest()

    @property
    def has_reference(self) -> bool:
        return self.reference_inputs is not None and self.reference_inputs.shape[0] > 0

    def update_digest(self, digest: hashlib._Hash) -> None:
        """Feed everything that defines these corrections to a hash (not the held-out slices)."""
        digest.update(self.case_name.encode("utf-8") + b"\0")
        digest.update(np.asarray(self.slice_indices, dtype="<i8").tobytes())
        for array in (self.inputs, self.labels):
            digest.update(repr((array.dtype.str, array.shape)).encode())
            # Little-endian bytes so the hash is the same on every machine.
            digest.update(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


@dataclass(frozen=True, eq=False)
class Corrections:
    """The corrections of one adaptation run, one entry per case, in arrival order.

    Args:
        cases: the cases' corrections; the Dy-CNN continual method treats each
            entry as one batch arriving in the stream.
    """

    cases: tuple[CaseCorrections, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "cases", tuple(self.cases))
        if not self.cases:
            raise AdaptationError("no corrections: correct at least one slice before adapting")
        channels = {c.inputs.shape[1] for c in self.cases}
        if len(channels) > 1:
            raise AdaptationError(f"cases disagree on the number of input channels: {sorted(channels)}")

    @classmethod
    def of(cls, cases: CaseCorrections | Iterable[CaseCorrections]) -> Corrections:
        """Wrap one case's corrections or several."""
        if isinstance(cases, CaseCorrections):
            return cls((cases,))
        return cls(tuple(cases))

    @property
    def num_slices(self) -> int:
        return sum(c.num_slices for c in self.cases)

    @property
    def in_channels(self) -> int:
        return int(self.cases[0].inputs.shape[1])

    def digest(self) -> str:
        """A stable SHA-256 (hex) of the case names, slice indices, inputs and corrected labels."""
        digest = hashlib.sha256(b"napari-tumorseg corrections v1\0")
        for case in self.cases:
            case.update_digest(digest)
        return digest.hexdigest()

    def summary(self) -> list[dict]:
        """Per case: name and corrected slice indices (for the report)."""
        return [
            {
                "case": c.case_name,
                "slices": list(c.slice_indices),
                "held_out_reference_slices": len(c.reference_indices),
            }
            for c in self.cases
        ]


def slices_with_tumour(labels: np.ndarray, exclude: Sequence[int] = (), limit: int | None = None) -> list[int]:
    """Axial indices whose reference has tumour, evenly thinned to at most ``limit``.

    Args:
        labels: (Z, H, W) reference labels of a case.
        exclude: indices to leave out (the corrected slices).
        limit: keep at most this many, spread evenly over the tumour's extent.
    """
    excluded = set(int(i) for i in exclude)
    candidates = [int(z) for z in np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1)) if z not in excluded]
    if limit is not None and len(candidates) > limit:
        # Interior points: the tumour's first and last slices hold slivers, not typical anatomy.
        picks = np.linspace(0, len(candidates) - 1, limit + 2)[1:-1].round().astype(int)
        candidates = [candidates[i] for i in sorted(set(picks.tolist()))]
    return candidates


def _network_inputs(channels: list, plan: PreprocessPlan, local_indices: Sequence[int], context: int) -> np.ndarray:
    """(n, C, H, W) network input of crop-relative slices, normalising only them and their context."""
    from ..inference.preprocess import normalized_slices, slices_to_input

    depth = plan.crop.shape[0]
    needed = sorted({z + o for z in local_indices for o in range(-context, context + 1) if 0 <= z + o < depth})
    normalized = normalized_slices(channels, plan, needed)
    position = {z: i for i, z in enumerate(needed)}
    out = []
    for z in local_indices:
        block = np.zeros((normalized.shape[0], 2 * context + 1, *plan.crop.padded_hw), dtype=np.float32)
        for slot, offset in enumerate(range(-context, context + 1)):
            if z + offset in position:
                block[:, slot] = normalized[:, position[z + offset]]
        out.append(slices_to_input(block, plan.availability, [context], context)[0])
    return np.stack(out) if out else np.zeros((0, 0, *plan.crop.padded_hw), np.float32)


def case_corrections(
    case: Case,
    corrected: np.ndarray,
    slice_indices: Sequence[int],
    *,
    model_config: ModelConfig,
    preprocessing: PreprocessingConfig | None = None,
    reference: np.ndarray | None = None,
    reference_slices: int = 8,
    unlabelled_slices: int = 0,
    viewed: Sequence[int] = (),
    seen_labels: np.ndarray | None = None,
) -> CaseCorrections:
    """Network-ready corrections of one case, prepared exactly as the segmenter prepares slices.

    Args:
        case: the Case (canonical volumes).
        corrected: (Z, Y, X) internal labels on the case grid; only ``slice_indices`` are used.
        slice_indices: the corrected axial slices (canonical z).
        model_config: the network's ModelConfig (size multiple, 2.5D context).
        preprocessing: its PreprocessingConfig (crop margin); default settings if None.
        reference: (Z, Y, X) reference labels for held-out scoring (default: ``case.label``).
        reference_slices: at most this many held-out slices with tumour, spread evenly.
        unlabelled_slices: uncorrected slices for the label-free check (0: none): the
            ``viewed`` ones first, then brain slices spread evenly (see ``labelfree.choose_unlabelled``).
        viewed: slices the user looked at (most recent last); the uncorrected ones are checked.
        seen_labels: (Z, Y, X) the labels the user saw (the prediction of the model being
            adapted): the label-free check's "before" (None: predicted again).

    Raises:
        AdaptationError: shapes differ, an index is outside the case, or a slice has no brain.
    """
    from ..inference.preprocess import case_channels, plan_preprocessing

    preprocessing = preprocessing or PreprocessingConfig()
    corrected = np.asarray(corrected)
    indices = [int(z) for z in slice_indices]
    _check_grid_and_range(case, corrected, indices)
    channels = case_channels(case)
    plan = plan_preprocessing(channels, multiple=model_config.size_multiple, margin=preprocessing.crop_margin)
    z0 = plan.crop.start[0]
    no_brain = [z for z in indices if not (0 <= z - z0 < plan.crop.shape[0] and plan.brain_slices[z - z0])]
    if no_brain:
        raise AdaptationError(f"case {case.name}: slices {no_brain} hold no brain; correct slices through the brain")

    def inputs_of(zs: Sequence[int]) -> np.ndarray:
        return _network_inputs(channels, plan, [z - z0 for z in zs], model_config.context)

    reference = case.label if reference is None else np.asarray(reference)
    ref_indices: list[int] = []
    if reference is not None and reference_slices > 0:
        inside = reference[z0 : z0 + plan.crop.shape[0]]
        ref_indices = [z0 + z for z in slices_with_tumour(inside, [z - z0 for z in indices], reference_slices)]
    unlabelled = None
    if unlabelled_slices > 0:
        unlabelled = _unlabelled(case, plan, inputs_of, indices, viewed, unlabelled_slices, seen_labels)
    return CaseCorrections(
        case.name,
        inputs_of(indices),
        _labels_of(plan, corrected, indices),
        tuple(indices),
        reference_inputs=inputs_of(ref_indices) if ref_indices else None,
        reference_labels=_labels_of(plan, reference, ref_indices) if ref_indices else None,
        reference_indices=tuple(ref_indices),
        key=content_key(case),
        unlabelled=unlabelled,
    )


def _check_grid_and_range(case: Case, corrected: np.ndarray, indices: Sequence[int]) -> None:
    if corrected.shape != case.shape:
        raise AdaptationError(
            f"case {case.name}: corrected mask {corrected.shape} is not on the case grid {case.shape}"
        )
    outside = [z for z in indices if not 0 <= z < case.shape[0]]
    if outside:
        raise AdaptationError(f"case {case.name}: slices {outside} are outside its {case.shape[0]} axial slices")


def _labels_of(plan: PreprocessPlan, volume: np.ndarray, zs: Sequence[int]) -> np.ndarray:
    """The labels of slices ``zs`` (case z) cropped and padded in-plane exactly like the images."""
    crop = plan.crop  # crop() works on whole volumes: crop, then take the slices
    if not zs:
        return np.zeros((0, *crop.padded_hw), np.uint8)
    return crop.crop(np.asarray(volume).astype(np.uint8))[[z - crop.start[0] for z in zs]]


def _unlabelled(case: Case, plan: PreprocessPlan, inputs_of: Callable[[Sequence[int]], np.ndarray],
                indices: Sequence[int], viewed: Sequence[int], count: int,
                seen_labels: np.ndarray | None) -> UnlabelledSlices | None:
    """The uncorrected slices of the label-free check (None when there are none)."""
    from .labelfree import UnlabelledSlices, choose_unlabelled

    z0 = plan.crop.start[0]
    brain = [z0 + int(z) for z in np.flatnonzero(plan.brain_slices)]
    chosen, looked = choose_unlabelled(brain, indices, viewed, count)
    if not chosen:
        return None
    seen = None if seen_labels is None else _labels_of(plan, seen_labels, chosen)
    return UnlabelledSlices(inputs_of(chosen), tuple(chosen), tuple(looked), seen,
                            float(np.prod(case.geometry.spacing)) / 1000.0)
