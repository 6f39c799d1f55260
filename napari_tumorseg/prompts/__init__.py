"""Correction prompts: array in, edit out (no Qt, no model object; the model comes in as a callable).

- :func:`remove_lesion`: a click on a false lesion removes its 3D component;
- :func:`grow_lesion`: a click inside a missed lesion grows it in 3D;
- :func:`fill_between`: the slices between two corrected ones, interpolated;
- :func:`propagate`: a corrected slice carried to its neighbours by the model.

Each returns a :class:`LabelEdit` (a sparse diff); the review state applies
it, records it for undo and counts the slices it changed as corrected.
"""

from __future__ import annotations

from .edits import LabelEdit, edit_between, edit_in_box
from .lesions import grow_lesion, remove_lesion
from .slices import fill_between, propagate, propagation_targets

__all__ = [
    "LabelEdit",
    "edit_between",
    "edit_in_box",
    "fill_between",
    "grow_lesion",
    "propagate",
    "propagation_targets",
    "remove_lesion",
]
