#!/usr/bin/env bash
# The main job on a fresh machine: set up, then open napari with the synthetic
# sample case and the bundled model. Without a display it runs under Xvfb and
# writes a screenshot (default out/demo.png) instead of opening a window.
# Extra arguments go to `tumorseg view` (e.g. a case folder, --sample metastasis).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec tumorseg view "$@"
fi
shot=${SCREENSHOT:-out/demo.png}
echo "demo: no display, running under Xvfb and writing $shot"
exec xvfb-run -a -s "-screen 0 1600x1000x24" tumorseg view --screenshot "$shot" "$@"
