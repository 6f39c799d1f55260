"""napari reader: a thin adapter from a path to the layers of a Case.

``get_reader`` must answer at once (napari calls it for every file dropped),
so it only looks at file names; reading happens in the returned function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._layers import LayerData


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    from .io import looks_like_case
    from .io.naming import brats_role

    if isinstance(path, list):
        # Several files dropped at once are one case if they are images of one case,
        # possibly with its mask (a mask alone is not a case).
        images = [p for p in path if looks_like_case(p)]
        masks = [p for p in path if (role := brats_role(p)) is not None and role[0] == "seg"]
        if not images or len(images) + len(masks) != len(path):
            return None
        return read_case_layers
    return read_case_layers if looks_like_case(path) else None


def read_case_layers(path: str | list[str]) -> list[LayerData]:
    """Read a case (folder, NIfTI file or list of files) into image and labels layers."""
    from ._layers import case_to_layer_data
    from .io import read_case

    if isinstance(path, list):
        if len(path) == 1:
            return case_to_layer_data(read_case(Path(path[0])))
        return case_to_layer_data(read_case(None, modality_files=[Path(p) for p in path]))
    return case_to_layer_data(read_case(Path(path)))
