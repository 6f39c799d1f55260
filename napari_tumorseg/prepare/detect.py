"""What a case needs before the tumour networks may see it: the checks, and the one line that says so.

The networks learnt from BraTS-style volumes: skull-stripped (exactly 0
outside the brain), every sequence on one 1 mm grid. A scan straight from
the scanner differs in ways the checks here find without any network:

- **grids**: the sequences lie on different voxel grids (shape or affine);
- **misaligned**: they share a grid but not the anatomy (a quick coarse
  registration moves the brain by more than ``MISALIGNED_MM``; optional);
- **skull**: the reference shows a head, not a skull-stripped brain. A
  stripped volume is exactly 0 around the brain, and the non-zero part is
  brain-sized; a head has noise in the air and is twice that size;
- **spacing**: thick slices or very fine voxels, far from the networks' 1 mm
  (see ``grids.spacing_is_far``);
- **reference**: T1c, the default reference, is missing (another is used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.assemble import SourceSet
from ..io.case import DISPLAY_NAMES, MODALITIES, Geometry
from .grids import canonical_grid, same_canonical_grid, spacing_is_far

PREFERRED_REFERENCE = "t1c"
MISALIGNED_MM = 2.5  # mean displacement of the reference's foreground that counts as "not aligned"
STRIPPED_ZERO_FRACTION = 0.25  # a skull-stripped volume is exactly 0 over at least this share of its grid
STRIPPED_VOLUME_ML = (150.0, 2300.0)  # and its non-zero part is brain-sized (an adult head is 3-5 litres)
KINDS = ("grids", "misaligned", "skull", "spacing", "reference")
NEEDS_WORK = ("grids", "misaligned", "skull", "spacing")


@dataclass(frozen=True)
class Finding:
    """One thing a case needs.

    Args:
        kind: one of KINDS.
        path: the file it is about.
        problem: what is wrong, in a few words.
        detail: figures behind it (for the report).
    """

    kind: str
    path: str
    problem: str
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "file": self.path, "problem": self.problem, **self.detail}


@dataclass(frozen=True)
class Findings:
    """Everything a case needs, and the reference sequence chosen."""

    reference: str
    items: tuple[Finding, ...] = ()

    @property
    def needs_preparation(self) -> bool:
        return any(f.kind in NEEDS_WORK for f in self.items)

    def of(self, kind: str) -> list[Finding]:
        return [f for f in self.items if f.kind == kind]

    @property
    def skull(self) -> bool:
        return bool(self.of("skull"))

    def summary(self) -> str:
        """One line: the first file concerned, every problem, and what to do."""
        work = [f for f in self.items if f.kind in NEEDS_WORK]
        if not work:
            return "ready: skull-stripped, co-registered, near 1 mm"
        problems = "; ".join(f.problem for f in work)
        return (f"{work[0].path}: {problems}. The tumour model needs a skull-stripped, co-registered scan near 1 mm: "
                "prepare it first (tumorseg prepare, the Prepare step, or segment without --no-prepare)")

    def to_dict(self) -> dict:
        return {"reference": self.reference, "needs_preparation": self.needs_preparation,
                "findings": [f.to_dict() for f in self.items]}


def choose_reference(sources: SourceSet, requested: str | None = None) -> str:
    """The reference sequence: the one asked for, else T1c, else the one with the smallest voxels."""
    present = [m for m in MODALITIES if m in sources.volumes]
    if requested is not None:
        if requested not in present:
            from ..errors import CaseError

            raise CaseError(None, f"reference sequence {requested!r} is not in the case (it has {', '.join(present)})")
        return requested
    if PREFERRED_REFERENCE in present:
        return PREFERRED_REFERENCE
    return min(present, key=lambda m: (float(np.prod(sources.volumes[m].geometry.spacing)), MODALITIES.index(m)))


def looks_skull_stripped(volume: np.ndarray, geometry: Geometry) -> tuple[bool, dict]:
    """Whether a volume looks skull-stripped (0 around a brain-sized non-zero part), with the figures."""
    nonzero = np.count_nonzero(volume)
    zero_fraction = 1.0 - nonzero / volume.size
    millilitres = nonzero * float(np.prod(geometry.spacing)) / 1000.0
    stripped = zero_fraction >= STRIPPED_ZERO_FRACTION and STRIPPED_VOLUME_ML[0] <= millilitres <= STRIPPED_VOLUME_ML[1]
    return stripped, {"zero_fraction": round(zero_fraction, 3), "nonzero_ml": round(millilitres, 1)}


def _grid_text(geometry: Geometry) -> str:
    shape = "x".join(str(n) for n in geometry.canonical_shape)
    return f"{shape} voxels of {' x '.join(f'{s:.3g}' for s in geometry.spacing)} mm"


def detect(sources: SourceSet, *, reference: str | None = None, check_alignment: bool = False) -> Findings:
    """What ``sources`` needs before segmentation.

    Args:
        sources: the case's volumes, each on its own grid.
        reference: the reference sequence (default: T1c, else the finest).
        check_alignment: when the sequences share a grid, check with a quick
            coarse registration that they show the anatomy at the same place.
    """
    chosen = choose_reference(sources, reference)
    items: list[Finding] = []
    if reference is None and chosen != PREFERRED_REFERENCE:
        items.append(Finding("reference", str(sources.volumes[chosen].path),
                             f"no T1c; {DISPLAY_NAMES[chosen]} is the reference sequence"))
    ref = sources.volumes[chosen]
    ref_grid = canonical_grid(ref.geometry)
    others = [m for m in MODALITIES if m in sources.volumes and m != chosen]
    shared = []
    for key in others:
        volume = sources.volumes[key]
        if same_canonical_grid(ref_grid, canonical_grid(volume.geometry)):
            shared.append(key)
            continue
        items.append(Finding("grids", str(volume.path),
                             f"{DISPLAY_NAMES[key]} is on another grid ({_grid_text(volume.geometry)}) "
                             f"than {DISPLAY_NAMES[chosen]} ({_grid_text(ref.geometry)})",
                             {"sequence": key}))
    if check_alignment:
        items += _alignment_findings(sources, chosen, shared)
    reference_image = ref.geometry.to_canonical(ref.data)
    stripped, figures = looks_skull_stripped(reference_image, ref.geometry)
    if not stripped:
        items.append(Finding("skull", str(ref.path), "the head still has its skull and scalp (not skull-stripped)",
                             figures))
    for key in MODALITIES:
        if key in sources.volumes and spacing_is_far(sources.volumes[key].geometry):
            volume = sources.volumes[key]
            spacing = " x ".join(f"{s:.3g}" for s in volume.geometry.spacing)
            if key == chosen:
                items.append(Finding("spacing", str(volume.path),
                                     f"{DISPLAY_NAMES[key]} voxels are {spacing} mm, far from the model's 1 mm",
                                     {"sequence": key, "spacing_mm": list(volume.geometry.spacing)}))
    return Findings(chosen, tuple(items))


def _alignment_findings(sources: SourceSet, chosen: str, others: list[str]) -> list[Finding]:
    """A coarse registration of each sequence onto the reference (4 mm, few samples): does it move the brain?"""
    from .register import register_rigid

    ref = sources.volumes[chosen]
    fixed = ref.geometry.to_canonical(ref.data)
    found = []
    for key in others:
        volume = sources.volumes[key]
        moving = volume.geometry.to_canonical(volume.data)
        _, quality = register_rigid(fixed, ref.geometry, moving, volume.geometry, work_mm=4.0, shrink=(2, 1),
                                    iterations=40, samples=8_000, fine_samples=12_000)
        if quality.mean_moved_mm > MISALIGNED_MM:
            found.append(Finding("misaligned", str(volume.path),
                                 f"{DISPLAY_NAMES[key]} is not aligned with {DISPLAY_NAMES[chosen]} "
                                 f"(about {quality.mean_moved_mm:.1f} mm apart)",
                                 {"sequence": key, "mean_moved_mm": round(quality.mean_moved_mm, 2)}))
    return found


def case_path(sources: SourceSet) -> Path | None:
    """The file or folder a case's messages name first (its first sequence)."""
    first = next(iter(sources.volumes.values()), None)
    return None if first is None else first.path
