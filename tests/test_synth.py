"""The synthetic phantoms of generator version 1: determinism, geometry, lesion structure, contrast, nuisance.

Version 1 stays reproducible (the published experiment results name it);
version 2's own tests are in test_synth_v2.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_tumorseg.io.case import MODALITIES
from napari_tumorseg.io.labels import ED, ET, NCR
from napari_tumorseg.synth import BRATS_SHAPE, brats_geometry, generate_phantom, make_case

SHAPE = (40, 64, 64)  # the BraTS field of view at about 3.8 mm
SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def phantoms():
    """(domain, seed) -> Phantom, for the seeds most tests look at."""
    return {(d, s): generate_phantom(d, s, shape=SHAPE, version="1") for d in ("glioma", "metastasis") for s in SEEDS}


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    # Face connectivity: the strictest notion of "one connected lesion".
    return ndi.label(mask)


def test_same_seed_gives_identical_arrays_and_other_seeds_differ(phantoms):
    again = make_case("glioma", 0, shape=SHAPE, version="1")
    first = phantoms[("glioma", 0)].case
    for key in MODALITIES:
        np.testing.assert_array_equal(again.images[key], first.images[key])
    np.testing.assert_array_equal(again.label, first.label)
    other = phantoms[("glioma", 1)].case
    assert not np.array_equal(other.images["flair"], first.images["flair"])
    assert not np.array_equal(other.label, first.label)
    # The domain is part of the seed: metastasis 0 is not glioma 0 with other lesions.
    assert not np.array_equal(phantoms[("metastasis", 0)].case.images["t1"], first.images["t1"])


def test_case_contract_labels_dtypes_and_brats_like_geometry(phantoms):
    for (domain, seed), phantom in phantoms.items():
        case = phantom.case
        assert case.name == f"{domain}_{seed:05d}"
        assert case.shape == SHAPE and case.modalities == MODALITIES
        assert case.label.dtype == np.uint8
        assert set(np.unique(case.label)) <= {0, NCR, ED, ET}
        assert case.geometry.source_axcodes == "LPS"
        np.testing.assert_allclose(case.geometry.spacing, np.array([155, 240, 240]) / np.array(SHAPE))
        for key in MODALITIES:
            image = case.images[key]
            assert image.dtype == np.float32 and np.isfinite(image).all()
            brain = image > 0
            # Skull-stripped like BraTS: 0 outside the brain, which is most of the grid.
            assert 0.1 < brain.mean() < 0.3
            assert brain[case.label > 0].all(), "tumour outside the brain"


def test_full_size_geometry_is_the_brats_grid():
    geometry = brats_geometry()
    assert geometry.canonical_shape == BRATS_SHAPE == (155, 240, 240)
    assert geometry.source_shape == (240, 240, 155)
    np.testing.assert_allclose(geometry.source_affine[:3, :3], np.diag([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(geometry.source_affine[:3, 3], [0.0, 239.0, 0.0])
    # A coarser grid covers the same field of view: its corner voxels' outer faces coincide.
    coarse = brats_geometry(SHAPE)
    corner = coarse.canonical_affine @ np.array([-0.5, -0.5, -0.5, 1.0])
    np.testing.assert_allclose(corner, brats_geometry().canonical_affine @ np.array([-0.5, -0.5, -0.5, 1.0]))


def test_glioma_is_one_large_necrotic_rim_enhancing_mass(phantoms):
    for seed in SEEDS:
        label = phantoms[("glioma", seed)].case.label
        _, count = _components(label > 0)
        assert count == 1
        assert {NCR, ED, ET} <= set(np.unique(label))
        # Necrosis sits inside the enhancing wall: most NCR voxels have no background neighbour.
        necrosis = label == NCR
        touches_outside = ndi.binary_dilation(label == 0) & necrosis
        assert touches_outside.sum() < 0.2 * necrosis.sum()
        lesion = phantoms[("glioma", seed)].lesions[0]
        assert 15.0 <= lesion.mean_radius_mm <= 33.0  # 3 to 6.5 cm across
        assert lesion.displaced_fraction >= 0.45  # it pushes the brain aside


def test_metastases_are_one_to_five_small_lesions_larger_glioma(phantoms):
    glioma_tc = min(np.isin(phantoms[("glioma", s)].case.label, (NCR, ET)).sum() for s in SEEDS)
    glioma_wt = min((phantoms[("glioma", s)].case.label > 0).sum() for s in SEEDS)
    counts = []
    for seed in SEEDS:
        phantom = phantoms[("metastasis", seed)]
        label = phantom.case.label
        components, count = _components(label > 0)
        counts.append(count)
        assert 1 <= count <= 5 and 1 <= len(phantom.lesions) <= 5
        for lesion in phantom.lesions:
            assert 2.5 <= lesion.mean_radius_mm * 0.94 and lesion.mean_radius_mm <= 12.5 / 0.94  # 5-25 mm across
            assert lesion.displaced_fraction <= 0.3  # little mass effect
        sizes = np.bincount(components.ravel())[1:]
        assert sizes.max() < glioma_wt
        tc_components, _ = _components(np.isin(label, (NCR, ET)))
        assert np.bincount(tc_components.ravel())[1:].max() < glioma_tc
    assert max(counts) > 1, "every case had a single metastasis"


def test_metastases_sit_at_the_grey_white_junction(phantoms):
    for seed in SEEDS:
        phantom = phantoms[("metastasis", seed)]
        points = phantom.points
        spacing = np.array([155, 240, 240]) / np.array(SHAPE)
        centres = (points.index + 0.5) * spacing[:, None]
        for lesion in phantom.lesions:
            distance = np.sqrt(((centres - lesion.centre_mm[:, None]) ** 2).sum(axis=0))
            around = (distance > lesion.mean_radius_mm) & (distance < lesion.mean_radius_mm + 12.0)
            gm, wm = points.tissue[0, around].mean(), points.tissue[1, around].mean()
            assert gm > 0.15 and wm > 0.15, "a metastasis away from both grey and white matter"


def test_metastasis_oedema_is_large_for_the_lesion(phantoms):
    def ratio(domain: str) -> float:
        labels = [phantoms[(domain, s)].case.label for s in SEEDS]
        return float(np.mean([(lab == ED).sum() / max(np.isin(lab, (NCR, ET)).sum(), 1) for lab in labels]))

    assert ratio("metastasis") > 2.0 * ratio("glioma")


def _relative_means(phantom, key: str) -> dict[str, float]:
    """Mean intensity per tissue or tumour class, divided by normal white matter's."""
    points = phantom.points
    label = phantom.case.label.reshape(-1)[points.flat]
    values = phantom.case.images[key].reshape(-1)[points.flat]
    normal = label == 0
    regions = {
        "wm": normal & (points.tissue[1] > 0.9),
        "gm": normal & (points.tissue[0] > 0.8),
        "csf": normal & (points.tissue[2] > 0.8),
        "ed": label == ED,
        "ncr": label == NCR,
        "et": label == ET,
    }
    wm = values[regions["wm"]].mean()
    return {name: float(values[mask].mean() / wm) for name, mask in regions.items() if mask.sum() >= 2}


