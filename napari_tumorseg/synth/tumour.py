"""Lesions -> tumour compartments at the brain voxels: reference labels and soft memberships.

Each compartment is a signed distance in mm (positive inside), so the
reference label is its sign and the image gets a soft edge from the same
number: the mask and the picture can never disagree by more than the
partial-volume band.

- mass: an ellipsoid whose outline is lobulated by smooth noise;
- necrotic core: the mass shrunk by an enhancing wall of varying thickness;
- non-enhancing tumour: patches of the wall (glioma), labelled with necrosis
  as BraTS does (label 1 is "necrosis / non-enhancing tumour core");
- oedema: outside the mass, reaching ``oedema_reach_mm`` into white matter and
  only a fraction of that into grey matter, never into CSF, with a ragged edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..io.labels import BACKGROUND, ED, ET, NCR
from .grid import voxel_centres_mm
from .lesions import Lesion
from .shapes import MASS_EDGE_MM, lesion_fields

OEDEMA_EDGE_MM = 4.0  # oedema fades out over a few mm on FLAIR and T2


@dataclass(eq=False)
class TumourFields:
    """The tumour at the brain points it touches.

    Args:
        where: indices into the brain-point arrays of the points below.
        label: internal labels (0 BG, 1 NCR, 2 ED, 3 ET).
        mass: membership of the tumour mass (NCR, NET or ET), 0..1.
        core: membership of necrosis within the mass, 0..1.
        non_enhancing: membership of non-enhancing wall within the mass, 0..1.
        oedema: membership of oedema, 0..1.
        uptake: contrast uptake of the enhancing tissue (about 1).
        heterogeneity: signal factor of necrosis and oedema (about 1).
        near_mass: the point lies within one voxel of a mass (keeps its component).
    """

    where: np.ndarray
    label: np.ndarray
    mass: np.ndarray
    core: np.ndarray
    non_enhancing: np.ndarray
    oedema: np.ndarray
    uptake: np.ndarray
    heterogeneity: np.ndarray
    near_mass: np.ndarray

    def drop(self, points: np.ndarray) -> None:
        """Remove the tumour at some of these points (a boolean mask over ``where``)."""
        for array in (self.mass, self.core, self.non_enhancing, self.oedema):
            array[points] = 0.0
        self.label[points] = BACKGROUND
        self.near_mass[points] = False


def _soft(signed_mm: np.ndarray, edge_mm: float) -> np.ndarray:
    return np.clip(signed_mm / np.float32(edge_mm) + 0.5, 0.0, 1.0).astype(np.float32)


def tumour_fields(
    lesions: list[Lesion],
    rng: np.random.Generator,
    index: np.ndarray,
    spacing: np.ndarray,
    tissue: np.ndarray,
) -> TumourFields:
    """Evaluate every lesion at the brain voxels near it and combine them.

    Where lesions overlap, the point belongs to the lesion it is deepest in;
    oedema takes the farthest reach.

    Args:
        lesions: the case's lesions.
        rng: the case's lesion stream (for the lobulation and texture noise).
        index: (3, N) voxel indices of the brain points, in flat (z-major) order.
        spacing: voxel size (mm).
        tissue: (3, N) GM, WM, CSF fractions there.
    """
    selections, radii = [], []
    touched = np.zeros(index.shape[1], dtype=bool)
    for lesion in lesions:
        low = np.floor((lesion.centre_mm - lesion.extent_mm) / spacing - 0.5).astype(np.int64)
        high = np.ceil((lesion.centre_mm + lesion.extent_mm) / spacing - 0.5).astype(np.int64)
        # The points run in flat order, so one slab of slices is one contiguous run.
        first, last = np.searchsorted(index[0], [low[0], high[0] + 1])
        slab = index[1:, first:last]
        in_box = (slab[0] >= low[1]) & (slab[0] <= high[1]) & (slab[1] >= low[2]) & (slab[1] <= high[2])
        in_box = first + np.flatnonzero(in_box)
        local = lesion.rotation.T @ (voxel_centres_mm(index[:, in_box], spacing) - lesion.centre_mm[:, None])
        normalised = np.sqrt(((local / lesion.radii_mm[:, None]) ** 2).sum(axis=0))
        # Lobulation and oedema stay within the extent beyond the smooth outline.
        near = (normalised - 1.0) * np.float32(lesion.radii_mm.min()) <= lesion.extent_mm - lesion.radii_mm.max()
        selections.append(in_box[near])
        radii.append(normalised[near])
        touched[in_box[near]] = True
    where = np.flatnonzero(touched)
    count = where.size
    mass = np.full(count, -np.inf, dtype=np.float32)
    core = np.full(count, -np.inf, dtype=np.float32)
    non_enhancing = np.full(count, -np.inf, dtype=np.float32)
    oedema = np.full(count, -np.inf, dtype=np.float32)
    uptake = np.ones(count, dtype=np.float32)
    heterogeneity = np.ones(count, dtype=np.float32)
    position_of = np.zeros(index.shape[1], dtype=np.int64)
    position_of[where] = np.arange(count)
    for lesion, selection, normalised in zip(lesions, selections, radii):
        if selection.size == 0:
            continue
        # take(), not [:, selection]: row-major rows, read fast (the values are the same).
        fields = lesion_fields(lesion, rng, index.take(selection, axis=1), spacing, tissue.take(selection, axis=1),
                               normalised)
        position = position_of[selection]
        deeper = fields.mass > mass[position]
        chosen = position[deeper]
        mass[chosen] = fields.mass[deeper]
        core[chosen] = fields.core[deeper]
        non_enhancing[chosen] = fields.non_enhancing[deeper]
        uptake[chosen] = fields.uptake[deeper]
        heterogeneity[chosen] = fields.heterogeneity[deeper]
        oedema[position] = np.maximum(oedema[position], fields.oedema)

    in_mass = mass > 0
    in_core = in_mass & (core > 0)
    in_wall_ne = in_mass & ~in_core & (non_enhancing > 0)
    label = np.full(count, BACKGROUND, dtype=np.uint8)
    label[oedema > 0] = ED
    label[in_mass] = ET
    label[in_core | in_wall_ne] = NCR
    return TumourFields(
        where=where,
        label=label,
        mass=_soft(mass, MASS_EDGE_MM),
        core=_soft(core, MASS_EDGE_MM),
        non_enhancing=_soft(non_enhancing, MASS_EDGE_MM) * (1.0 - _soft(core, MASS_EDGE_MM)),
        oedema=_soft(oedema, OEDEMA_EDGE_MM),
        uptake=uptake,
        heterogeneity=heterogeneity,
        near_mass=mass > -np.float32(spacing.max()),
    )


def keep_lesion_components(
    fields: TumourFields, flat_index: np.ndarray, shape: tuple[int, int, int], *, single: bool
) -> None:
    """Drop tumour islands that belong to no lesion (in place).

    Oedema following white matter around a sulcus can leave detached islands,
    and a strongly lobulated mass a satellite; real reference masks have
    neither, so they leave the mask and the image alike.

    Args:
        fields: the tumour at the brain points.
        flat_index: flat voxel index of every point ``fields.where`` refers to.
        shape: the volume shape.
        single: keep only the largest component (glioma: one mass); otherwise
            every component that touches a lesion's mass (metastases).
    """
    tumour = fields.label > 0
    if not tumour.any():
        return
    coords = np.array(np.unravel_index(flat_index[fields.where[tumour]], shape))
    low, high = coords.min(axis=1), coords.max(axis=1) + 1
    box = np.zeros(tuple(high - low), dtype=bool)
    box[tuple(coords - low[:, None])] = True
    components, count = ndi.label(box)
    if count <= 1 and not single:
        return
    ids = np.zeros(fields.where.size, dtype=np.int32)
    ids[tumour] = components[tuple(coords - low[:, None])]
    if single:
        sizes = np.bincount(ids[tumour], minlength=count + 1)
        keep = np.zeros(count + 1, dtype=bool)
        keep[sizes[1:].argmax() + 1] = True
    else:
        keep = np.zeros(count + 1, dtype=bool)
        keep[np.unique(ids[fields.near_mass & tumour])] = True
        keep[0] = False
    fields.drop(tumour & ~keep[ids])
