"""The Prepare step measured against a known truth: synthetic raw heads and moved real cases.

- **Synthetic raw cases**: a version-2 phantom inside a whole head
  (:func:`~napari_tumorseg.synth.head.make_head`); each sequence acquired
  with its own head motion (up to 10° and 10 mm on each axis) on its own grid
  (T1c 1 mm LPS, T1 1 x 0.9 x 0.9 mm RAS, T2 1 mm tilted, FLAIR 5 mm slices),
  written as NIfTI, read back and prepared. Scored: the registration error
  over the brain, the brain mask's Dice against the phantom's brain, the
  tumour Dice of the prepared case against that of the clean phantom, and
  the time from reading the files to the prepared case.
- **Real cases** (``../shared/real``): each sequence moved by a known rigid
  motion (T1c, the reference, in its header only; the others resampled, FLAIR
  onto 5 mm slices); scored: the registration error, and the tumour mask
  brought back onto the untouched grid against the untouched case's mask
  (and against the reference where there is one).

A generator job (progress and cancel) returning a JSON-ready dict.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np

from ..io.case import Case, Geometry
from ..jobs import CancelFlag, Clock, Progress
from . import simulate as sim
from .grids import resample, world_points

# Sequence -> (canonical spacing, tilt in degrees, file axes, slice thickness) of a synthetic raw acquisition.
RAW_GRIDS = {
    "t1c": ((1.0, 1.0, 1.0), 0.0, "LPS", None),
    "t1": ((1.0, 0.9, 0.9), 4.0, "RAS", None),
    "t2": ((1.0, 1.0, 1.0), 6.0, "LPS", None),
    "flair": ((5.0, 0.9, 0.9), 5.0, "RAS", 5.0),
}
THICK = "flair"


def _acquisitions(geometry: Geometry, centre: np.ndarray, rng: np.random.Generator,
                  header_reference: bool) -> dict[str, sim.Acquisition]:
    out = {}
    for key, (spacing, tilt, axes, thickness) in RAW_GRIDS.items():
        motion = sim.random_motion(rng, centre)
        if key == "t1c" and header_reference:
            out[key] = sim.Acquisition.header_only(geometry, motion)
            continue
        rotation = tuple(float(a) for a in rng.uniform(-tilt, tilt, 3))
        shift = tuple(float(s) for s in rng.uniform(-5, 5, 3))
        out[key] = sim.Acquisition(motion, sim.grid_over(geometry, spacing, rotation, shift, axes), thickness)
    return out


def _write_raw(case: Case, acquisitions: dict[str, sim.Acquisition], folder: Path,
               brain: np.ndarray | None = None) -> None:
    """The sequences as a scanner would give them: each on its grid, in its file axes (BraTS 2020 names); with
    ``brain``, skull-stripped on that grid afterwards, as a stripping tool run on each sequence leaves them."""
    from ..io.atomic import atomic_write_bytes
    from ..io.naming import case_file_name
    from ..io.nifti import nifti_bytes

    for key, acquisition in acquisitions.items():
        if key not in case.images:
            continue
        data = sim.acquire(case.images[key], case.geometry, acquisition)
        if brain is not None:
            data = np.where(sim.acquire(brain, case.geometry, acquisition, labels=True) > 0, data, 0)
        grid = acquisition.grid
        content = nifti_bytes(np.ascontiguousarray(grid.from_canonical(data.astype(np.float32))), grid.source_affine,
                              ".nii.gz")
        atomic_write_bytes(folder / case_file_name(case.name, key, "brats2020"), content, make_folder=True)


def _region_dice(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    from ..io.labels import REGIONS
    from ..metrics.overlap import dice

    return {region: round(float(dice(np.isin(prediction, classes), np.isin(reference, classes))), 4)
            for region, classes in REGIONS.items()}


def _registration_errors(prepared, acquisitions, points) -> dict[str, dict[str, float]]:
    errors = {}
    for key, record in prepared.preparation.sequences.items():
        if key == prepared.preparation.reference:
            continue
        truth = sim.true_transform(acquisitions[prepared.preparation.reference], acquisitions[key])
        mean, worst = sim.registration_error_mm(record.transform, truth, points)
        errors[key] = {"mean_mm": round(mean, 3), "max_mm": round(worst, 3),
                       "nmi_after": round(record.quality.nmi_after, 4) if record.quality else None}
    return errors


def _prepare_files(folder: Path):
    """Read the raw files and prepare them, timed (what `tumorseg prepare` does before writing)."""
    from ..io.reader import read_sources
    from ..jobs import drive
    from .pipeline import prepare_sources

    started = time.perf_counter()
    sources = read_sources(folder)
    prepared = drive(prepare_sources(sources))
    return prepared, time.perf_counter() - started


def validate_synthetic(seed: int, domain: str, segmenter, rng_seed: int = 0) -> dict:
    """One synthetic raw head: registration error, brain Dice, tumour Dice against the clean phantom, time."""
    from ..synth.head import make_head

    head = make_head(domain, seed)
    geometry = head.case.geometry
    rng = np.random.default_rng([rng_seed, seed])
    acquisitions = _acquisitions(geometry, world_points(geometry, head.brain).mean(axis=0), rng, header_reference=False)
    with tempfile.TemporaryDirectory(prefix="tumorseg-raw-") as folder:
        _write_raw(head.case, acquisitions, Path(folder))
        prepared, seconds = _prepare_files(Path(folder))
    working = prepared.case.geometry
    reference = acquisitions[prepared.preparation.reference]
    truth_brain = sim.acquire(head.brain, geometry, reference, labels=True).astype(bool)
    truth_label = sim.acquire(head.case.label, geometry, reference, labels=True)
    result: dict = {"case": head.case.name, "prepare_seconds": round(seconds, 1),
                    "registration": _registration_errors(prepared, acquisitions, world_points(working, truth_brain)),
                    "brain_dice": round(_dice(prepared.brain, truth_brain), 4),
                    "findings": [f.kind for f in prepared.preparation.findings.items]}
    if segmenter is not None:
        clean = segmenter.segment(head.phantom.case).labels
        raw = segmenter.segment(prepared.stripped()).labels
        result["tumour_dice_clean"] = _region_dice(clean, head.phantom.case.label)
        result["tumour_dice_prepared"] = _region_dice(raw, truth_label)
    return result


def validate_real(folder: Path, segmenter, rng_seed: int = 0) -> dict:
    """One real co-registered case, its sequences moved and FLAIR made thick: registration error and Dice."""
    from ..io.reader import read_case

    case = read_case(folder)
    geometry = case.geometry
    brain = np.any([v != 0 for v in case.images.values()], axis=0)
    rng = np.random.default_rng([rng_seed, sum(map(ord, case.name))])
    acquisitions = _acquisitions(geometry, world_points(geometry, brain).mean(axis=0), rng, header_reference=True)
    with tempfile.TemporaryDirectory(prefix="tumorseg-real-") as tmp:
        _write_raw(case, acquisitions, Path(tmp), brain)
        prepared, seconds = _prepare_files(Path(tmp))
    working = prepared.case.geometry
    points = world_points(working, prepared.brain)
    result: dict = {"case": case.name, "prepare_seconds": round(seconds, 1),
                    "registration": _registration_errors(prepared, acquisitions, points),
                    "findings": [f.kind for f in prepared.preparation.findings.items]}
    if segmenter is not None:
        untouched = segmenter.segment(case).labels
        moved = segmenter.segment(prepared.stripped()).labels
        # Back onto the untouched grid: its point q shows the anatomy of the reference's point M q.
        back = resample(moved, working, geometry, acquisitions[prepared.preparation.reference].motion, labels=True)
        result["agreement_with_untouched"] = _region_dice(back, untouched)
        if case.label is not None:
            result["dice_untouched"] = _region_dice(untouched, case.label)
            result["dice_prepared"] = _region_dice(back, case.label)
    return result


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def run_validation(synthetic: Sequence[tuple[str, int]], real: Sequence[Path], segmenter,
                   cancel: CancelFlag = None) -> Generator[Progress, None, dict]:
    """Every synthetic and real case in turn; returns the results and their summary."""
    clock = Clock(len(synthetic) + len(real), "validating", cancel)
    yield clock.start()
    out: dict = {"synthetic": [], "real": []}
    for domain, seed in synthetic:
        clock.check()
        out["synthetic"].append(validate_synthetic(seed, domain, segmenter))
        yield clock.tick(f"{domain} {seed}")
    for folder in real:
        clock.check()
        out["real"].append(validate_real(folder, segmenter))
        yield clock.tick(folder.name)
    out["summary"] = summarise(out)
    return out


def summarise(results: dict) -> dict:
    """The figures the targets name: worst registration error, brain Dice, Dice losses, slowest preparation."""
    summary: dict = {}
    for part in ("synthetic", "real"):
        rows = results.get(part, [])
        if not rows:
            continue
        errors = [e for row in rows for e in row["registration"].values()]
        part_summary = {"cases": len(rows),
                        "registration_mean_mm": round(float(np.mean([e["mean_mm"] for e in errors])), 3),
                        "registration_max_mm": round(float(np.max([e["max_mm"] for e in errors])), 3),
                        "prepare_seconds_max": max(row["prepare_seconds"] for row in rows)}
        if part == "synthetic":
            part_summary["brain_dice_min"] = min(row["brain_dice"] for row in rows)
            drops = [row["tumour_dice_clean"][r] - row["tumour_dice_prepared"][r]
                     for row in rows if "tumour_dice_clean" in row for r in ("WT", "TC", "ET")]
        else:
            drops = [row["dice_untouched"][r] - row["dice_prepared"][r]
                     for row in rows if "dice_untouched" in row for r in ("WT", "TC")]
            agreement = [row["agreement_with_untouched"]["WT"] for row in rows if "agreement_with_untouched" in row]
            if agreement:
                part_summary["wt_agreement_with_untouched_min"] = min(agreement)
        if drops:
            part_summary["dice_drop_max"] = round(float(max(drops)), 4)
        summary[part] = part_summary
    return summary
