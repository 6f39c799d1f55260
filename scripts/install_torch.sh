#!/usr/bin/env bash
# PyTorch for the active environment, before the package (setup.sh calls this).
#
# A torch already importable is kept as it is: a CUDA or ROCm build installed
# first is never replaced by the CPU wheel (the package asks only torch>=2.4,
# which it satisfies, so `pip install -e .` leaves it alone too). Otherwise the
# pinned wheel is installed; a bare `torch` could pull a multi-GB CUDA build
# where a CPU wheel would do. Overrides:
#   TORCH_VERSION    the version to install (default 2.13.0)
#   TORCH_INDEX_URL  the wheel index, e.g. https://download.pytorch.org/whl/cu124
#                    for CUDA 12.4 or https://download.pytorch.org/whl/cpu
set -euo pipefail
python=${PYTHON_BIN:-python}
found=$("$python" -c "import torch; print(torch.__version__, 'CUDA', torch.version.cuda or 'none', \
'(available)' if torch.cuda.is_available() else '(no GPU seen)')" 2>/dev/null || true)
if [ -n "$found" ]; then
  echo "setup: keeping the installed torch $found"
  exit 0
fi
spec="torch==${TORCH_VERSION:-2.13.0}"
index=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then index=(--index-url "$TORCH_INDEX_URL"); fi
echo "setup: installing $spec${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}"
"$python" -m pip install -q "$spec" "${index[@]}" 2>&1 | grep -v '^WARNING: Location' || true
"$python" -c "import torch" || { echo "setup: torch did not install ($spec)" >&2; exit 1; }
