"""Generator versions 2 to 7: normal anatomy real scans show, per-case appearance, tumour variety, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_tumorseg.io.case import MODALITIES
from napari_tumorseg.io.labels import ED, ET, NCR
from napari_tumorseg.synth import GENERATOR_VERSION, generate_phantom, make_case
from napari_tumorseg.synth.anatomy import load_anatomy
from napari_tumorseg.synth.appearance import (FAINT_CLASSES, FAINT_ENHANCEMENT, FAINT_RANGE, ENHANCEMENT,
                                              sample_appearance)
from napari_tumorseg.synth.deformation import random_deformation, sample_deformation_params_v2
from napari_tumorseg.synth.lesion_types import sample_glioma_v2, sample_metastases_v2
from napari_tumorseg.synth.lesions import SiteMaps

SHAPE = (40, 64, 64)  # the BraTS field of view at about 3.8 mm
SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def phantoms():
    return {(d, s): generate_phantom(d, s, shape=SHAPE) for d in ("glioma", "metastasis") for s in SEEDS}


@pytest.fixture(scope="module")
def sites():
    """Coarse site maps of a few deformed heads, for drawing many lesion sets cheaply."""
    anatomy = load_anatomy(SHAPE)
    maps = []
    for seed in range(3):
        displacement, _ = random_deformation(np.random.default_rng(seed), anatomy.coarse, sample_deformation_params_v2)
        maps.append(SiteMaps(anatomy.at_coarse_nodes(displacement), anatomy.coarse))
    return maps


def test_version_2_is_the_default_and_differs_from_version_1():
    assert GENERATOR_VERSION == "2"  # the shipped models' (version 3's models did not ship)
    newest, oldest = make_case("glioma", 0, shape=SHAPE), make_case("glioma", 0, shape=SHAPE, version="1")
    assert not np.array_equal(newest.images["flair"], oldest.images["flair"])
    again = make_case("glioma", 0, shape=SHAPE, version="2")
    for key in MODALITIES:
        np.testing.assert_array_equal(again.images[key], newest.images[key])
    np.testing.assert_array_equal(again.label, newest.label)


def test_case_contract(phantoms):
    for (domain, seed), phantom in phantoms.items():
        case = phantom.case
        assert phantom.version == GENERATOR_VERSION and phantom.anatomy is not None
        assert case.name == f"{domain}_{seed:05d}" and case.shape == SHAPE
        assert set(np.unique(case.label)) <= {0, NCR, ED, ET} and case.label.any()
        for key in MODALITIES:
            image = case.images[key]
            assert image.dtype == np.float32 and np.isfinite(image).all()
            brain = image > 0
            assert 0.05 < brain.mean() < 0.3  # skull-stripped: 0 outside the brain
            assert brain[case.label > 0].all(), "tumour outside the brain"


def test_gliomas_are_high_or_lower_grade(sites):
    kinds = set()
    for seed in range(40):
        (lesion,) = sample_glioma_v2(np.random.default_rng(seed), sites[seed % len(sites)])
        if lesion.rim_mm is None:
            assert lesion.non_enhancing_fraction == 1.0  # lower grade: all NCR/NET, no enhancing wall
            kinds.add("lower")
        else:
            kinds.add("high")
        assert 20.0 <= 2 * lesion.mean_radius_mm <= 70.0
    assert kinds == {"lower", "high"}


def test_lower_grade_glioma_has_no_enhancing_tumour():
    found = 0
    for seed in range(12):
        phantom = generate_phantom("glioma", seed, shape=SHAPE)
        if phantom.lesions[0].rim_mm is None:
            label = phantom.case.label
            assert not (label == ET).any() and (label == NCR).any()
            found += 1
    assert found, "no lower-grade glioma among the seeds"


def test_metastases_vary_in_number_size_and_kind(sites):
    counts, diameters, kinds = [], [], set()
    for seed in range(150):
        lesions = sample_metastases_v2(np.random.default_rng(seed), sites[seed % len(sites)])
        counts.append(len(lesions))
        for lesion in lesions:
            diameters.append(2 * lesion.mean_radius_mm)
            kinds.add("solid" if lesion.rim_mm is None else "hollow")
    assert min(counts) == 1 and 6 <= max(counts) <= 10
    assert 2.5 <= min(diameters) < 6.0 and 25.0 < max(diameters) <= 42.0
    assert kinds == {"solid", "hollow"}


def test_normal_structures_are_drawn_with_their_own_signal():
    """Vessels, dura and choroid plexus can enhance; the periventricular rim can be FLAIR-bright; none is tumour."""
    from napari_tumorseg.synth.appearance import render_normal

    phantom = generate_phantom("metastasis", 0)  # full size: thin structures need 1 mm voxels
    points, structures = phantom.points, phantom.structures
    label = phantom.case.label.reshape(-1)[points.flat]
    normal_wm = (label == 0) & (points.tissue[1] > 0.95)
    for modality, name in (("t1c", "vessel"), ("t1c", "dura"), ("t1c", "choroid"), ("flair", "rim")):
        member = (getattr(structures, name) > 0.9) & (label == 0) & (points.fraction > 0.95)
        if name == "rim":
            member &= points.tissue[2] < 0.05  # the rim is tissue, not the ventricle's edge
        assert member.sum() > 50, f"no {name} drawn"
        signal = render_normal(phantom.contrast, modality, points.tissue, structures)
        relative = phantom.contrast.signal[modality][name] / phantom.contrast.signal[modality]["wm"]
        ratio = np.median(signal[member]) / np.median(signal[normal_wm])
        assert ratio == pytest.approx(relative, rel=0.25), (name, ratio, relative)
    assert structures.wmh.max() <= 1.0 and structures.ventricle.sum() > 1000


def test_appearance_is_drawn_per_case_keeping_the_orderings_radiologists_use():
    ratios = []
    for seed in range(200):
        s = sample_appearance(np.random.default_rng(seed)).signal
        assert s["t1"]["csf"] < s["t1"]["gm"] < s["t1"]["wm"]
        assert s["t2"]["csf"] > max(s["t2"]["gm"], s["t2"]["wm"])
        assert s["flair"]["csf"] < min(s["flair"]["gm"], s["flair"]["wm"])
        assert s["flair"]["oedema"] > max(s["flair"]["gm"], s["flair"]["wm"])
        assert s["t1c"]["enhancing"] > 1.2 * s["t1"]["enhancing"]
        assert s["t1c"]["necrosis"] < s["t1c"]["enhancing"]
        ratios.append(s["flair"]["gm"] / s["flair"]["wm"])
    # Grey and white matter swap order on FLAIR between scanners: the network cannot rely on it.
    assert min(ratios) < 0.95 and max(ratios) > 1.3


def test_missing_modalities_do_not_change_the_rest():
    full = make_case("metastasis", 7, shape=SHAPE)
    case = make_case("metastasis", 7, shape=SHAPE, missing_prob=0.5)
    assert case.missing_modalities
    for key in case.modalities:
        np.testing.assert_array_equal(case.images[key], full.images[key])
    np.testing.assert_array_equal(case.label, full.label)


def test_tumour_is_connected_per_lesion(phantoms):
    for seed in SEEDS:
        label = phantoms[("glioma", seed)].case.label
        assert ndi.label(label > 0)[1] == 1  # a glioma is one lesion


# What version 2 makes of these seeds; a change that moves them must be a new version.
VERSION_2_FINGERPRINT = {
    ("glioma", 0): ((370, 2279, 185), {"flair": 142.5, "t1": 192.3, "t1c": 3368.9, "t2": 6196.5}),
    ("glioma", 1): ((1174, 1169, 659), {"flair": 4021.1, "t1": 77.3, "t1c": 135.7, "t2": 1857.0}),
    ("metastasis", 0): ((0, 213, 1), {"flair": 114.3, "t1": 704.4, "t1c": 153.8, "t2": 724.0}),
    ("metastasis", 1): ((0, 408, 18), {"flair": 837.2, "t1": 443.0, "t1c": 2036.0, "t2": 2779.5}),
}


def test_generator_version_2_still_makes_the_same_cases():
    for (domain, seed), (counts, medians) in VERSION_2_FINGERPRINT.items():
        case = make_case(domain, seed, shape=SHAPE, version="2")
        key = (domain, seed)
        found = tuple(int((case.label == value).sum()) for value in (NCR, ED, ET))
        np.testing.assert_allclose(found, counts, rtol=0.01, atol=2, err_msg=f"{key} labels")
        for modality, median in medians.items():
            image = case.images[modality]
            assert float(np.median(image[image > 0])) == pytest.approx(median, rel=0.005), (key, modality)


def test_version_3_is_version_2_without_the_fourth_ventricle_rim_and_with_fainter_folia():
    """Same seed, same head and tumour; only the anatomy below the tentorium changes (structures.AnatomyRecipe)."""
    for seed in (0, 1):
        old, new = (generate_phantom("glioma", seed, shape=SHAPE, version=v) for v in ("2", "3"))
        np.testing.assert_array_equal(old.case.label, new.case.label)
        below, above = new.structures.infratentorial == 1.0, new.structures.infratentorial == 0.0
        assert old.structures.rim[below].sum() > 50, "version 2 drew a rim round the fourth ventricle"
        assert new.structures.rim[below].max() == 0.0
        np.testing.assert_array_equal(old.structures.rim[above], new.structures.rim[above])
        np.testing.assert_array_equal(old.points.tissue[:, above], new.points.tissue[:, above])
        # Cerebellar fissures hold half the CSF they held.
        assert new.points.tissue[2, below].mean() < old.points.tissue[2, below].mean() - 0.005


def test_version_4_is_version_3_with_folia_in_sheets_under_the_surface():
    """Same head, tumour and cerebrum as version 3; only the cerebellar fissures are redrawn, as thin sheets."""
    old, new = (generate_phantom("glioma", 0, shape=SHAPE, version=v) for v in ("3", "4"))
    # The same tumour; its oedema follows the tissue, so a voxel may differ where it reaches the cerebellum.
    tumour = (old.case.label > 0).sum()
    assert tumour > 1000 and (old.case.label != new.case.label).sum() <= 0.01 * tumour
    above = new.structures.infratentorial == 0.0
    np.testing.assert_array_equal(old.points.tissue[:, above], new.points.tissue[:, above])
    below = new.structures.infratentorial == 1.0
    assert np.abs(new.points.tissue[2, below] - old.points.tissue[2, below]).max() > 0.05


def test_version_5_is_version_4_with_fainter_fissures():
    """Same sheets, same head and tumour; the fissures hold less CSF (0.3 against 0.5)."""
    old, new = (generate_phantom("glioma", 0, shape=SHAPE, version=v) for v in ("4", "5"))
    np.testing.assert_array_equal(old.case.label, new.case.label)
    above = new.structures.infratentorial == 0.0
    np.testing.assert_array_equal(old.points.tissue[:, above], new.points.tissue[:, above])
    below = new.structures.infratentorial == 1.0
    assert new.points.tissue[2, below].mean() < old.points.tissue[2, below].mean() - 0.002


def test_version_6_lesions_are_faint_in_one_sequence_in_some_cases_and_nothing_else_moves():
    """Version 6 redraws only the oedema and non-enhancing tumour of one sequence, in about 2 cases in 5."""
    faint = {"t2": 0, "flair": 0}
    for seed in range(300):
        old = sample_appearance(np.random.default_rng(seed)).signal
        new = sample_appearance(np.random.default_rng(seed), faint_lesions=True).signal
        moved = {(m, name) for m in old for name in old[m] if old[m][name] != new[m][name]}
        assert {m for m, _ in moved} in (set(), {"t2"}, {"flair"})
        for modality, name in moved:
            assert name in FAINT_CLASSES
            matter = max(new[modality]["wm"], new[modality]["gm"])
            low, high = FAINT_RANGE[modality]
            assert low * matter <= new[modality][name] <= high * matter
        for modality in {m for m, _ in moved}:
            faint[modality] += 1
    assert all(40 <= count <= 80 for count in faint.values()), faint  # 0.2 of 300 each


def test_version_6_is_version_2_but_for_the_faint_lesion_signal():
    changed = 0
    for seed in range(4):
        old, new = (generate_phantom("glioma", seed, shape=SHAPE, version=v) for v in ("2", "6"))
        np.testing.assert_array_equal(old.case.label, new.case.label)
        # The oedema's soft margin and thick-slice blur reach a few voxels beyond the label (3.8 mm voxels);
        # a few more points are the soft edge of an oedema island the label dropped (keep_lesion_components).
        near_tumour = ndi.binary_dilation(new.case.label > 0, iterations=6)
        for modality in MODALITIES:
            a, b = old.case.images[modality], new.case.images[modality]
            assert np.count_nonzero(a[~near_tumour] != b[~near_tumour]) <= 1e-4 * a.size
            if not np.array_equal(a, b):
                changed += 1
                oedema = new.case.label == ED
                assert b[oedema].mean() < a[oedema].mean()  # fainter, not brighter
    assert changed >= 1  # seeds 1 and 3 draw a faint T2


def test_version_7_redraws_only_the_enhancing_tumours_uptake_in_about_3_cases_in_10():
    faint = 0
    for seed in range(300):
        old = sample_appearance(np.random.default_rng(seed))
        new = sample_appearance(np.random.default_rng(seed), faint_enhancement=True)
        moved = {(m, name) for m in old.signal for name in old.signal[m] if old.signal[m][name] != new.signal[m][name]}
        assert moved in (set(), {("t1c", "enhancing")})
        assert (new.faint == "enhancement") == bool(moved) and old.faint is None
        if moved:
            faint += 1
            # The faint uptake, drawn again from the same child stream, replaces version 2's uptake.
            child = np.random.default_rng(seed).spawn(1)[0]
            child.random()
            low, high = FAINT_ENHANCEMENT
            uptake = float(np.exp(child.uniform(np.log(low), np.log(high))))
            assert low <= uptake <= high
            replaced = old.signal["t1c"]["enhancing"] - new.signal["t1c"]["enhancing"] + uptake
            assert ENHANCEMENT["enhancing"][0] - 1e-9 <= replaced <= ENHANCEMENT["enhancing"][1] + 1e-9
    assert 65 <= faint <= 115, faint  # 0.3 of 300


def test_version_7_is_version_2_but_for_the_enhancing_tumour_in_t1c():
    changed = 0
    for seed in range(6):
        old, new = (generate_phantom("glioma", seed, shape=SHAPE, version=v) for v in ("2", "7"))
        np.testing.assert_array_equal(old.case.label, new.case.label)
        for modality in ("flair", "t1", "t2"):
            np.testing.assert_array_equal(old.case.images[modality], new.case.images[modality])
        a, b = old.case.images["t1c"], new.case.images["t1c"]
        near_tumour = ndi.binary_dilation(new.case.label > 0, iterations=6)
        assert np.count_nonzero(a[~near_tumour] != b[~near_tumour]) <= 1e-4 * a.size
        assert np.array_equal(a, b) == (new.contrast.faint is None)
        if new.contrast.faint == "enhancement":
            changed += 1
            enhancing = new.case.label == ET
            assert b[enhancing].mean() < a[enhancing].mean()  # fainter, not brighter
    assert changed >= 1


def test_lamellar_fissures_repeat_with_depth_and_are_under_a_voxel_thick():
    from types import SimpleNamespace

    from napari_tumorseg.synth.cortex import FISSURE_WIDTH_MM, FOLIA_PERIOD_MM, _lamellae

    depth = np.linspace(0.0, 30.0, 3001, dtype=np.float32)
    flat = SimpleNamespace(sample=lambda grid: np.zeros(depth.size, np.float32))  # no bending
    noise = SimpleNamespace(rng=np.random.default_rng(np.random.SeedSequence(7)), shape=(4, 4, 4),
                            sampler=SimpleNamespace(subset=lambda at: flat))
    sheets = _lamellae(noise, np.arange(depth.size), depth, fine=np.ones(depth.size, np.float32))
    period = np.random.default_rng(np.random.SeedSequence(7)).spawn(1)[0].uniform(*FOLIA_PERIOD_MM)
    step = int(round(period / 0.01))
    np.testing.assert_allclose(sheets[:-step], sheets[step:], atol=0.02)  # one sheet every period
    assert sheets.max() == pytest.approx(1.0, abs=0.01)
    assert (sheets > 0).mean() == pytest.approx(2 * FISSURE_WIDTH_MM / period, abs=0.02)  # thin: a share of it
