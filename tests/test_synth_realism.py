"""The realism figures: tissue classes of real and synthetic cases, the figures written."""

from __future__ import annotations

import numpy as np

from napari_tumorseg.io.labels import ED, NCR
from napari_tumorseg.synth import generate_phantom
from napari_tumorseg.synth.realism import (_gaussian_mixture_1d, normalised, phantom_classes, real_classes,
                                           realism_figures)

SHAPE = (40, 64, 64)


def test_gaussian_mixture_finds_three_tissue_levels():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(-1.5, 0.2, 3000), rng.normal(0.0, 0.2, 5000), rng.normal(1.2, 0.2, 4000)])
    means, spreads, weights = _gaussian_mixture_1d(values)
    np.testing.assert_allclose(means, [-1.5, 0.0, 1.2], atol=0.05)
    np.testing.assert_allclose(weights, [0.25, 5 / 12, 1 / 3], atol=0.03)


def test_classes_split_brain_into_tissue_and_tumour():
    phantom = generate_phantom("glioma", 1, shape=SHAPE)
    case = phantom.case
    truth = phantom_classes(phantom)
    assert (truth[case.images["t1"] > 0] >= 0).all()
    assert set(np.unique(truth[case.label == ED])) == {3} and set(np.unique(truth[case.label == NCR])) == {4}
    estimated = real_classes(case, normalised(case))
    healthy = (case.label == 0) & (truth >= 0) & (truth <= 2)
    # The mixture on T1 agrees with the phantom's own tissue for most healthy voxels.
    assert (estimated[healthy] == truth[healthy]).mean() > 0.5  # chance: a third; 4 mm voxels mix tissues
    assert (estimated[case.label == ED] == 3).all()


def test_realism_figures_are_written(tmp_path):
    real_like = generate_phantom("glioma", 2, shape=SHAPE).case
    written = realism_figures([real_like], tmp_path)
    assert [p.name for p in written] == ["realism-slices.png", "realism-histograms.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
