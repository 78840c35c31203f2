#!/usr/bin/env bash
# The real-window suite: Blender 4.3 (Debian trixie) with its GUI under Xvfb and Mesa's software GL, in an
# isolated trixie root, driven by tests/window/driver.py through the real event loop (timers, modal
# operators, msgbus, xdotool clicks and keys). Results: <out>/results.json, <out>/blender.log, screenshots.
#   bash tests/window/run_suite.sh [OUT_DIR]        (default: window_out/ in the checkout; needs root)
# Everything it mounts is unmounted, and only the processes it started are killed (by PID).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ROOT="${DPOSER_WINDOW_ROOT:-/var/cache/dposer/trixie-root}"
OUT=$(mkdir -p "${1:-$REPO/window_out}" && cd "${1:-$REPO/window_out}" && pwd)
case "$OUT" in "$REPO"/*) ;; *) echo "the output folder must be inside the checkout ($REPO)" >&2; exit 2 ;; esac
rm -f "$OUT"/*.png "$OUT"/results.json "$OUT"/blender.log

t0=$(date +%s)
bash "$REPO/tests/window/setup_root.sh"
t_setup=$(( $(date +%s) - t0 ))

PY="$REPO/.venv/bin/python"
[ -x "$PY" ] || { echo "no backend venv at $PY: run bash scripts/setup.sh first" >&2; exit 2; }
PY_PREFIX=$("$PY" -c 'import sys; print(sys.base_prefix)')   # the interpreter the venv links to
ZIP=$("$PY" "$REPO/scripts/build_extension.py" | tail -1)
[ -f "$ZIP" ] || { echo "building the extension zip failed" >&2; exit 2; }

MOUNTS=()
XVFB_PID=""; BLENDER_PID=""
cleanup() {
  set +e
  for pid in $BLENDER_PID $XVFB_PID; do
    # this suite's processes and their children only
    for child in $(pgrep -P "$pid" 2>/dev/null); do pkill -9 -P "$child" 2>/dev/null; kill -9 "$child" 2>/dev/null; done
    kill -9 "$pid" 2>/dev/null
  done
  for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -l "${MOUNTS[$i]}" 2>/dev/null; done
}
trap cleanup EXIT INT TERM
bind() {  # bind SRC: the same path inside the root
  mkdir -p "$ROOT$1"
  if ! mountpoint -q "$ROOT$1"; then mount --bind "$1" "$ROOT$1"; MOUNTS+=("$ROOT$1"); fi
}
bind /proc; bind /sys; bind /dev; bind "$REPO"; bind "$PY_PREFIX"
if [ -d /dev/shm ] && ! mountpoint -q "$ROOT/dev/shm"; then mount -t tmpfs tmpfs "$ROOT/dev/shm"; MOUNTS+=("$ROOT/dev/shm"); fi

USER_RES=$(chroot "$ROOT" mktemp -d /tmp/dposer-window-XXXXXX)
RUN=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
     LIBGL_ALWAYS_SOFTWARE=1 BLENDER_USER_RESOURCES="$USER_RES")

# Xvfb picks a free display and tells us which (so a display already in use is never taken over)
DFILE="$ROOT$USER_RES/display"
"${RUN[@]}" sh -c "exec Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp 3>$USER_RES/display" \
  >"$OUT/xvfb.log" 2>&1 &
XVFB_PID=$!
disown "$XVFB_PID"  # killed by the cleanup, without a job-control notice
for _ in $(seq 100); do [ -s "$DFILE" ] && break; sleep 0.1; done
DISPLAY_NUM=$(tr -d '[:space:]' <"$DFILE")
[ -n "$DISPLAY_NUM" ] || { echo "Xvfb did not start (see $OUT/xvfb.log)" >&2; exit 1; }
RUN+=(DISPLAY=":$DISPLAY_NUM")

[ -f "$ROOT$REPO/tests/window/driver.py" ] || { echo "the checkout is not visible inside the root ($ROOT$REPO)" >&2; exit 1; }
t1=$(date +%s)
"${RUN[@]}" blender -c extension install-file -r user_default -e "$ZIP" >"$OUT/install.log" 2>&1 \
  || { cat "$OUT/install.log"; echo "installing the extension failed" >&2; exit 1; }

"${RUN[@]}" timeout -k 10 "${DPOSER_WINDOW_TIMEOUT:-1200}" blender --python-exit-code 3 -p 0 0 1920 1080 \
  --python "$REPO/tests/window/driver.py" -- --out "$OUT" --backend-python "$PY" --repo "$REPO" \
  --install-log "$OUT/install.log" >"$OUT/blender.log" 2>&1 &
BLENDER_PID=$!
rc=0; wait "$BLENDER_PID" || rc=$?
BLENDER_PID=""
t_suite=$(( $(date +%s) - t1 ))
echo "[window] root set-up ${t_setup} s, suite ${t_suite} s, Blender exit code $rc"
printf '{"setup_s": %d, "suite_s": %d, "blender_rc": %d}\n' "$t_setup" "$t_suite" "$rc" >"$OUT/timing.json"
[ -f "$OUT/results.json" ] || { tail -50 "$OUT/blender.log"; echo "the driver wrote no results" >&2; exit 1; }
# the measurements (not asserted: tests check behaviour): event-loop gaps while each operation ran
python3 - "$OUT/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
hb = r.get("_heartbeat", {})
print(f"{'operation':<22}{'largest event-loop gap (s)':>28}{'longest DPoser modal tick (s)':>32}")
ticks = hb.get("extension_tick_max_s", {})
for op, gap in (hb.get("gaps") or {}).items():
    print(f"{op:<22}{gap:>28.3f}{ticks.get(op, float('nan')):>32.3f}")
print(f"{'quiet baseline':<22}{hb.get('quiet_baseline_max_gap_s', float('nan')):>28.3f}")
print(f"{'between operations':<22}{hb.get('idle_max_gap_s', float('nan')):>28.3f}")
print(f"{'one full redraw':<22}{hb.get('full_window_redraw_s', float('nan')):>28.3f}")
failed = [k for k, v in r.items() if not k.startswith("_") and not v.get("ok")]
print(f"[window] {sum(1 for k in r if not k.startswith('_')) - len(failed)} checks passed, failed: {failed}")
PY
