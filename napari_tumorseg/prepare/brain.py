"""Brain extraction on a prepared (co-registered) case: the brain-mask network over every sequence.

Each sequence gives a brain probability (:mod:`.brainnet`); their mean is
thresholded at the network's own threshold (``brainnet.threshold_of`` its card), and the largest connected
piece, holes filled, is the brain. One network file is loaded once per process.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..io.case import Geometry


@lru_cache(maxsize=2)
def _network(path: str | None):
    from .brainnet import load_brain_net

    return load_brain_net(path)


def brain_probability(images: dict[str, np.ndarray], geometry: Geometry, *, net_path: str | None = None) -> np.ndarray:
    """Mean brain probability over the sequences (canonical volumes on ``geometry``), float32."""
    import torch

    from .brainnet import predict_at_net_spacing, probability_back

    model, config, _ = _network(net_path)
    if not images:
        return np.zeros(geometry.canonical_shape, dtype=np.float32)
    total = None
    with torch.inference_mode():
        for volume in images.values():
            small = predict_at_net_spacing(model, config, volume, geometry.spacing)
            total = small if total is None else total + small
    # One zoom back for all the sequences (they share the grid; the mean commutes with linear zoom).
    return probability_back(total / len(images), geometry.canonical_shape)


def extract_brain(images: dict[str, np.ndarray], geometry: Geometry, *, net_path: str | None = None) -> np.ndarray:
    """The brain mask (bool, canonical on ``geometry``) of a head seen in one or more co-registered sequences."""
    from .brainnet import mask_from_probability, threshold_of

    _, _, card = _network(net_path)
    return mask_from_probability(brain_probability(images, geometry, net_path=net_path), threshold_of(card))
