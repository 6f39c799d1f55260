"""Where the user's data lives: model versions, correction sessions, settings, caches.

``TUMORSEG_HOME`` overrides the platform's folders (tests, and users who keep
everything on a project drive): data then lives in it, the cache in its
``cache`` subfolder. The one place that knows these locations.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "napari-tumorseg"


def _override() -> Path | None:
    value = os.environ.get("TUMORSEG_HOME")
    return Path(value) if value else None


def user_home() -> Path:
    """The user's data folder: model versions, sessions, settings."""
    override = _override()
    if override is not None:
        return override
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def cache_home() -> Path:
    """Rebuildable data (synthetic anchor and replay slices, experiment cases)."""
    override = _override()
    if override is not None:
        return override / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    return user_home() / "models"


def sessions_dir() -> Path:
    return user_home() / "sessions"


def settings_file() -> Path:
    return user_home() / "settings.json"
