"""Shared fixtures: small synthetic cases on disk, and quiet, deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Tests share two cores with everything else; one torch thread keeps them
# deterministic and stops torch from oversubscribing under pytest.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Adaptation's "auto" precision is bfloat16 on CPUs with native bfloat16 units (models.precision):
# pinned to float32 so a test's result does not depend on the CPU the suite runs on.
os.environ["TUMORSEG_PRECISION"] = "fp32"

SMALL_SHAPE = (40, 64, 64)

# The widget tests' ``dock`` and ``registry`` fixtures (their imports of napari and Qt are lazy).
pytest_plugins = ("widget_fixtures",)


@pytest.fixture(autouse=True)
def _isolated_user_folders(tmp_path_factory, monkeypatch):
    """Model registry, settings and session folders go to a temporary place, never the user's."""
    home = tmp_path_factory.mktemp("tumorseg_home")
    monkeypatch.setenv("TUMORSEG_HOME", str(home))


@pytest.fixture(scope="session")
def torch_single_thread():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return torch


@pytest.fixture(scope="session")
def small_glioma():
    """A small synthetic glioma case (in memory)."""
    from napari_tumorseg.synth.generate import make_case

    return make_case("glioma", 0, shape=SMALL_SHAPE)


@pytest.fixture(scope="session")
def small_glioma_folder(tmp_path_factory, small_glioma) -> Path:
    """The same case written as a BraTS 2020 folder."""
    from napari_tumorseg.io import write_case

    folder = tmp_path_factory.mktemp("cases") / small_glioma.name
    write_case(small_glioma, folder, layout="brats2020")
    return folder


def brain_voxels_differ(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.count_nonzero(a != b))
