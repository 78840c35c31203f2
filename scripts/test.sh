#!/usr/bin/env bash
# Sets up the environments and runs the whole test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh blender
export CUDA_VISIBLE_DEVICES=""
.venv/bin/python -m pytest -q tests/backend tests/client "$@"
if [ -d tests/blender ] && ls tests/blender/test_*.py >/dev/null 2>&1; then
  for v in 4.2 5.0; do
    echo "[test] Blender tests on bpy $v"
    DPOSER_PYTHON="$PWD/.venv/bin/python" ".venv-bpy-$v/bin/python" -m pytest -q tests/blender "$@"
  done
fi
