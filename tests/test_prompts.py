"""The correction prompts' core: array in, edit out, on tiny volumes whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from napari_tumorseg.errors import PromptError
from napari_tumorseg.io.labels import ED, ET, NCR
from napari_tumorseg.prompts import edit_between, fill_between, grow_lesion, propagate, remove_lesion

SHAPE = (12, 32, 32)


def ball(centre, radius, shape=SHAPE) -> np.ndarray:
    z, y, x = np.indices(shape)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


def disc(centre, radius, shape=SHAPE[1:]) -> np.ndarray:
    y, x = np.indices(shape)
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


def applied(labels: np.ndarray, edit) -> np.ndarray:
    out = labels.copy()
    edit.apply(out)
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(int(a.sum() + b.sum()), 1)


# --- the edit itself ----------------------------------------------------------------------


def test_an_edit_applies_inverts_and_knows_whether_it_is_applied():
    before = np.zeros(SHAPE, np.uint8)
    after = before.copy()
    after[3, 4:6, 4:6] = ET
    after[7, 1, 1] = ED
    edit = edit_between(before, after, "test")
    assert edit.voxels == 5 and edit.slices == [3, 7]
    labels = before.copy()
    assert edit.is_unapplied(labels) and not edit.is_applied(labels)
    edit.apply(labels)
    np.testing.assert_array_equal(labels, after)
    assert edit.is_applied(labels)
    edit.inverse().apply(labels)
    np.testing.assert_array_equal(labels, before)


# --- remove a false lesion ------------------------------------------------------------------


def two_lesions() -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[ball((5, 8, 8), 3)] = ED
    labels[ball((5, 8, 8), 1)] = ET
    labels[ball((6, 24, 24), 2)] = ED
    return labels


def test_a_click_on_a_false_lesion_removes_all_of_it_in_3d_and_nothing_else():
    labels = two_lesions()
    edit = remove_lesion(labels, (5, 8, 8), spacing=(1.0, 1.0, 1.0))
    after = applied(labels, edit)
    assert not after[ball((5, 8, 8), 3)].any(), "every class of the clicked lesion, on every slice"
    np.testing.assert_array_equal(after[ball((6, 24, 24), 2)], ED)
    assert edit.slices == [2, 3, 4, 5, 6, 7, 8]
    assert f"{ball((5, 8, 8), 3).sum() / 1000:.2f} ml" in edit.what  # voxels of 1 mm³


def test_a_click_just_beside_a_lesion_counts_and_one_far_away_is_refused():
    labels = two_lesions()
    assert applied(labels, remove_lesion(labels, (5, 8, 13)))[ball((5, 8, 8), 3)].max() == 0
    with pytest.raises(PromptError, match="no lesion at the click on slice 5"):
        remove_lesion(labels, (5, 16, 16))
    with pytest.raises(PromptError, match="outside the case"):
        remove_lesion(labels, (40, 1, 1))


# --- grow a missed lesion -------------------------------------------------------------------


def brain_with_bright_ball() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    flair = (100 + rng.normal(0, 3, SHAPE)).astype(np.float32)
    flair[ball((6, 16, 16), 4)] += 60
    t1c = (100 + rng.normal(0, 3, SHAPE)).astype(np.float32)
    flair[:, :, :2] = t1c[:, :, :2] = 0  # outside the brain
    return {"flair": flair, "t1c": t1c}


def test_a_click_in_a_missed_lesion_grows_it_from_the_image_in_3d():
    images = brain_with_bright_ball()
    labels = np.zeros(SHAPE, np.uint8)
    edit = grow_lesion(labels, (6, 16, 16), ED, images=images, spacing=(1.0, 1.0, 1.0))
    grown = applied(labels, edit) == ED
    assert dice(grown, ball((6, 16, 16), 4)) > 0.9
    assert "from FLAIR" in edit.what and len(edit.slices) >= 7


def test_a_grown_lesion_follows_the_models_probabilities_with_a_local_threshold():
    labels = np.zeros(SHAPE, np.uint8)
    probabilities = np.zeros((4, *SHAPE), np.float32)
    probabilities[0] = 1.0
    faint = ball((6, 16, 16), 3)
    probabilities[3][faint], probabilities[0][faint] = 0.3, 0.7  # the model saw it, under 0.5
    probabilities[3][ball((6, 16, 16), 5) & ~faint] = 0.1  # a halo under half the seed's probability
    edit = grow_lesion(labels, (6, 16, 16), ET, images=brain_with_bright_ball(), spacing=(1.0, 1.0, 1.0),
                       probabilities=(probabilities * 255).round().astype(np.uint8))
    grown = applied(labels, edit) == ET
    np.testing.assert_array_equal(grown, faint)
    assert "the model's probabilities" in edit.what


def test_growing_never_eats_the_tumour_core_and_refuses_outside_the_brain():
    images = brain_with_bright_ball()
    labels = np.zeros(SHAPE, np.uint8)
    labels[ball((6, 16, 16), 1)] = NCR
    grown = applied(labels, grow_lesion(labels, (6, 16, 18), ED, images=images, spacing=(1.0, 1.0, 1.0)))
    np.testing.assert_array_equal(grown[ball((6, 16, 16), 1)], NCR)
    with pytest.raises(PromptError, match="outside the brain"):
        grow_lesion(labels, (6, 16, 0), ED, images=images, spacing=(1.0, 1.0, 1.0))


def test_a_lesion_that_leaks_stops_at_the_radius():
    images = brain_with_bright_ball()
    images["flair"][5:8, 15:18, 20:] += 60  # a bright vessel from the lesion to the brain's edge
    edit = grow_lesion(np.zeros(SHAPE, np.uint8), (6, 16, 16), ED, images=images, spacing=(1.0, 1.0, 1.0),
                       radius_mm=5)
    z, y, x = np.unravel_index(edit.indices, SHAPE)
    assert np.abs(y - 16).max() <= 5 and np.abs(x - 16).max() <= 5 and x.max() == 21
    assert "stopped at 5 mm" in edit.what


# --- fill between two corrected slices -------------------------------------------------------


def test_fill_between_morphs_one_shape_into_the_other_keeping_the_nesting():
    labels = np.zeros(SHAPE, np.uint8)
    labels[2][disc((16, 16), 3)] = ED
    labels[2][disc((16, 16), 1)] = ET
    labels[8][disc((16, 16), 9)] = ED
    labels[8][disc((16, 16), 4)] = ET
    labels[5, 0, 0] = NCR  # a stray voxel between: replaced
    edit = fill_between(labels, 8, 2, spacing=(1.0, 1.0, 1.0))
    after = applied(labels, edit)
    assert edit.slices == [3, 4, 5, 6, 7]
    whole = [int((after[z] > 0).sum()) for z in range(2, 9)]
    enhancing = [int((after[z] == ET).sum()) for z in range(2, 9)]
    assert whole == sorted(whole) and len(set(whole)) == len(whole), whole
    assert enhancing == sorted(enhancing), enhancing
    for z in range(3, 8):
        assert not ((after[z] == ET) & ~disc((16, 16), 9)).any()  # ET stays inside the whole tumour
    assert after[5, 0, 0] == 0


def test_a_region_on_one_side_only_shrinks_to_nothing_and_bad_pairs_are_refused():
    labels = np.zeros(SHAPE, np.uint8)
    labels[2][disc((16, 16), 6)] = ED
    after = applied(labels, fill_between(labels, 2, 8))
    sizes = [int((after[z] > 0).sum()) for z in range(2, 9)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 0 and sizes[-2] > 0
    with pytest.raises(PromptError, match="no slice lies between"):
        fill_between(labels, 2, 3)
    with pytest.raises(PromptError, match="neither slice 5 nor slice 9"):
        fill_between(labels, 5, 9)


# --- propagate a corrected slice ------------------------------------------------------------


def lesion_probabilities(centres: dict[int, tuple[int, int]], radius: int, level: float):
    """A model that sees a disc of tumour at ``centres[z]`` with probability ``level`` (ED), nothing elsewhere."""
    calls = []

    def predict(slices):
        calls.append(list(slices))
        out = np.zeros((len(slices), 4, *SHAPE[1:]), np.float32)
        out[:, 0] = 1.0
        for n, z in enumerate(slices):
            if z in centres:
                mask = disc(centres[z], radius)
                out[n, 0][mask], out[n, 2][mask] = 1 - level, level
        return out

    return predict, calls


def test_propagation_carries_the_lesion_to_its_neighbours_and_leaves_other_lesions_alone():
    labels = np.zeros(SHAPE, np.uint8)
    labels[6][disc((16, 16), 4)] = ED
    labels[5][disc((4, 28), 2)] = NCR  # another lesion, far away
    centres = {4: (16, 17), 5: (16, 18), 7: (16, 15), 8: (16, 14)}  # faint (0.3): drawn only next to the lesion
    predict, calls = lesion_probabilities(centres, 4, 0.3)
    edit = propagate(labels, 6, predict, reach=3, protected=[9])
    after = applied(labels, edit)
    for z, centre in centres.items():
        np.testing.assert_array_equal(after[z] == ED, disc(centre, 4), err_msg=f"slice {z}")
    np.testing.assert_array_equal(after[5][disc((4, 28), 2)], NCR)
    assert calls == [[7, 8, 5, 4, 3]], "one batch; slice 9 is protected, so the upward walk stops at 8"
    assert after[3].max() == 0, "the lesion ends where the model sees none of it"


def test_propagation_refuses_an_empty_slice_and_a_model_that_sees_nothing():
    labels = np.zeros(SHAPE, np.uint8)
    with pytest.raises(PromptError, match="slice 6 holds no tumour"):
        propagate(labels, 6, lesion_probabilities({}, 4, 0.9)[0])
    labels[6][disc((16, 16), 4)] = ED
    with pytest.raises(PromptError, match="sees none of slice 6's lesion"):
        propagate(labels, 6, lesion_probabilities({}, 4, 0.9)[0])
