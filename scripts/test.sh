#!/usr/bin/env bash
# Sets up the environments and runs the whole test suite on the CPU:
#   1. core + backend + client tests (.venv)
#   2. the Blender tests and the tools' (render) tests on the oldest and newest bpy wheels (4.2 LTS, 5.0.1)
#   3. the real-window suite: Blender 4.3 with its GUI under Xvfb in a Debian trixie root (needs root,
#      as on CI; it builds the root on first use, ~3 min, and reuses it after). DPOSER_WINDOW=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh blender
export CUDA_VISIBLE_DEVICES=""
.venv/bin/python -m pytest -q tests/core tests/backend tests/client "$@"
for v in 4.2 5.0; do
  echo "[test] Blender and tools tests on bpy $v"
  DPOSER_PYTHON="$PWD/.venv/bin/python" ".venv-bpy-$v/bin/python" -m pytest -q tests/blender tests/tools "$@"
done
if [ "${DPOSER_WINDOW:-1}" != 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[test] real-window suite (Blender 4.3, Xvfb, software GL)"
    DPOSER_WINDOW=1 .venv/bin/python -m pytest -q -rA tests/window "$@"
  else
    echo "[test] real-window suite skipped: it needs root (debootstrap, chroot, mounts); run as root or see tests/window/run_suite.sh"
  fi
fi
