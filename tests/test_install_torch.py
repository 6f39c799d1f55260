"""scripts/install_torch.sh: a torch already there (a CUDA build) is kept; else the pinned wheel, overridable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install_torch.sh"

# A stand-in interpreter: "import torch" works when TORCH_PRESENT is set; pip records its arguments.
STUB = """#!/usr/bin/env bash
if [ "$1" = -c ]; then
  case "$2" in *"import torch"*)
    if [ -n "${TORCH_PRESENT:-}" ] || [ -e "$STUB_DIR/installed" ]; then echo "2.5.1+cu124 CUDA 12.4 (available)"; exit 0; fi
    exit 1;;
  esac
fi
if [ "$1" = -m ] && [ "$2" = pip ]; then echo "$@" >> "$STUB_DIR/pip"; touch "$STUB_DIR/installed"; exit 0; fi
exit 2
"""


def run(tmp_path: Path, **env: str) -> tuple[str, str]:
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(0o755)
    environment = {"PATH": os.environ["PATH"], "STUB_DIR": str(tmp_path), "PYTHON_BIN": str(stub), **env}
    done = subprocess.run(["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, check=True)
    pip = tmp_path / "pip"
    return done.stdout, pip.read_text(encoding="utf-8") if pip.exists() else ""


def test_an_installed_cuda_torch_is_kept(tmp_path):
    out, pip = run(tmp_path, TORCH_PRESENT="1")
    assert "keeping the installed torch 2.5.1+cu124 CUDA 12.4 (available)" in out
    assert pip == ""


def test_without_torch_the_pinned_wheel_or_the_overrides(tmp_path):
    _, pip = run(tmp_path)
    assert pip.split() == ["-m", "pip", "install", "-q", "torch==2.13.0"]
    (tmp_path / "pip").unlink()
    (tmp_path / "installed").unlink()
    out, pip = run(tmp_path, TORCH_VERSION="2.5.1", TORCH_INDEX_URL="https://download.pytorch.org/whl/cu124")
    assert pip.split() == ["-m", "pip", "install", "-q", "torch==2.5.1", "--index-url",
                           "https://download.pytorch.org/whl/cu124"]
    assert "from https://download.pytorch.org/whl/cu124" in out