@pytest.mark.parametrize("domain", ["glioma", "metastasis"])
def test_contrasts_per_modality_are_those_of_clinical_mri(phantoms, domain):
    for seed in SEEDS:
        phantom = phantoms[(domain, seed)]
        t1, t1c, t2, flair = (_relative_means(phantom, key) for key in ("t1", "t1c", "t2", "flair"))
        assert t1["csf"] < t1["gm"] < 1.0  # T1: WM > GM > CSF
        assert t2["csf"] > t2["gm"] > 1.0  # T2: CSF > GM > WM
        assert flair["csf"] < 1.0 < flair["ed"]  # FLAIR: CSF suppressed, oedema bright
        assert t2["ed"] > 1.0 and t1["ed"] < 1.0  # oedema bright on T2, a little dark on T1
        assert t1c["et"] > 1.25 * t1["et"] and t1c["et"] > 1.3  # enhancement on T1c only
        if "ncr" in t1:
            assert t1["ncr"] < 0.7 and t1c["ncr"] < 0.7 and t2["ncr"] > 1.0  # necrosis
        assert t2["et"] < t2["ed"]  # the oedema, not the wall, is the T2-bright part


def test_missing_modalities_are_absent_never_all_and_do_not_change_the_rest():
    full = make_case("metastasis", 7, shape=SHAPE, version="1")
    seen_missing = set()
    for seed in range(7, 12):
        case = make_case("metastasis", seed, shape=SHAPE, missing_prob=0.5, version="1")
        assert 1 <= len(case.modalities) <= 4
        assert set(case.modalities) | set(case.missing_modalities) == set(MODALITIES)
        assert not set(case.images) & set(case.missing_modalities)
        seen_missing |= set(case.missing_modalities)
        if seed == 7:
            for key in case.modalities:
                np.testing.assert_array_equal(case.images[key], full.images[key])
            np.testing.assert_array_equal(case.label, full.label)
    assert seen_missing
    for seed in range(3):
        assert len(make_case("glioma", seed, shape=SHAPE, missing_prob=1.0, version="1").modalities) == 1


