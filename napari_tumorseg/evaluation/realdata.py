"""Where the development set of real cases lives, if this machine has it.

The real cases are development data under their sources' terms: they are
never copied into the package or ``resources/``; commands and tests read them
where they are: ``$TUMORSEG_REAL_DATA`` if set, else ``../shared/real`` beside
the repository checkout. Without them, tests skip and the benchmark times a
synthetic case.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TUMORSEG_REAL_DATA"
# A BraTS 2023 glioma on the 240x240x155 1 mm grid: the benchmark's real volume.
BENCH_CASE = "BraTS-GLI-00001-000"


def real_data_dir() -> Path | None:
    """The folder of real cases, or None where there is none."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        folder = Path(configured).expanduser()
        return folder if folder.is_dir() else None
    # napari_tumorseg/evaluation/realdata.py -> the checkout's root -> ../shared/real
    beside_checkout = Path(__file__).resolve().parents[2].parent / "shared" / "real"
    return beside_checkout if beside_checkout.is_dir() else None


def real_case_dir(name: str) -> Path | None:
    """One case folder of the real set, or None."""
    root = real_data_dir()
    if root is None or not (root / name).is_dir():
        return None
    return root / name
