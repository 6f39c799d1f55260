"""The Prepare step: scans straight from the scanner made ready for the tumour networks.

- :mod:`.detect` says what a case needs (sequences on different grids or
  apart, skull present, voxels far from 1 mm, no T1c) and words it in one line;
- :mod:`.register` co-registers a sequence onto the reference (rigid, mutual information);
- :mod:`.grids` holds the grids, transforms and resampling (labels by nearest neighbour);
- :mod:`.brainnet` and :mod:`.brain` extract the brain with a small network trained on synthetic heads;
- :mod:`.pipeline` runs it all as one long job (progress, cancel) and returns a PreparedCase;
- :mod:`.export` writes the prepared case and puts masks back onto any of the case's grids;
- :mod:`.simulate` makes raw scans with a known truth, for the validation and the tests.

Numpy, SimpleITK and torch are imported inside the functions that use them.
"""

from .detect import Finding, Findings, detect
from .pipeline import Preparation, PreparedCase, PrepareOptions, prepare_sources, strip

__all__ = ["Finding", "Findings", "PrepareOptions", "Preparation", "PreparedCase", "detect", "prepare_sources", "strip"]
