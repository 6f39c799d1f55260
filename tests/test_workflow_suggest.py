"""Suggestions find what is wrong: a half-seen lesion, a false one far away, a flip disagreement, a change."""

from __future__ import annotations

import numpy as np

from napari_tumorseg.workflow.review import least_certain_slices
from napari_tumorseg.workflow.suggest import isolated_components, pick_slices, slice_scores, suggest

SHAPE = (12, 32, 32)


def confident(labels: np.ndarray) -> np.ndarray:
    """uint8 probabilities (x/255) putting 0.98 on each voxel's label."""
    probabilities = np.full((4, *labels.shape), 2, np.uint8)
    for c in range(4):
        probabilities[c][labels == c] = 250
    return probabilities


def a_volume():
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:6, 10:20, 10:20] = 2  # the main tumour, confidently segmented
    probabilities = confident(labels)
    # Slice 9: a lesion the model half sees (tumour 0.35, background 0.65) but calls background.
    probabilities[0, 9, 4:8, 4:8] = 166
    probabilities[2, 9, 4:8, 4:8] = 89
    return labels, probabilities


def test_a_half_seen_lesion_far_from_the_tumour_is_suggested_first():
    labels, probabilities = a_volume()
    scores = slice_scores(probabilities, labels)
    assert suggest(scores, 1) == [(9, "possible missed lesion")]
    # The old ranking looked only near the predicted tumour: it never saw slice 9.
    entropy = 1.0 - probabilities.max(axis=0) / 255.0
    assert 9 not in least_certain_slices(entropy, labels, k=3)


def test_an_isolated_false_positive_is_suggested_with_its_reason():
    labels, probabilities = a_volume()
    labels[10, 28:30, 28:30] = 2  # a speck far from the tumour, confidently wrong
    probabilities = confident(labels)
    picks = dict(suggest(slice_scores(probabilities, labels), 2))
    assert picks[10] == "isolated finding"
    assert isolated_components(labels > 0).sum() == 4


def test_flip_disagreement_and_a_changed_version_count_too():
    labels, probabilities = a_volume()
    flipped = labels.copy()
    flipped[7, 0:6, 0:6] = 3
    previous = labels.copy()
    previous[4, 10:20, 10:20] = 0
    scores = slice_scores(probabilities, labels, flipped_labels=flipped, previous_labels=previous)
    assert scores.reason(7) == "flipped input disagrees" and scores.reason(4) == "changed by the new version"
    assert scores.total[7] == 36 and scores.total[4] >= 100


def test_picks_are_spread_out_and_skip_corrected_slices():
    scores = np.array([0, 9, 8, 7, 0, 0, 5, 0, 1], float)
    assert pick_slices(scores, 3) == [1, 6, 2]  # 2 and 3 are next to 1; then the suppressed fill in
    assert pick_slices(np.zeros(5), 3) == []


def test_neighbours_of_corrected_slices_are_suggested_only_when_nothing_else_is_left():
    scores = np.array([0, 9, 8, 7, 0, 0, 5, 0, 1, 0, 0, 0], float)
    assert pick_slices(scores, 2, exclude=[1]) == [6, 8]  # 2 and 3 (next to 1) score higher, but 1 was corrected
    assert pick_slices(scores, 2, exclude=[8]) == [1, 2]  # 6 is within 2 of 8: the fill-in keeps off it too
    assert pick_slices(scores, 4, exclude=[1]) == [6, 8, 2, 3]  # nothing else left: the neighbours, by score
    assert pick_slices(scores, 1, exclude=[1], neighbours=0) == [2]


def test_the_review_state_suggests_with_reasons(tmp_path):
    from napari_tumorseg.synth.generate import make_case
    from napari_tumorseg.workflow.state import ReviewState

    case = make_case("glioma", 0, shape=(12, 32, 32))
    state = ReviewState(sessions_root=tmp_path)
    state.open_case(case)
    labels, probabilities = a_volume()
    state.accept_prediction(labels, "m1", slice_scores=slice_scores(probabilities, labels))
    assert state.suggestions(1) == [(9, "possible missed lesion")]
    fresh = labels.copy()
    fresh[9, 4:8, 4:8] = 2
    state.update_slice_prediction(9, fresh[9], None, fresh, probabilities_slice=confident(fresh)[:, 9] / 255.0)
    assert 9 not in [z for z, _ in state.suggestions(3)]
