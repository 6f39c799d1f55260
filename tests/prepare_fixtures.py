"""Small raw scans with a known truth for the Prepare step's tests (no tests here).

A whole-head phantom on the small test grid (about 3.8 mm voxels), each
sequence moved by its own small motion and acquired on its own grid (FLAIR
on 10 mm slices), written as NIfTI files in BraTS 2020 names, as a scanner
export would give them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SMALL_SHAPE = (40, 64, 64)


@dataclass
class RawScan:
    folder: Path
    head: object  # synth.head.HeadPhantom
    acquisitions: dict  # modality -> simulate.Acquisition


def small_head(domain: str = "glioma", seed: int = 3):
    from napari_tumorseg.synth.head import make_head

    return make_head(domain, seed, shape=SMALL_SHAPE)


def write_raw(folder: Path, case, acquisitions: dict, brain: np.ndarray | None = None) -> Path:
    """Each sequence of ``case`` acquired as told and written in its own file axes; with ``brain``,
    skull-stripped on its own grid afterwards (exactly 0 outside the brain, as a stripping tool leaves it)."""
    from napari_tumorseg.prepare import simulate as sim
    from napari_tumorseg.io.naming import case_file_name
    from napari_tumorseg.io.testing import save_nifti

    folder.mkdir(parents=True, exist_ok=True)
    for key, acquisition in acquisitions.items():
        data = sim.acquire(case.images[key], case.geometry, acquisition)
        if brain is not None:
            data = np.where(sim.acquire(brain, case.geometry, acquisition, labels=True) > 0, data, 0)
        save_nifti(folder / case_file_name(case.name, key, "brats2020"),
                   acquisition.grid.from_canonical(data.astype(np.float32)), acquisition.grid.source_affine)
    return folder


def raw_acquisitions(geometry, centre, *, motion_deg: float = 4.0, motion_mm: float = 4.0, seed: int = 0,
                     thick_flair: bool = True) -> dict:
    """T1c on the clean grid, unmoved; T1 and T2 moved on tilted grids; FLAIR moved on 10 mm slices."""
    from napari_tumorseg.prepare import simulate as sim
    from napari_tumorseg.prepare.grids import RigidTransform

    rng = np.random.default_rng(seed)
    spacing = geometry.spacing
    out = {"t1c": sim.Acquisition(RigidTransform.identity(), sim.grid_over(geometry, spacing))}
    for key, axes in (("t1", "RAS"), ("t2", "LPS"), ("flair", "RAS")):
        grid_spacing = (10.0, spacing[1], spacing[2]) if key == "flair" and thick_flair else spacing
        grid = sim.grid_over(geometry, grid_spacing, tuple(rng.uniform(-3, 3, 3)), tuple(rng.uniform(-2, 2, 3)), axes)
        out[key] = sim.Acquisition(sim.random_motion(rng, centre, motion_deg, motion_mm), grid,
                                   10.0 if key == "flair" and thick_flair else None)
    return out


@pytest.fixture(scope="session")
def head_phantom():
    return small_head()


@pytest.fixture(scope="session")
def raw_head_scan(tmp_path_factory, head_phantom) -> RawScan:
    """The head with its skull, sequences apart, FLAIR thick."""
    from napari_tumorseg.prepare.grids import world_points

    geometry = head_phantom.case.geometry
    acquisitions = raw_acquisitions(geometry, world_points(geometry, head_phantom.brain).mean(axis=0))
    folder = write_raw(tmp_path_factory.mktemp("raw") / "rawhead", head_phantom.case, acquisitions)
    return RawScan(folder, head_phantom, acquisitions)


@pytest.fixture(scope="session")
def raw_stripped_scan(tmp_path_factory, head_phantom) -> RawScan:
    """The same head skull-stripped (BraTS-like intensities), sequences apart, FLAIR thick."""
    from napari_tumorseg.prepare.grids import world_points

    geometry = head_phantom.case.geometry
    acquisitions = raw_acquisitions(geometry, world_points(geometry, head_phantom.brain).mean(axis=0), seed=1)
    folder = write_raw(tmp_path_factory.mktemp("raw") / "rawbrain", head_phantom.case, acquisitions, head_phantom.brain)
    return RawScan(folder, head_phantom, acquisitions)
