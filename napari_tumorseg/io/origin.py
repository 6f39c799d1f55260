"""Where a case comes from, said plainly: a synthetic phantom of this program, or a scan.

The phantoms are named by their generator ``<domain>_<seed:05d>``
(``synth.generate.case_name``: ``glioma_00000``, ``metastasis_20001``),
whether made in memory or written to a folder by ``tumorseg synth``; any
other case is a scan, read from DICOM series or NIfTI files. The dock and
the viewer show this so a phantom is never taken for a patient.
"""

from __future__ import annotations

import re

from .case import Case

SYNTHETIC_NAME = re.compile(r"^(glioma|metastasis)_\d{5}$")


def is_synthetic(case: Case) -> bool:
    return bool(SYNTHETIC_NAME.match(case.name))


def origin(case: Case) -> str:
    """One line: what the case is."""
    if is_synthetic(case):
        return "Synthetic phantom made by this program — not a patient"
    if case.dicom_series:
        return "Scan read from DICOM series"
    return "Scan read from NIfTI files" if case.sources else "Scan (in memory)"


def banner(case: Case) -> str:
    """The short text on the viewer's canvas."""
    return f"SYNTHETIC PHANTOM — not a patient · {case.name}" if is_synthetic(case) else f"SCAN · {case.name}"
