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

  A real case's files are not a truth of alignment: BraTS-MET-00110's T1, T2
  and FLAIR were acquired on about 5 mm slices, upsampled and skull-stripped
  each on its own, and lie about 2° from its T1c. So each untouched sequence
  is also registered onto the untouched reference (the case's *own
  alignment*), and the error is given twice: against the files' alignment
  (``mean_mm``) and against the motion applied after the own alignment
  (``recovered_mean_mm``: how well the known motion is undone). Which of the
  two alignments the anatomy favours is told by a figure independent of
  mutual information, the agreement of the two images' edges (normalised
  gradient fields) at each: ``edges_files`` and ``edges_own``.

A generator job (progress and cancel) returning a JSON-ready dict.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.case import Case, Geometry
from ..jobs import CancelFlag, Clock, Progress
from . import simulate as sim
from .grids import RigidTransform, resample, world_points

# Sequence -> (canonical spacing, tilt in degrees, file axes, slice thickness) of a synthetic raw acquisition.
RAW_GRIDS = {
    "t1c": ((1.0, 1.0, 1.0), 0.0, "LPS", None),
    "t1": ((1.0, 0.9, 0.9), 4.0, "RAS", None),
    "t2": ((1.0, 1.0, 1.0), 6.0, "LPS", None),
    "flair": ((5.0, 0.9, 0.9), 5.0, "RAS", 5.0),
}
THICK = "flair"


def _acquisitions(geometry: Geometry, centre: np.ndarray, rng: np.random.Generator,
                  header_reference: bool, grids: dict = RAW_GRIDS) -> dict[str, sim.Acquisition]:
    out = {}
    for key, (spacing, tilt, axes, thickness) in grids.items():
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
    from ..models.losses import region_dice

    return {region: round(value, 4) for region, value in region_dice(prediction, reference).items()}


def _registration_errors(prepared, acquisitions, points, own: dict[str, dict] | None = None) -> dict[str, dict]:
    """Per sequence: the error against the true transform; with ``own`` (a real case's own alignment, from
    :func:`own_alignment`), also against the motion applied after that alignment."""
    errors = {}
    reference = acquisitions[prepared.preparation.reference]
    for key, record in prepared.preparation.sequences.items():
        if key == prepared.preparation.reference:
            continue
        truth = sim.true_transform(reference, acquisitions[key])
        mean, worst = sim.registration_error_mm(record.transform, truth, points)
        errors[key] = {"mean_mm": round(mean, 3), "max_mm": round(worst, 3),
                       "nmi_after": round(record.quality.nmi_after, 4) if record.quality else None}
        if own is not None and key in own:
            # Reference point p shows the clean anatomy at M_ref^-1 p, which the sequence's untouched file
            # shows at A M_ref^-1 p (A: the own alignment) and the moved file at M_seq A M_ref^-1 p.
            moved_truth = RigidTransform(acquisitions[key].motion.matrix @ own[key]["transform"].matrix
                                         @ np.linalg.inv(reference.motion.matrix))
            mean, worst = sim.registration_error_mm(record.transform, moved_truth, points)
            errors[key].update(recovered_mean_mm=round(mean, 3), recovered_max_mm=round(worst, 3),
                               **{k: v for k, v in own[key].items() if k != "transform"})
    return errors


def own_alignment(case: Case, reference: str, brain: np.ndarray, threads: int | None = None) -> dict[str, dict]:
    """Each untouched sequence of a real case registered onto its untouched reference sequence.

    Returns, per sequence: the transform, how far it moves the brain (mean mm: about 0 for a co-registered
    case), and the edge agreement with the reference at the files' alignment and at the own alignment.
    """
    from .register import register_rigid

    geometry = case.geometry
    points = world_points(geometry, brain)
    fixed = case.images[reference]
    out = {}
    for key, volume in case.images.items():
        if key == reference:
            continue
        transform, _ = register_rigid(fixed, geometry, volume, geometry, threads=threads)
        aligned = resample(volume, geometry, geometry, transform)
        out[key] = {"transform": transform,
                    "own_alignment_mm": round(float(transform.displacement_mm(points).mean()), 3),
                    "edges_files": round(edge_agreement(fixed, volume, brain), 4),
                    "edges_own": round(edge_agreement(fixed, aligned, brain), 4)}
    return out


