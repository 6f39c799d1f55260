"""One lesion's compartments as signed distances in mm (positive inside), at given brain voxels.

- mass: the lesion's ellipsoid, its outline lobulated by smooth noise;
- necrotic core: the mass shrunk by an enhancing wall of varying thickness;
- non-enhancing tumour: patches of the wall (glioma), where a noise field
  passes a threshold set by the lesion's non-enhancing fraction;
- oedema: how far the oedema still reaches at a voxel minus the voxel's
  distance outside the mass. It reaches ``oedema_reach_mm`` into white matter
  and only a fraction of that into grey matter, never into CSF, and its edge
  is ragged.

Noise lives on small cubic grids around the lesion: a fine one around the
mass (outline, wall, texture) and a coarse one as far as the oedema goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from .grid import GridSampler, smooth_noise
from .lesions import Lesion

MASS_EDGE_MM = 1.5  # partial-volume band of the mass and core outlines
TEXTURE_AMPLITUDE = 0.12  # heterogeneity of enhancement within a lesion
HETEROGENEITY_AMPLITUDE = 0.08  # of necrosis and oedema signal
# Correlation lengths (mm) of the noises that shape a lesion.
OEDEMA_NOISE_MM, RIM_NOISE_MM, NET_NOISE_MM, TEXTURE_NOISE_MM = 8.0, 5.0, 6.0, 2.5
OEDEMA_NOISE_STEP_MM = 3.0
TAPER_MM = 4.0  # the outline noise fades to 0 over this distance beyond its reach


@dataclass(eq=False)
class LesionFields:
    """One lesion at some voxels.

    Args:
        mass, core, non_enhancing, oedema: signed distances in mm (positive inside);
            -inf where a compartment does not exist.
        uptake: contrast uptake of enhancing tissue (about 1).
        heterogeneity: signal factor of necrosis and oedema (about 1).
    """

    mass: np.ndarray
    core: np.ndarray
    non_enhancing: np.ndarray
    oedema: np.ndarray
    uptake: np.ndarray
    heterogeneity: np.ndarray


class _NoiseBox:
    """Smooth unit-variance noise fields (one per correlation length) on a cube around a point."""

    def __init__(
        self,
        rng: np.random.Generator,
        centre_mm: np.ndarray,
        half_side_mm: float,
        step_mm: float,
        lengths_mm: tuple[float, ...],
    ) -> None:
        size = int(np.ceil(2.0 * half_side_mm / step_mm)) + 2
        fields = [smooth_noise(rng, (size, size, size), max(length / step_mm, 0.5)) for length in lengths_mm]
        self.grid = np.stack(fields, axis=-1)
        self.origin = (centre_mm - np.float32(half_side_mm)).astype(np.float32)
        self.step = step_mm

    def sample(self, index: np.ndarray, spacing: np.ndarray) -> np.ndarray:
        """(C, N) noise at voxel indices (3, N)."""
        return GridSampler(index, spacing, self.origin, self.step, self.grid.shape[:3]).sample_all(self.grid)


def lesion_fields(
    lesion: Lesion,
    rng: np.random.Generator,
    index: np.ndarray,
    spacing: np.ndarray,
    tissue: np.ndarray,
    normalised: np.ndarray,
) -> LesionFields:
    """Compartments of one lesion at the given voxels.

    Args:
        lesion: the lesion.
        rng: the case's lesion stream.
        index: (3, N) voxel indices near the lesion.
        spacing: voxel size (mm).
        tissue: (3, N) GM, WM, CSF fractions there.
        normalised: (N,) ellipsoidal radius of each voxel (1 on the smooth outline).
    """
    radius = np.float32(lesion.mean_radius_mm)
    amplitude = np.float32(lesion.boundary_noise_mm)
    # The outline noise matters up to `reach` outside the smooth outline (3 sigma
    # plus the soft edge) and then fades out, so a small fine box suffices.
    reach = 3.0 * lesion.boundary_noise_mm + 2.0
    fine_half_side = float(lesion.radii_mm.max() * (1.0 + (reach + TAPER_MM) / lesion.mean_radius_mm))
    fine_step = float(np.clip(lesion.boundary_length_mm / 3.0, 0.8, 3.0))
    fine_lengths = (lesion.boundary_length_mm, RIM_NOISE_MM, NET_NOISE_MM, TEXTURE_NOISE_MM)
    fine = _NoiseBox(rng, lesion.centre_mm, fine_half_side, fine_step, fine_lengths)
    coarse = _NoiseBox(rng, lesion.centre_mm, lesion.extent_mm, OEDEMA_NOISE_STEP_MM, (OEDEMA_NOISE_MM,))

    outside = (normalised - 1.0) * radius  # approximate distance outside the smooth outline
    mass = -outside
    near = np.flatnonzero(outside < reach + TAPER_MM)
    fine_noise = fine.sample(index.take(near, axis=1), spacing)
    taper = np.clip((reach + TAPER_MM - outside[near]) / TAPER_MM, 0.0, 1.0)
    mass[near] += amplitude * fine_noise[0] * taper

    oedema_noise = coarse.sample(index, spacing)[0]
    # Vasogenic oedema spreads along white-matter tracts and spares cortex and CSF.
    grey = np.float32(lesion.oedema_grey_factor)
    wm, csf = tissue[1], tissue[2]
    oedema_reach = np.float32(lesion.oedema_reach_mm) * ((grey + (1.0 - grey) * wm) * (1.0 - csf) + 0.2 * oedema_noise)
    oedema = oedema_reach + np.minimum(mass, 0.0)  # minus the distance outside the mass
    heterogeneity = 1.0 + np.float32(HETEROGENEITY_AMPLITUDE) * oedema_noise

    core = np.full_like(mass, -np.inf)
    non_enhancing = np.full_like(mass, -np.inf)
    uptake = np.full_like(mass, np.float32(lesion.enhancement))
    in_wall = mass[near] > -MASS_EDGE_MM
    wall_points, wall_noise = near[in_wall], fine_noise[1:, in_wall]
    if lesion.rim_mm is not None:
        wall = np.maximum(np.float32(lesion.rim_mm) + np.float32(lesion.rim_noise_mm) * wall_noise[0], 0.8)
        core[wall_points] = mass[wall_points] - wall
    if lesion.non_enhancing_fraction > 0:
        threshold = np.float32(ndtri(1.0 - lesion.non_enhancing_fraction))
        non_enhancing[wall_points] = (wall_noise[1] - threshold) * np.float32(3.0)  # ~1/3 noise unit per mm
    uptake[wall_points] *= 1.0 + np.float32(TEXTURE_AMPLITUDE) * wall_noise[2]
    heterogeneity[wall_points] = 1.0 + np.float32(HETEROGENEITY_AMPLITUDE) * wall_noise[2]
    return LesionFields(mass, core, non_enhancing, oedema, uptake, heterogeneity)
