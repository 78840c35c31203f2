"""What the window-suite driver (``driver.py``) stands on: its arguments, the checks it records, the
heartbeat that measures the event loop, and the window helpers (operators in the 3D Viewport, xdotool keys
and clicks, screenshots, the file browser, the Info editor's reports)."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time

import bpy

def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend-python", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--install-log", default="")
    return ap.parse_args(sys.argv[sys.argv.index("--") + 1:])


ARGS = _parse()
PKG = "bl_ext.user_default.dposer_blender"
SCREEN_H = 1080
RESULTS: dict[str, dict] = {}
SHOTS: list[str] = []


def log(msg: str) -> None:
    print(f"[window] {msg}", flush=True)


def check(name: str, ok: bool, detail: str = "") -> bool:
    RESULTS[name] = {"ok": bool(ok), "detail": str(detail)}
    log(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    return bool(ok)


def ext(sub: str = ""):
    return importlib.import_module(PKG + ("." + sub if sub else ""))


# ----------------------------------------------------------------------------------------- heartbeat

class Heartbeat:
    """A 20 Hz timer; the largest gap between its ticks while a DPoser operation is in flight."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.gaps: dict[str, float] = {}
        self.current: str | None = None
        self.was_busy = False
        self.seen_busy = False  # set by the instrumented modal tick: an operation ran since the last tick
        self.idle = 0.0
        self.idle_from: float | None = None
        self.baseline_from: float | None = None
        self.baseline: float | None = None
        self.idle_probe = 0.0

    def tick(self) -> float:
        now = time.monotonic()
        gap = now - self.last
        self.last = now
        try:
            busy = ext("runtime").progress() is not None
        except Exception:  # noqa: BLE001
            busy = False
        seen, self.seen_busy = self.seen_busy, False
        if (busy or self.was_busy or seen) and self.current is not None:  # a gap in which an operation ran
            self.gaps[self.current] = max(self.gaps.get(self.current, 0.0), gap)
        elif not busy and not self.was_busy and self.idle_from is not None:  # nothing of ours running
            self.idle = max(self.idle, gap)
        if self.baseline_from is not None and self.baseline is None:
            self.idle_probe = max(self.idle_probe, gap)
        self.was_busy = busy
        return 0.05


HB = Heartbeat()
EXT_TIME: dict[str, float] = {}


def instrument_modal() -> None:
    """Time every modal tick of the extension's operators (its own main-thread work, apply included)."""
    base = ext("operators._base").BackendOperator
    inner = base._modal

    def timed(self, context, event):
        t0 = time.monotonic()
        HB.seen_busy = True
        try:
            return inner(self, context, event)
        finally:
            if HB.current is not None:
                EXT_TIME[HB.current] = max(EXT_TIME.get(HB.current, 0.0), time.monotonic() - t0)

    base._modal = timed


# ----------------------------------------------------------------------------------------- window helpers

def window():
    return bpy.context.window_manager.windows[0]


def view3d():
    win = window()
    area = max((a for a in win.screen.areas if a.type == 'VIEW_3D'), key=lambda a: a.width * a.height)
    region = next(r for r in area.regions if r.type == 'WINDOW')
    return win, area, region


def invoke(op_path: str, **props):
    """``bpy.ops.<op_path>('INVOKE_DEFAULT', **props)`` in the 3D Viewport of the main window."""
    win, area, region = view3d()
    mod, name = op_path.split(".")
    op = getattr(getattr(bpy.ops, mod), name)
    with bpy.context.temp_override(window=win, area=area, region=region):
        return op('INVOKE_DEFAULT', True, **props)  # undo=True: pushes an undo step as a button press does


def xdo(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=10)


def mouse_to_viewport_centre() -> None:
    win, area, region = view3d()
    x = region.x + region.width // 2
    y = SCREEN_H - (region.y + region.height // 2)
    xdo("mousemove", str(x), str(y))


def key(combo: str) -> None:
    mouse_to_viewport_centre()
    xdo("key", "--clearmodifiers", combo)


def settle():
    """Redraw everything and let Blender's panel layout animation finish before a screenshot."""
    for _ in range(4):
        redraw_all()
        yield 0.4


def screenshot(name: str) -> None:
    path = os.path.join(ARGS.out, name + ".png")
    subprocess.run(["import", "-window", "root", path], check=True, timeout=30)
    SHOTS.append(path)
    log(f"screenshot {path}")


def redraw_all() -> None:
    for win in bpy.context.window_manager.windows:
        for area in win.screen.areas:
            area.tag_redraw()


def wait_idle(timeout: float = 180.0):
    """Yield until no DPoser operation is in flight (a generator step)."""
    t0 = time.monotonic()
    while ext("runtime").progress() is not None:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("the DPoser operation did not finish")
        yield 0.1
    yield 0.3  # let the modal operator finish and the undo push happen


def wait_for(pred, timeout: float = 60.0, what: str = "a condition"):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        yield 0.1


def reports() -> list[tuple[str, str]]:
    """Every report the user was shown so far, as the Info editor lists them (read through its Copy)."""
    win = window()
    area = next(a for a in win.screen.areas if a.type == 'OUTLINER')
    old = area.ui_type
    area.ui_type = 'INFO'
    try:
        region = next(r for r in area.regions if r.type == 'WINDOW')
        with bpy.context.temp_override(window=win, area=area, region=region):
            bpy.ops.info.select_all(action='SELECT')
            bpy.ops.info.report_copy()
            bpy.ops.info.select_all(action='DESELECT')
        lines = bpy.context.window_manager.clipboard.splitlines()
    finally:
        area.ui_type = old
    return [("REPORT", ln) for ln in lines]  # the Info editor's Copy gives the text without its type


def last_report_since(n: int) -> list[tuple[str, str]]:
    return reports()[n:]


def choose_in_file_browser(path: str, shot: str | None = None):
    """In the file browser an operator opened: go to ``path``'s folder, pick the file and run the browser's
    execute operator (a generator step; its value is False when no file browser is open)."""
    browser = None
    for w in bpy.context.window_manager.windows:
        for a in w.screen.areas:
            if a.type == 'FILE_BROWSER':
                browser = (w, a)
    if browser is None:
        return False
    w, a = browser
    params = a.spaces.active.params
    params.directory = os.path.dirname(path).encode()
    params.filename = os.path.basename(path)
    yield 0.5
    if shot:
        yield from settle()
        screenshot(shot)
    r = next(r for r in a.regions if r.type == 'WINDOW')
    xdo("mousemove", str(w.x + r.x + r.width // 2), str(SCREEN_H - (w.y + r.y + r.height // 2)))
    yield 0.3
    with bpy.context.temp_override(window=w, area=a, region=r):
        bpy.ops.file.execute('INVOKE_DEFAULT')
    yield 0.5
    return True


# ----------------------------------------------------------------------------------------- scene snapshots

