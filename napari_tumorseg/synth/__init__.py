"""Synthetic multi-modal brain-tumour phantoms on real anatomy, in two domains.

``make_case("glioma" | "metastasis", seed)`` gives a :class:`~napari_tumorseg.io.case.Case`
with FLAIR, T1, T1c and T2 (float32, 0 outside the brain) and its reference
mask in internal labels, on a BraTS-like 240x240x155 1 mm LPS grid (or a
smaller ``shape`` over the same field of view). The anatomy is the ICBM152
2009a template (``resources/anatomy``); the two domains share the contrast
model and differ in lesion structure, the gap the adaptation methods close.
"""

from .generate import GENERATOR_VERSION, Phantom, case_name, generate_phantom, iter_cases, make_case
from .grid import BRATS_SHAPE, brats_geometry
from .lesions import DOMAINS
from .slices import SliceBatch, iter_slice_batches, sample_axial_slices

__all__ = [
    "BRATS_SHAPE",
    "DOMAINS",
    "GENERATOR_VERSION",
    "Phantom",
    "SliceBatch",
    "brats_geometry",
    "case_name",
    "generate_phantom",
    "iter_cases",
    "iter_slice_batches",
    "make_case",
    "sample_axial_slices",
]
