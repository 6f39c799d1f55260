"""Generator version 2: phantoms built to transfer to real scans.

The same skeleton as version 1 (:mod:`.generate`): a deformed template, the
domain's lesions with their mass effect, tissue sampled at the brain voxels,
tumour compartments, then one rendering per modality. What changes is what a
network can learn from it (see issue "sim-to-real phantoms"):

1. wider head poses, sizes and deformations (:func:`.deformation.sample_deformation_params_v2`);
2. the tissue reshaped and the normal structures real scans show
   (:mod:`.structures`): folded cortex, ventricles of every size, the
   periventricular rim, white-matter hyperintensities, choroid plexus, flow
   voids, vessels, dura, falx and sinuses;
3. more tumour kinds (:mod:`.lesion_types`);
4. every signal drawn per case and modality, and a wider scanner: contrast
   curve, bias, noise and thick-slice blur (:mod:`.appearance`).

Each step draws from its own random stream, so asking for fewer modalities
never changes the others.

Version 3 is this build with other anatomy constants
(:class:`.structures.AnatomyRecipe`): no periventricular rim around the
fourth ventricle, fainter cerebellar fissures. It draws the same random
numbers, so a seed gives the same head, tumour and scanner in both and the
two versions can be compared case by case.

Version 4 is version 3 with lamellar cerebellar folia (sheets parallel to the
surface instead of random cracks; ``AnatomyRecipe.lamellar_folia``). Its
extra draws come from a child stream, so again only the folia differ.
Version 5 is version 4 with version 3's fainter fissures (0.3 CSF, not 0.5).

Version 6 is version 2's anatomy with lesions that may be faint in one
sequence (:data:`.appearance.FAINT_LESIONS`): infiltrative tumour barely
bright on T2, or the T2-FLAIR mismatch. Its draws come from a child of the
appearance stream, so only those cases' lesion signals differ from version 2.

Version 7 is version 2 whose enhancing tumour may take up little contrast
(:data:`.appearance.FAINT_ENHANCEMENT`, about 3 cases in 10), drawn the same
way: only those cases' T1c enhancing-tumour signal differs from version 2.
It exists to test what adapting does to faint enhancing tumour on the next
case (``scripts/faint_enhancement_sweep.py``).
"""

from __future__ import annotations

import numpy as np

from ..io.case import MODALITIES
from .anatomy import load_anatomy
from .anatomy_draws import sample_anatomy_draws
from .appearance import (PointBox, acquire_volume, coil_log_gain, lesion_signals, render_normal, sample_appearance,
                         sample_scanner)
from .contrast import composite_tumour
from .deformation import mass_effect, random_deformation, sample_deformation_params_v2
from .grid import smooth_noise
from .lesion_types import sample_lesions_v2
from .lesions import SiteMaps
from .nuisance import bias_basis, choose_present
from .points import brain_points
from .regions import load_regions
from .structures import RECIPES, normal_structures
from .tumour import keep_lesion_components, tumour_fields

STREAMS = ("geometry", "lesions", "anatomy", "appearance", "bias", "missing", *(f"scanner_{m}" for m in MODALITIES))
TEXTURE_SHARE = {"flair": 0.4, "t1": 0.4, "t1c": 1.0, "t2": 0.4}  # enhancement texture seen per modality
FAINT_LESION_VERSIONS = ("6",)  # versions whose lesions may be faint in FLAIR or T2
FAINT_ENHANCEMENT_VERSIONS = ("7",)  # versions whose enhancing tumour may enhance faintly
REGIONAL_LENGTH_MM = 30.0  # correlation length of each sequence's own smooth intensity variation


def build(
    domain: str, rng: dict[str, np.random.Generator], shape: tuple[int, int, int], missing_prob: float,
    version: str = "2",
) -> dict:
    """Everything a version-2 phantom is made of (the arguments of :class:`~.generate.Phantom`, less the case).

    Args:
        domain: "glioma" or "metastasis".
        rng: one generator per name in :data:`STREAMS`.
        shape: canonical (z, y, x) grid.
        missing_prob: chance that each modality is missing.
        version: "2" to "7" (see the module's docstring).

    Returns:
        A dict with images, label and the draws: lesions, deformation,
        contrast (the appearance), scanners, points, anatomy, structures.
    """
    anatomy = load_anatomy(shape)
    coarse = anatomy.coarse
    displacement, deformation = random_deformation(rng["geometry"], coarse, sample_deformation_params_v2)
    lesions = sample_lesions_v2(domain, rng["lesions"], SiteMaps(anatomy.at_coarse_nodes(displacement), coarse))
    for lesion in lesions:
        displacement += mass_effect(coarse.positions_mm, lesion.centre_mm, lesion.displaced_radius_mm)
    # Smooth fields sampled with the anatomy: the shared coil bias, then one field per sequence.
    regional = np.stack([smooth_noise(rng["bias"], coarse.shape, REGIONAL_LENGTH_MM / coarse.spacing_mm)
                         for _ in MODALITIES], axis=-1)
    points = brain_points(anatomy, displacement, np.concatenate([bias_basis(rng["bias"], coarse), regional], axis=-1))
    points.tissue = np.ascontiguousarray(points.tissue)  # rows read fast; nothing here multiplies it as a matrix
    draws = sample_anatomy_draws(rng["anatomy"])
    structures = normal_structures(rng["anatomy"], points, anatomy.spacing, load_regions(), draws, RECIPES[version])
    tumour = tumour_fields(lesions, rng["lesions"], points.index, anatomy.spacing, points.tissue)
    keep_lesion_components(tumour, points.flat, shape, single=domain == "glioma")

    appearance = sample_appearance(rng["appearance"], faint_lesions=version in FAINT_LESION_VERSIONS,
                                   faint_enhancement=version in FAINT_ENHANCEMENT_VERSIONS)
    present = choose_present(rng["missing"], missing_prob)
    images, scanners = {}, {}
    box = PointBox.around(points.index, shape)
    height_mm = (points.index[0] + np.float32(0.5)) * np.float32(anatomy.spacing[0])
    for modality in present:
        stream = rng[f"scanner_{modality}"]
        scanners[modality] = sample_scanner(stream)
        signal = render_normal(appearance, modality, points.tissue, structures)
        signal = composite_tumour(signal, points.tissue, tumour, lesion_signals(appearance, modality),
                                  TEXTURE_SHARE[modality])
        log_gain = coil_log_gain(scanners[modality], points.extra[:2], points.extra[2 + MODALITIES.index(modality)],
                                 height_mm)
        intensity = acquire_volume(signal, box, anatomy.spacing, log_gain, scanners[modality], stream)
        images[modality] = _scatter(intensity, points.flat, shape)
    label = np.zeros(shape, dtype=np.uint8)
    label.reshape(-1)[points.flat[tumour.where]] = tumour.label
    return dict(images=images, label=label, lesions=lesions, deformation=deformation, contrast=appearance,
                scanners=scanners, points=points, anatomy=draws, structures=structures)


def _scatter(values: np.ndarray, flat: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    volume = np.zeros(shape, dtype=np.float32)
    volume.reshape(-1)[flat] = values
    return volume
