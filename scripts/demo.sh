#!/usr/bin/env bash
# The README's main command: a headless DPoser for Blender demo on the CPU (a few minutes, no user files).
#   bash scripts/demo.sh [--weights PATH] [--out DIR] [--device auto|cpu|cuda]
# Sets up .venv/ (backend) and .venv-bpy-5.0/ (the bpy 5.0.1 module), builds and validates the extension
# zip, then runs tools/demo.py, which installs that zip into a temporary Blender user folder and drives
# the extension's operators. Results: demo_out/dposer_demo.blend and demo_out/*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
export DPOSER_PYTHON="$PWD/.venv/bin/python"
zip=$(.venv-bpy-5.0/bin/python scripts/build_extension.py | tail -n 1)
echo "[demo] extension: $zip"
exec .venv-bpy-5.0/bin/python tools/demo.py --zip "$zip" "$@"
