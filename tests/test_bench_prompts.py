"""``tumorseg bench-prompts``' core: every correction timed on a case, each run undone, the labels left as found."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from napari_tumorseg.jobs import Progress
from napari_tumorseg.workflow.bench_prompts import TARGET_SECONDS, bench_prompts, format_table


class Oracle:
    """A segmenter that returns the case's reference (so the bench has lesions to work on), fast."""

    def __init__(self, labels: np.ndarray) -> None:
        self.probabilities = np.moveaxis(np.eye(4, dtype=np.uint8)[labels] * 255, -1, 0)
        self.calls: list[list[int]] = []

    def run(self, case):
        yield Progress(1, 1, phase="segmenting")
        return SimpleNamespace(labels=case.label.copy(), probabilities=self.probabilities.copy())

    def predict_slices(self, case, slices):
        self.calls.append(list(slices))
        return self.probabilities[:, list(slices)].transpose(1, 0, 2, 3).astype(np.float32) / 255


def test_every_action_is_timed_and_the_table_says_which_meet_the_target(small_glioma):
    oracle = Oracle(small_glioma.label)
    figures = bench_prompts(small_glioma, oracle, repeats=2, reach=2)
    actions = figures["actions"]
    assert list(actions) == ["remove lesion (3D)", "grow lesion, model probabilities",
                             "grow lesion, image (no probabilities)", "fill between corrected slices",
                             "propagate to ±2 slices", "brush stroke saved (diff, corrections, undo step)", "undo",
                             "redo"]
    for entry in actions.values():
        assert 0 < entry["total_s"]["median"] <= entry["total_s"]["max"]
        assert entry["within_target"] == (entry["total_s"]["max"] <= TARGET_SECONDS)
        assert entry["cpu_s"]["median"] >= 0
    assert actions["remove lesion (3D)"]["what"].startswith("removed")
    assert oracle.calls and all(len(c) <= 4 for c in oracle.calls), "propagation asks the model for its neighbours only"
    table = format_table(figures).splitlines()
    assert len(table) == 1 + len(actions) and all(line.endswith(("yes", "NO")) for line in table[1:])
