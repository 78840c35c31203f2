#!/usr/bin/env bash
# Creates (or reuses) the backend virtual environment .venv/ at the repo root.
#   bash scripts/setup.sh            backend + test dependencies in .venv/
#   bash scripts/setup.sh blender    also .venv-bpy-4.2/ and .venv-bpy-5.0/ (bpy wheels + pytest)
#   bash scripts/setup.sh demo       also .venv-bpy-5.0/ only (what scripts/demo.sh needs)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

stamp_ok() { [ -f "$1/.dposer-stamp" ] && [ "$(cat "$1/.dposer-stamp")" = "$2" ]; }

make_venv() {  # make_venv DIR STAMP PIP_ARGS...
  local dir=$1 stamp=$2; shift 2
  if stamp_ok "$dir" "$stamp"; then echo "[setup] reusing $dir"; return; fi
  echo "[setup] creating $dir"
  [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
  echo "$stamp" > "$dir/.dposer-stamp"
}

req_hash=$(cat requirements/backend.txt requirements/test.txt | sha256sum | cut -c1-16)
make_venv .venv "$req_hash" -r requirements/test.txt

# Pose from a photo (optional feature): mediapipe and what its pose path imports, without dependency
# resolution (mediapipe declares numpy<2; see requirements/photo.txt). DPOSER_NO_PHOTO=1 leaves it out.
photo_hash=$(sha256sum requirements/photo.txt | cut -c1-16)
if [ "${DPOSER_NO_PHOTO:-0}" != 1 ]; then
  if [ "$(cat .venv/.dposer-photo-stamp 2>/dev/null)" != "$photo_hash" ]; then
    echo "[setup] adding pose-from-a-photo (mediapipe) to .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements/photo.txt
    echo "$photo_hash" > .venv/.dposer-photo-stamp
  fi
fi

case "${1:-}" in
  blender)
    make_venv .venv-bpy-4.2 "bpy-4.2-$req_hash" "bpy==4.2.*" pytest==9.2.0
    make_venv .venv-bpy-5.0 "bpy-5.0.1-$req_hash" "bpy==5.0.1" pytest==9.2.0
    ;;
  demo)
    make_venv .venv-bpy-5.0 "bpy-5.0.1-$req_hash" "bpy==5.0.1" pytest==9.2.0
    ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [blender|demo]" >&2; exit 2 ;;
esac
