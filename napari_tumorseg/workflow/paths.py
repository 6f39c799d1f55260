"""Where the user's data lives: model versions, correction sessions, settings.

``TUMORSEG_HOME`` overrides the platform's user data folder (tests, and users
who keep everything on a project drive).
"""

from __future__ import annotations

import os
from pathlib import Path


def user_home() -> Path:
    override = os.environ.get("TUMORSEG_HOME")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-tumorseg", appauthor=False))


def sessions_dir() -> Path:
    return user_home() / "sessions"


def settings_file() -> Path:
    return user_home() / "settings.json"
