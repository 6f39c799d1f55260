"""Clean-up of a predicted mask: drop the specks a slice-wise network leaves behind.

A 2D network sees one slice at a time and sprinkles a few isolated tumour
voxels over a volume; each is a "lesion" to a radiologist and to the BraTS
lesion-wise score. Connected tumour components smaller than a few cubic
millimetres are removed (set to background). Real lesions are far larger: a
5 mm metastasis is about 65 mm³.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MIN_LESION_MM3 = 20.0


def remove_small_lesions(
    labels: np.ndarray, spacing: tuple[float, float, float], min_volume_mm3: float = DEFAULT_MIN_LESION_MM3
) -> tuple[np.ndarray, int]:
    """Labels with tumour components (26-connected, any tumour class) under ``min_volume_mm3`` removed.

    Returns the cleaned labels (a new array) and how many components were removed.
    """
    from scipy import ndimage

    if min_volume_mm3 <= 0 or not labels.any():
        return labels.copy(), 0
    components, count = ndimage.label(labels > 0, structure=np.ones((3, 3, 3), bool))
    voxel_mm3 = float(np.prod(spacing))
    sizes = np.bincount(components.ravel(), minlength=count + 1) * voxel_mm3
    small = sizes < min_volume_mm3
    small[0] = False  # background is not a lesion
    cleaned = labels.copy()
    cleaned[small[components]] = 0
    return cleaned, int(small.sum())
