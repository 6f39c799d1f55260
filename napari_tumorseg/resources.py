"""Where the shipped data files live: ``resources/`` in a source tree, ``napari_tumorseg/resources/`` in a wheel.

The design card keeps ``resources/`` at the repository's top level; the wheel
build copies it into the package (see ``pyproject.toml``). Code asks this
module for a path and never guesses which of the two layouts it runs from.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def resources_root() -> Path:
    """The folder holding the shipped resources.

    An installed wheel carries them inside the package; an editable install or
    a checkout has them beside the package, at the repository root.

    Raises:
        FileNotFoundError: neither layout has a resources folder (a broken install).
    """
    candidates = (_PACKAGE_DIR / "resources", _PACKAGE_DIR.parent / "resources")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no resources folder found (looked in {searched})")


def resource_path(*parts: str) -> Path:
    """The path of a shipped resource, e.g. ``resource_path("anatomy", "icbm152_2009a_brats.npz")``.

    Args:
        parts: path components below the resources folder.

    Returns:
        The path (not checked for existence, so callers can name what is missing).
    """
    return resources_root().joinpath(*parts)