def edge_agreement(a: np.ndarray, b: np.ndarray, mask: np.ndarray, sigma: float = 1.0) -> float:
    """How well the edges of two images of any contrasts line up inside ``mask`` (eroded, so the mask's own
    outline does not count): the mean of cos² between their gradients, each gradient damped below its median
    magnitude (normalised gradient fields, Haber and Modersitzki 2006). 0 unrelated, 1 every edge shared."""
    from scipy import ndimage as ndi

    inside = ndi.binary_erosion(mask, iterations=3)
    if not inside.any():
        return 0.0
    gradients = [np.stack(np.gradient(ndi.gaussian_filter(np.asarray(v, np.float32), sigma))) for v in (a, b)]
    squared = [(g**2).sum(axis=0) for g in gradients]
    floors = [float(np.median(s[inside])) + 1e-12 for s in squared]
    dot = (gradients[0] * gradients[1]).sum(axis=0)
    return float((dot**2 / ((squared[0] + floors[0]) * (squared[1] + floors[1])))[inside].mean())


def _prepare_files(folder: Path, options=None):
    """Read the raw files and prepare them, timed (what `tumorseg prepare` does before writing).

    ``options``: a ``pipeline.PrepareOptions`` (default: the Prepare step's defaults).
    """
    from ..io.reader import read_sources
    from ..jobs import drive
    from .pipeline import PrepareOptions, prepare_sources

    started, cpu = time.perf_counter(), time.process_time()
    sources = read_sources(folder)
    prepared = drive(prepare_sources(sources, options or PrepareOptions()))
    # CPU seconds (every thread of this process) too: on a shared machine the wall clock says more about
    # the other jobs than about the Prepare step; on an idle one the wall time lies between CPU / cores and CPU.
    prepared.preparation.seconds["cpu"] = time.process_time() - cpu
    return prepared, time.perf_counter() - started


@dataclass(frozen=True)
class PreparedHead:
    """A synthetic raw head written as files and prepared, with its truths on the prepared grid.

    Args:
        head: the head phantom (``synth.head``), its clean phantom inside.
        acquisitions: how each sequence was acquired (motion, grid, slice thickness).
        prepared: what the Prepare step made of the files.
        seconds: wall seconds of reading and preparing.
        truth_brain: the true brain on the prepared (reference) grid.
        truth_label: the true tumour labels there.
    """

    head: Any
    acquisitions: dict[str, sim.Acquisition]
    prepared: Any
    seconds: float
    truth_brain: np.ndarray
    truth_label: np.ndarray


def prepare_synthetic_head(seed: int, domain: str, rng_seed: int = 0, options=None) -> PreparedHead:
    """A synthetic raw head (skull, each sequence moved, FLAIR thick) made, written, read back and prepared."""
    from ..synth.head import make_head

    head = make_head(domain, seed)
    geometry = head.case.geometry
    rng = np.random.default_rng([rng_seed, seed])
    acquisitions = _acquisitions(geometry, world_points(geometry, head.brain).mean(axis=0), rng, header_reference=False)
    with tempfile.TemporaryDirectory(prefix="tumorseg-raw-") as folder:
        _write_raw(head.case, acquisitions, Path(folder))
        prepared, seconds = _prepare_files(Path(folder), options)
    reference = acquisitions[prepared.preparation.reference]
    return PreparedHead(head, acquisitions, prepared, seconds,
                        sim.acquire(head.brain, geometry, reference, labels=True).astype(bool),
                        sim.acquire(head.case.label, geometry, reference, labels=True))


def validate_synthetic(seed: int, domain: str, segmenter, rng_seed: int = 0, options=None) -> dict:
    """One synthetic raw head: registration error, brain Dice, tumour Dice against the clean phantom, time."""
    made = prepare_synthetic_head(seed, domain, rng_seed, options)
    head, acquisitions, prepared, seconds = made.head, made.acquisitions, made.prepared, made.seconds
    working = prepared.case.geometry
    truth_brain, truth_label = made.truth_brain, made.truth_label
    result: dict = {"case": head.case.name, "prepare_seconds": round(seconds, 1),
                    "prepare_cpu_seconds": round(prepared.preparation.seconds["cpu"], 1),
                    "prepare_steps_seconds": {k: round(v, 1) for k, v in prepared.preparation.seconds.items()},
                    "registration": _registration_errors(prepared, acquisitions, world_points(working, truth_brain)),
                    "brain_dice": round(_dice(prepared.brain, truth_brain), 4),
                    "findings": [f.kind for f in prepared.preparation.findings.items]}
    if segmenter is not None:
        clean = segmenter.segment(head.phantom.case).labels
        raw = segmenter.segment(prepared.stripped()).labels
        result["tumour_dice_clean"] = _region_dice(clean, head.phantom.case.label)
        result["tumour_dice_prepared"] = _region_dice(raw, truth_label)
    return result


