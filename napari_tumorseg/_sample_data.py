"""napari sample data: synthetic cases made on the spot (deterministic, no download)."""

from __future__ import annotations

from ._layers import LayerData

SAMPLE_SEED = 0


def sample_case(domain: str, seed: int = SAMPLE_SEED):
    """The synthetic case the samples and the demo show (BraTS grid, reference mask included)."""
    from .synth import make_case

    return make_case(domain, seed)


def sample_glioma() -> list[LayerData]:
    from ._layers import case_to_layer_data

    return case_to_layer_data(sample_case("glioma"))


def sample_metastasis() -> list[LayerData]:
    from ._layers import case_to_layer_data

    return case_to_layer_data(sample_case("metastasis"))
