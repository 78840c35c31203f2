#!/usr/bin/env bash
# Builds (or reuses) the isolated Debian 13 (trixie) root in which the real-window suite runs Blender 4.3
# under Xvfb with Mesa's software GL. Idempotent: a root that finished setting up is reused as it is.
#   DPOSER_WINDOW_ROOT  where the root lives (default /var/cache/dposer/trixie-root)
set -euo pipefail
ROOT="${DPOSER_WINDOW_ROOT:-/var/cache/dposer/trixie-root}"
STAMP="$ROOT/.dposer-root-ready"
PKGS="blender xvfb xauth xdotool imagemagick libgl1-mesa-dri python3-numpy procps"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PKGS" ]; then
  echo "[window-root] reusing $ROOT"
  exit 0
fi
t0=$(date +%s)
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
         /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security | head -1 | awk '{print $2}' || true)
mirror="${mirror:-http://deb.debian.org/debian}"
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  rm -rf "$ROOT"
  mkdir -p "$(dirname "$ROOT")"
  echo "[window-root] debootstrap trixie from $mirror into $ROOT"
  debootstrap --variant=minbase trixie "$ROOT" "$mirror" >/tmp/dposer-debootstrap.log 2>&1 \
    || { tail -30 /tmp/dposer-debootstrap.log; exit 1; }
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
mount_once() { mountpoint -q "$2" || mount --bind "$1" "$2"; }
mount_once /proc "$ROOT/proc"; mount_once /sys "$ROOT/sys"; mount_once /dev "$ROOT/dev"
cleanup() { for m in dev sys proc; do umount -l "$ROOT/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
echo "[window-root] apt-get install $PKGS"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS" >/tmp/dposer-root-apt.log 2>&1 \
  || { tail -30 /tmp/dposer-root-apt.log; exit 1; }
chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin apt-get clean
echo "$PKGS" >"$STAMP"
echo "[window-root] ready in $(( $(date +%s) - t0 )) s: $(chroot "$ROOT" /usr/bin/blender --version 2>/dev/null | head -1)"
