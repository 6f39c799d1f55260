"""Adapt the model to the corrections of the case under review (the "Adapt model" button, without Qt)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AdaptationError

if TYPE_CHECKING:
    from ..adapt.config import AdaptConfig
    from ..jobs import CancelFlag, Progress
    from ..adapt.run import AdaptationOutcome
    from .state import ReviewState


def adapt_to_review(
    state: ReviewState,
    labels: np.ndarray,
    version_id: str,
    config: AdaptConfig,
    *,
    force: bool = False,
    anchor_shape: tuple[int, int, int] | None = None,
    cancel: CancelFlag = None,
    device: str | None = None,
    viewed: list[int] | None = None,
) -> Generator[Progress, None, AdaptationOutcome]:
    """Adapt version ``version_id`` to the corrected slices of the current case.

    The new version is stored in the registry and becomes active if the
    forgetting guard accepts it (or ``force``); a cancel stores nothing. The
    slices the user looked at and left alone are compared before and after
    (the label-free check), against the prediction the user saw when it came
    from this version. It adapts on the device the segmenter uses.

    Args:
        state: the review (its case, corrected slices and registry).
        labels: the labels as the radiologist left them (canonical grid).
        version_id: the model version to adapt.
        config: method and hyper-parameters (see ``adapt.config.default_config``).
        force: activate the new version even if the guard rejects it.
        anchor_shape: grid of the synthetic anchor cases (default: BraTS size; tests use a small one).
        cancel: a threading.Event or callable, checked at every step.
        device: where to adapt (default: the state's, i.e. the Segment panel's choice).
        viewed: the slices the user looked at (default: the state's; the GUI passes a
            copy taken on its own thread).
    """
    from ..adapt.corrections import Corrections, case_corrections
    from ..adapt.labelfree import DEFAULT_UNLABELLED
    from ..adapt.loaded import adapt_loaded_model

    case = state.case
    if case is None:
        raise AdaptationError("open a case first")
    if version_id in state.imported:
        raise AdaptationError(f"{version_id} cannot be adapted: {state.imported[version_id][0].reason}")
    corrected = list(state.corrected)
    if not corrected:
        raise AdaptationError("correct at least one slice before adapting the model")
    loaded, _ = state.registry.load(version_id)
    corrections = Corrections(
        (
            case_corrections(
                case,
                labels,
                corrected,
                model_config=loaded.config,
                preprocessing=loaded.preprocessing,
                reference_slices=config.reference_slices,
                unlabelled_slices=DEFAULT_UNLABELLED,
                viewed=list(state.viewed) if viewed is None else viewed,
                seen_labels=state.prediction if state.prediction_model == version_id else None,
            ),
        )
    )
    return (
        yield from adapt_loaded_model(
            loaded, corrections, config, registry=state.registry, parent_id=version_id,
            anchor_shape=anchor_shape, force=force, cancel=cancel, device=device or state.device,
        )
    )
