"""The Prepare step as one long job: check, co-register, resample, extract the brain.

``prepare_sources(sources)`` is a generator (the ``jobs`` contract): it
yields a Progress after each step, checks the cancel flag before each, and
returns a :class:`PreparedCase`. The prepared case lies on the *working grid*:
the reference sequence's own grid, or, when its voxels are far from 1 mm,
a 1 mm grid over the same field of view and axes. Every other sequence is
registered onto the reference (rigid, mutual information) and resampled
there (cubic B-spline: linear interpolation smooths, and the tumour network
notices). The brain is found by the brain-mask network when the head
still has its skull, else it is the reference's non-zero voxels. The images
keep the head (a viewer shows it, with the brain mask as its own layer);
:meth:`PreparedCase.stripped` gives what the tumour network sees.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from ..errors import CaseError
from ..io.assemble import SourceSet
from ..io.case import DISPLAY_NAMES, MODALITIES, Case, Geometry
from ..jobs import CancelFlag, Clock, Progress
from .detect import Findings, detect
from .grids import (
    INTERPOLATIONS, MODEL_SPACING_MM, RigidTransform, model_grid, resample, same_canonical_grid, spacing_is_far,
)
from .register import RegistrationQuality, register_rigid

PHASE = "preparing"


@dataclass(frozen=True)
class PrepareOptions:
    """How to prepare.

    Args:
        reference: the reference sequence (default: T1c, else the one with the smallest voxels).
        check_alignment: sequences already on one grid are checked (coarse registration) and registered if apart.
        register_all: register every sequence, even those on the reference's grid.
        brain: "auto" (the network when the head has its skull), "network" (always) or "none".
        brain_net: a brain-mask network file (default: the shipped one).
        threads: SimpleITK threads for registration (default: its choice).
        image_interpolation: how the sequences are resampled onto the working grid: "bspline" (cubic; it
            keeps the tumour network's Dice closer to the clean images' than "linear", which smooths:
            docs/results/prepare-interpolation) or "linear".
        model_spacing_mm: a reference with voxels far from the tumour model's spacing is resampled to this
            for inference (and the mask back for export); None never resamples.
    """

    reference: str | None = None
    check_alignment: bool = True
    register_all: bool = False
    brain: str = "auto"
    brain_net: str | None = None
    threads: int | None = None
    image_interpolation: str = "bspline"
    model_spacing_mm: float | None = MODEL_SPACING_MM

    def __post_init__(self) -> None:
        if self.brain not in ("auto", "network", "none"):
            raise ValueError(f"brain must be auto, network or none, got {self.brain!r}")
        if self.image_interpolation not in INTERPOLATIONS:
            raise ValueError(f"image_interpolation must be one of {INTERPOLATIONS}, got {self.image_interpolation!r}")


@dataclass(frozen=True)
class SequenceRecord:
    """One sequence: its own grid, the transform from the reference's world to its world, and the quality figure."""

    key: str
    path: str
    geometry: Geometry
    transform: RigidTransform
    quality: RegistrationQuality | None = None

    def to_dict(self) -> dict:
        return {"file": self.path, "grid": grid_dict(self.geometry), "transform": self.transform.to_dict(),
                "registration": None if self.quality is None else self.quality.to_dict()}