def test_nuisance_varies_between_cases(phantoms):
    # Intensity scale differs case to case (a model must normalise), and so does the head's pose.
    levels = []
    for seed in SEEDS:
        t1 = phantoms[("glioma", seed)].case.images["t1"]
        levels.append(float(np.median(t1[t1 > 0])))
    assert max(levels) > 1.5 * min(levels)
    assert len({phantoms[("glioma", s)].deformation.rotation_deg for s in SEEDS}) == len(SEEDS)
    scanner = phantoms[("glioma", 0)].scanners["flair"]
    assert scanner.noise > 0 and scanner.bias_weights != (0.0, 0.0)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="domain"):
        make_case("meningioma", 0, shape=SHAPE)
    with pytest.raises(ValueError, match="seed"):
        make_case("glioma", -1, shape=SHAPE)
    with pytest.raises(ValueError, match="missing_prob"):
        make_case("glioma", 0, shape=SHAPE, missing_prob=1.5)
    with pytest.raises(ValueError, match="shape"):
        make_case("glioma", 0, shape=(4, 64, 64))
    with pytest.raises(ValueError, match="generator version"):
        make_case("glioma", 0, shape=SHAPE, version="0")


# What generator version 1 makes of these seeds. The published experiments were
# made on version 1: a change that moves these numbers breaks their
# reproduction, and must be a new version instead. Tolerances leave room for
# floating-point differences between platforms, not for a new model.
VERSION_1_FINGERPRINT = {
    ("glioma", 0): ((951, 3916, 590), {"flair": 1195.4, "t1": 411.3, "t1c": 722.1, "t2": 2338.4}),
    ("glioma", 1): ((245, 1380, 498), {"flair": 134.2, "t1": 753.4, "t1c": 1191.2, "t2": 2242.4}),
    ("metastasis", 0): ((0, 123, 2), {"flair": 1445.2, "t1": 595.8, "t1c": 383.3, "t2": 627.7}),
    ("metastasis", 1): ((0, 431, 9), {"flair": 285.2, "t1": 133.2, "t1c": 492.0, "t2": 1855.7}),
}


def test_generator_version_1_still_makes_the_same_cases(phantoms):
    for key, (counts, medians) in VERSION_1_FINGERPRINT.items():
        case = phantoms[key].case
        found = tuple(int((case.label == value).sum()) for value in (NCR, ED, ET))
        np.testing.assert_allclose(found, counts, rtol=0.01, atol=2, err_msg=f"{key} labels")
        for modality, median in medians.items():
            image = case.images[modality]
            assert float(np.median(image[image > 0])) == pytest.approx(median, rel=0.005), (key, modality)
