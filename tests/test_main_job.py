"""The README's main job, headless: `tumorseg view --screenshot` shows the case and exits."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_main_job_writes_a_non_blank_screenshot(tmp_path):
    shot = tmp_path / "demo.png"
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-m", "napari_tumorseg", "view", "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import imageio.v3 as iio

    image = iio.imread(shot)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600
    # Not blank: many distinct grey levels (the brain) and some label colour.
    rgb = image[..., :3].astype(int)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 500
    saturated = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 80
    assert saturated.sum() > 100


def test_main_job_bad_case_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "napari_tumorseg", "view", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "empty" in lines[0] and "Traceback" not in result.stderr
