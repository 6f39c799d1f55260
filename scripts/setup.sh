#!/usr/bin/env bash
# Set up a fresh machine: the system libraries napari needs without a desktop
# (Xvfb, xcb), a virtual environment in .venv, and the project with its test tools.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

system_packages=(xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0
  libxcb-shape0 libdbus-1-3 libfontconfig1 libgl1 libegl1 libglib2.0-0)

if command -v apt-get >/dev/null 2>&1 && ! command -v Xvfb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" = none ]; then
    echo "setup: Xvfb is missing and there is no root access; install: ${system_packages[*]}" >&2
  else
    echo "setup: installing system packages for a headless Qt/OpenGL display"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${system_packages[@]}" >/dev/null
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true

# torch first: one already there (a CUDA build you installed) is kept; else the
# pinned wheel (TORCH_VERSION, TORCH_INDEX_URL override it: see install_torch.sh).
bash scripts/install_torch.sh
echo "setup: installing napari-tumorseg and its test tools"
python -m pip install -q -e ".[testing]" 2>&1 | grep -v '^WARNING: Location' || true
python -c "import napari_tumorseg, napari, torch; print('setup: ok (napari', napari.__version__, '| torch', torch.__version__, ')')"
