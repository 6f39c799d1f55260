#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (GUI tests under Xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# pytest-xvfb starts a virtual display for the napari tests; Qt must not try a real one.
unset WAYLAND_DISPLAY
exec python -m pytest "$@"