@dataclass
class Preparation:
    """What was done to a case, enough to export a mask onto any of its grids."""

    reference: str
    reference_geometry: Geometry
    working: Geometry
    sequences: dict[str, SequenceRecord]
    findings: Findings
    brain_source: str
    steps: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def resampled_to_model(self) -> bool:
        return not same_canonical_grid(self.working, self.reference_geometry)

    def quality_line(self) -> str:
        """One line of registration figures: 'FLAIR NMI 1.01 -> 1.04, T2 ...'."""
        parts = [f"{DISPLAY_NAMES[k]} NMI {r.quality.nmi_before:.3f} → {r.quality.nmi_after:.3f}"
                 + (" (check it)" if r.quality.suspicious else "")
                 for k, r in self.sequences.items() if r.quality is not None]
        return "; ".join(parts) if parts else "no registration needed"

    def to_dict(self) -> dict:
        return {"reference": self.reference, "reference_grid": grid_dict(self.reference_geometry),
                "working_grid": grid_dict(self.working), "resampled_to_model_spacing": self.resampled_to_model,
                "sequences": {k: r.to_dict() for k, r in self.sequences.items()},
                **self.findings.to_dict(), "brain_source": self.brain_source, "steps": self.steps,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


@dataclass(eq=False)
class PreparedCase:
    """A case on the working grid (head kept), its brain mask, and how it was made."""

    case: Case
    brain: np.ndarray
    preparation: Preparation

    def stripped(self, brain: np.ndarray | None = None) -> Case:
        """The case the tumour network sees: every image 0 outside ``brain`` (default: the extracted one)."""
        return strip(self.case, self.brain if brain is None else brain)


def strip(case: Case, brain: np.ndarray) -> Case:
    """``case`` with every image set to 0 outside ``brain`` (a copy; the label is kept)."""
    brain = np.asarray(brain, dtype=bool)
    if brain.shape != case.shape:
        raise ValueError(f"brain mask {brain.shape} is not the case grid {case.shape}")
    images = {key: np.where(brain, volume, 0).astype(np.float32) for key, volume in case.images.items()}
    return Case(case.name, images, case.geometry, case.label, case.label_convention, dict(case.sources),
                dict(case.dicom_series))


def grid_dict(geometry: Geometry) -> dict:
    return {"shape": list(geometry.canonical_shape), "spacing_mm": [round(s, 4) for s in geometry.spacing],
            "orientation": geometry.source_axcodes, "affine": np.round(geometry.source_affine, 5).tolist()}


def prepare_sources(sources: SourceSet, options: PrepareOptions = PrepareOptions(),
                    cancel: CancelFlag = None) -> Generator[Progress, None, PreparedCase]:
    """Prepare a raw case; yields a Progress after each step; returns the PreparedCase.

    Args:
        sources: the case's volumes, each on its own grid (``io.read_sources``).
        options: what to do.
        cancel: checked before every step; a cancel raises ``jobs.Cancelled`` and nothing is kept.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    clock = Clock(len(sources.volumes) + 2, PHASE, cancel)
    yield clock.start("checking the scan")
    clock.check()
    findings = detect(sources, reference=options.reference, check_alignment=options.check_alignment)
    seconds["checking"] = time.perf_counter() - started
    yield clock.tick("checked: " + ("; ".join(f.problem for f in findings.items) or "nothing to do"))
    key = findings.reference
    reference = sources.volumes[key]
    fixed = reference.geometry.to_canonical(reference.data)
    working = reference.geometry
    if options.model_spacing_mm is not None and spacing_is_far(reference.geometry):
        working = model_grid(reference.geometry, options.model_spacing_mm)
    steps: list[str] = []
    records: dict[str, SequenceRecord] = {}
    images: dict[str, np.ndarray] = {}
    to_register = {f.detail.get("sequence") for f in findings.of("grids") + findings.of("misaligned")}
    for name in [key] + [m for m in MODALITIES if m in sources.volumes and m != key]:
        clock.check()
        volume = sources.volumes[name]
        moving = volume.geometry.to_canonical(volume.data)
        transform, quality = RigidTransform.identity(), None
        if name != key and (name in to_register or options.register_all):
            tic = time.perf_counter()
            transform, quality = _register(fixed, reference, moving, volume, options)
            seconds[f"registering {name}"] = time.perf_counter() - tic
            steps.append(f"registered {DISPLAY_NAMES[name]} onto {DISPLAY_NAMES[key]} (rigid, mutual information): "
                         f"rotated {transform.rotation_deg:.1f}°, moved up to {quality.moved_mm:.1f} mm, "
                         f"NMI {quality.nmi_before:.3f} → {quality.nmi_after:.3f}")
        tic = time.perf_counter()
        images[name] = resample(moving, volume.geometry, working, transform,
                                interpolation=options.image_interpolation).astype(np.float32)
        seconds[f"resampling {name}"] = time.perf_counter() - tic
        records[name] = SequenceRecord(name, str(volume.path), volume.geometry, transform, quality)
        yield clock.tick(f"{DISPLAY_NAMES[name]} on the working grid", phase="registering" if quality else PHASE)
    if working is not reference.geometry:
        steps.append(f"resampled to {' x '.join(f'{s:.3g}' for s in working.spacing)} mm for the tumour model "
                     f"(the reference's voxels are {' x '.join(f'{s:.3g}' for s in reference.geometry.spacing)} mm)")
    clock.check()
    tic = time.perf_counter()
    brain, source = _brain(images, working, key, findings, options)
    seconds["brain"] = time.perf_counter() - tic
    if source == "network":
        steps.append(f"extracted the brain with the brain-mask network ({brain.sum() * np.prod(working.spacing) / 1000:.0f} ml)")
    yield clock.tick("brain mask ready", phase="extracting the brain")
    if source != "network":
        # Skull-stripped already: every sequence 0 outside the reference's brain, as in a BraTS case.
        images = {name: np.where(brain, image, 0).astype(np.float32) for name, image in images.items()}
    label = _label(sources, records, working)
    # The DICOM series stay known: a DICOM SEG goes back onto one of them (see prepare.export).
    case = Case(sources.name, images, working, label, sources.convention,
                {k: sources.volumes[k].path for k in records}, dict(sources.dicom_series))
    seconds["total"] = time.perf_counter() - started
    preparation = Preparation(key, reference.geometry, working, records, findings, source, steps, seconds)
    return PreparedCase(case, brain, preparation)


def _register(fixed: np.ndarray, reference, moving: np.ndarray, volume, options: PrepareOptions):
    """Register one sequence; ITK's failures (an empty or flat image, no overlap) become one line naming the file."""
    try:
        return register_rigid(fixed, reference.geometry, moving, volume.geometry, threads=options.threads)
    except (RuntimeError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[-1][:200]
        raise CaseError(volume.path, f"could not be registered onto {reference.path} ({first}); check that both "
                                     "show the same head, or choose another reference") from None


def _brain(images: dict[str, np.ndarray], working: Geometry, reference: str, findings: Findings,
           options: PrepareOptions) -> tuple[np.ndarray, str]:
    """The brain mask on the working grid, and where it came from."""
    use_network = options.brain == "network" or (options.brain == "auto" and findings.skull)
    if use_network:
        from .brain import extract_brain

        return extract_brain(images, working, net_path=options.brain_net), "network"
    return images[reference] != 0, "non-zero voxels of the reference"


def _label(sources: SourceSet, records: dict[str, SequenceRecord], working: Geometry) -> np.ndarray | None:
    """The reference mask, if any, moved onto the working grid through the transform of the sequence it lies on."""
    if sources.seg is None:
        return None
    from ..io.nifti import read_nifti_label

    labels, convention, geometry = read_nifti_label(sources.seg, default=sources.convention)
    sources.convention = convention
    for record in records.values():
        if geometry.same_grid(record.geometry):
            canonical = geometry.to_canonical(labels)
            return resample(canonical, record.geometry, working, record.transform, labels=True).astype(np.uint8)
    raise CaseError(sources.seg, "the reference mask lies on none of the sequences' grids")