def validate_real(folder: Path, segmenter, rng_seed: int = 0, grids: dict = RAW_GRIDS, options=None) -> dict:
    """One real co-registered case, its sequences moved and FLAIR made thick: registration error and Dice.

    ``grids``: the acquisitions' grids (as :data:`RAW_GRIDS`; the tests pass coarse ones); ``options``: a
    ``pipeline.PrepareOptions``.
    """
    from ..io.reader import read_case

    case = read_case(folder)
    geometry = case.geometry
    brain = np.any([v != 0 for v in case.images.values()], axis=0)
    rng = np.random.default_rng([rng_seed, sum(map(ord, case.name))])
    acquisitions = _acquisitions(geometry, world_points(geometry, brain).mean(axis=0), rng, header_reference=True,
                                 grids=grids)
    with tempfile.TemporaryDirectory(prefix="tumorseg-real-") as tmp:
        _write_raw(case, acquisitions, Path(tmp), brain)
        prepared, seconds = _prepare_files(Path(tmp), options)
    working = prepared.case.geometry
    points = world_points(working, prepared.brain)
    own = own_alignment(case, prepared.preparation.reference, brain)
    result: dict = {"case": case.name, "prepare_seconds": round(seconds, 1),
                    "prepare_cpu_seconds": round(prepared.preparation.seconds["cpu"], 1),
                    "prepare_steps_seconds": {k: round(v, 1) for k, v in prepared.preparation.seconds.items()},
                    "registration": _registration_errors(prepared, acquisitions, points, own),
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
                   cancel: CancelFlag = None, options=None) -> Generator[Progress, None, dict]:
    """Every synthetic and real case in turn; returns the results and their summary.

    ``options``: how to prepare (a ``pipeline.PrepareOptions``; default: the Prepare step's defaults).

    Each case's report carries (as its ``data``) the results so far with their summary, so a caller can
    keep what was measured before an interruption.
    """
    clock = Clock(len(synthetic) + len(real), "validating", cancel)
    yield clock.start()
    out: dict = {"synthetic": [], "real": [], "summary": {}}
    for domain, seed in synthetic:
        clock.check()
        out["synthetic"].append(validate_synthetic(seed, domain, segmenter, options=options))
        out["summary"] = summarise(out)
        yield clock.tick(f"{domain} {seed}", data=out)
    for folder in real:
        clock.check()
        out["real"].append(validate_real(folder, segmenter, options=options))
        out["summary"] = summarise(out)
        yield clock.tick(folder.name, data=out)
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
        if all("prepare_cpu_seconds" in row for row in rows):
            part_summary["prepare_cpu_seconds_max"] = max(row["prepare_cpu_seconds"] for row in rows)
        if part == "synthetic":
            part_summary["brain_dice_min"] = min(row["brain_dice"] for row in rows)
            drops = [row["tumour_dice_clean"][r] - row["tumour_dice_prepared"][r]
                     for row in rows if "tumour_dice_clean" in row for r in ("WT", "TC", "ET")]
        else:
            drops = [row["dice_untouched"][r] - row["dice_prepared"][r]
                     for row in rows if "dice_untouched" in row for r in ("WT", "TC")]
            recovered = [e for e in errors if "recovered_mean_mm" in e]
            if recovered:
                part_summary.update(
                    recovered_mean_mm=round(float(np.mean([e["recovered_mean_mm"] for e in recovered])), 3),
                    recovered_max_mm=round(float(np.max([e["recovered_max_mm"] for e in recovered])), 3),
                    own_alignment_mm_max=round(float(np.max([e["own_alignment_mm"] for e in recovered])), 3))
            agreement = [row["agreement_with_untouched"]["WT"] for row in rows if "agreement_with_untouched" in row]
            if agreement:
                part_summary["wt_agreement_with_untouched_min"] = min(agreement)
        if drops:
            part_summary["dice_drop_max"] = round(float(max(drops)), 4)
        summary[part] = part_summary
    return summary
