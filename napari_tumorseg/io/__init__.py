"""Files <-> Case: BraTS folders, NIfTI, DICOM; label conventions; geometry kept exactly.

Importing this package is cheap: nibabel and SimpleITK are imported inside the
functions that read or write voxels, so napari and the CLI start fast.
"""

from .assemble import SourceSet, SourceVolume
from .case import DISPLAY_NAMES, MODALITIES, Case, Geometry
from .folders import CaseFiles, find_case_files, looks_like_case
from .labels import LabelConvention
from .reader import read_case, read_sources
from .volumes import GRID_TOLERANCE_MM
from .writer import case_paths, write_case, write_image, write_mask

__all__ = [
    "DISPLAY_NAMES",
    "GRID_TOLERANCE_MM",
    "MODALITIES",
    "Case",
    "CaseFiles",
    "Geometry",
    "LabelConvention",
    "SourceSet",
    "SourceVolume",
    "case_paths",
    "find_case_files",
    "looks_like_case",
    "read_case",
    "read_sources",
    "write_case",
    "write_image",
    "write_mask",
]
