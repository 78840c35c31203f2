"""Drives a real Blender window (run by ``tests/window/run_suite.sh``; Blender's own Python, no pytest).

The scenario is a generator stepped by ``bpy.app.timers``, so Blender's event loop runs between steps:
operators are called with ``'INVOKE_DEFAULT'`` in the 3D Viewport's context (the path a panel button
takes, so the modal operators, their timers and the status bar run for real), a ghost is clicked and Esc
and Ctrl+Z / Ctrl+Shift+Z are pressed with ``xdotool``, and screenshots are taken with ImageMagick's
``import -window root``. Each check is judged by what lands in the scene and is written to
``<out>/results.json``; a heartbeat timer records the largest gap in the event loop while an operation
runs. Blender quits at the end.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import traceback

import bpy
import numpy as np
from bpy_extras import view3d_utils

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

def quats_of(name: str) -> np.ndarray:
    obj = bpy.data.objects[name]
    out = np.empty((len(obj.pose.bones), 4))
    for i, pb in enumerate(obj.pose.bones):
        pb.rotation_mode = pb.rotation_mode  # no-op; read below
        out[i] = tuple(pb.rotation_quaternion)
    return out


def snapshot() -> dict:
    """Everything an operation may change: objects, actions with their keys, NLA tracks, custom props."""
    snap: dict = {"objects": sorted(o.name for o in bpy.data.objects),
                  "actions": {}, "nla": {}, "pose": {}, "props": {}, "markers": len(bpy.context.scene.timeline_markers),
                  "active": getattr(bpy.context.view_layer.objects.active, "name", None),
                  "selected": sorted(o.name for o in bpy.context.view_layer.objects if o.select_get())}
    aio = ext("action_io")
    for act in bpy.data.actions:
        keys = {}
        for fc in aio.action_fcurves(act):
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            keys[f"{fc.data_path}[{fc.array_index}]"] = co.tobytes().hex()
        snap["actions"][act.name] = keys
    for o in bpy.data.objects:
        if o.type == 'ARMATURE' and o.get("dposer_ghost_of") is None:
            snap["pose"][o.name] = np.round([tuple(pb.rotation_quaternion) for pb in o.pose.bones], 6).tolist()
            ad = o.animation_data
            snap["nla"][o.name] = ([(t.name, t.mute, [s.action.name if s.action else None for s in t.strips])
                                    for t in ad.nla_tracks] if ad else [],
                                   ad.action.name if ad and ad.action else None)
            snap["props"][o.name] = sorted(k for k in o.keys())
    return snap


def diff(a: dict, b: dict) -> str:
    out = []
    for k in a:
        if a[k] != b.get(k):
            if isinstance(a[k], dict):
                ks = [kk for kk in set(a[k]) | set(b.get(k, {})) if a[k].get(kk) != b.get(k, {}).get(kk)]
                out.append(f"{k}: {sorted(ks)[:5]}")
            else:
                out.append(f"{k}: {a[k]!r} != {b.get(k)!r}"[:200])
    return "; ".join(out) or "same"


def undo_check(name: str, before: dict):
    """One Ctrl+Z brings back ``before`` exactly; Ctrl+Shift+Z brings the operation's result back."""
    after = snapshot()
    if after == before:
        check(f"undo: {name}", False, "the operation changed nothing, so there is nothing to undo")
        return
    key("ctrl+z")
    yield 1.0
    undone = snapshot()
    ok = undone == before
    detail = "one Ctrl+Z restored the scene" if ok else "after one Ctrl+Z: " + diff(before, undone)
    key("ctrl+shift+z")
    yield 1.0
    redone = snapshot()
    ok2 = redone == after
    check(f"undo: {name}", ok and ok2, detail + ("" if ok2 else "; redo differs: " + diff(after, redone)))


# ----------------------------------------------------------------------------------------- the scenario

def scenario():
    runtime = ext("runtime")
    aio = ext("action_io")
    instrument_modal()
    pc = ext("pose_convert")
    out = ARGS.out
    win, area, region = view3d()
    space = area.spaces.active
    space.show_region_ui = True
    space.shading.type = 'SOLID'
    yield 0.5
    # Blender takes keyboard input once the window has had a click: click the status bar (a no-op there)
    xdo("mousemove", "960", str(SCREEN_H - 6), "click", "1")
    yield 0.5
    # an empty stage (the default cube would hide the ghosts in the screenshots)
    for name in ("Cube",):
        if name in bpy.data.objects:
            bpy.data.objects.remove(bpy.data.objects[name], do_unlink=True)
    bpy.ops.ed.undo_push(message="driver: empty stage")
    # the event loop's own baseline: 3 s with nothing happening (no driver work, no operation)
    HB.baseline_from = time.monotonic()
    yield 3.0
    HB.baseline = HB.idle_probe
    # what one full window redraw costs here (software GL): the floor for any gap that has a redraw in it
    win, area, region = view3d()
    with bpy.context.temp_override(window=win, area=area, region=region):
        t0 = time.monotonic()
        bpy.ops.wm.redraw_timer(type='DRAW_WIN_SWAP', iterations=3)
        HB.redraw_s = (time.monotonic() - t0) / 3
    log(f"one full window redraw: {HB.redraw_s:.3f} s")
    HB.idle_from = time.monotonic()
    # the sidebar's DPoser tab: click down the tab strip at the sidebar's right edge until it is active
    ui = next(r for r in area.regions if r.type == 'UI')
    top = SCREEN_H - (ui.y + ui.height)
    for dy in range(12, 400, 14):
        if ui.active_panel_category == "DPoser":
            break
        xdo("mousemove", str(ui.x + ui.width - 9), str(top + dy), "click", "1")
        yield 0.25
    log(f"sidebar tab: {ui.active_panel_category}")

    # --- install: enabled from the zip, nothing outside its package in sys.modules, no policy warning
    enabled = PKG in bpy.context.preferences.addons
    ext_dir = os.path.dirname(ext().__file__)
    foreign = [n for n, m in list(sys.modules.items())
               if getattr(m, "__file__", None) and os.path.abspath(m.__file__).startswith(ext_dir + os.sep)
               and not (n == PKG or n.startswith(PKG + "."))]
    inst = open(ARGS.install_log).read() if ARGS.install_log and os.path.exists(ARGS.install_log) else ""
    check("install", enabled and not foreign and "policy" not in inst.lower(),
          f"enabled={enabled}, modules outside the package: {foreign}, install log: {inst.strip()[-200:]!r}")

    # --- preferences: point at the backend venv, press Test
    prefs = bpy.context.preferences.addons[PKG].preferences
    prefs.backend_python = ARGS.backend_python
    n0 = len(reports())
    invoke("dposer.backend_test")
    yield from wait_for(lambda: runtime.status()[0] in ("READY", "ERROR"), 240, "the backend to start")
    st, text = runtime.status()
    new = last_report_since(n0)
    check("preferences Test", st == "READY" and "torch" in text,
          f"status {st}: {text}; reports: {new}")
    # the preferences window, for a screenshot
    bpy.ops.screen.userpref_show('INVOKE_DEFAULT')
    yield 1.0
    bpy.context.preferences.active_section = 'ADDONS'
    try:
        wm = bpy.context.window_manager
        wm.addon_search = "DPoser"
        bpy.ops.preferences.addon_expand(module=PKG)
    except Exception as ex:  # noqa: BLE001
        log(f"expanding the preferences failed: {ex}")
    yield 1.5
    screenshot("preferences")
    pwin = bpy.context.window_manager.windows[-1]
    if pwin != window():
        with bpy.context.temp_override(window=pwin):
            bpy.ops.wm.window_close()
    yield 0.5

    # --- Add SMPL Armature
    before = snapshot()
    invoke("dposer.add_smpl_armature")
    yield 0.5
    obj = bpy.context.view_layer.objects.active
    ok, why = pc.check_smpl_armature(obj)
    names = [b.name for b in obj.data.bones] if obj is not None and obj.type == 'ARMATURE' else []
    check("Add SMPL Armature", ok and len(names) == 24, f"{obj.name if obj else None}: {len(names)} bones, {why}")
    yield from undo_check("Add SMPL Armature", before)
    char = bpy.context.view_layer.objects.active.name
    with bpy.context.temp_override(window=win, area=area, region=region):
        bpy.ops.view3d.view_selected()
    yield 0.5

    # --- Sample -> ghosts
    before = snapshot()
    HB.current = "Sample"
    invoke("dposer.sample", n=6, seed=3)
    yield 0.3
    yield from wait_idle()
    ghosts = ext("operators.sample").ghosts_of(bpy.data.objects[char])
    check("Sample", len(ghosts) == 6, f"{len(ghosts)} ghosts of {char}")
    yield from undo_check("Sample", before)
    ghosts = ext("operators.sample").ghosts_of(bpy.data.objects[char])
    # frame the character and its ghosts
    for o in bpy.context.view_layer.objects:
        o.select_set(bool(o.name == char or o.get("dposer_ghost_of") == char
                          or (o.parent and o.parent.get("dposer_ghost_of") == char)))
    with bpy.context.temp_override(window=win, area=area, region=region):
        bpy.ops.view3d.view_axis(type='FRONT')
        bpy.ops.view3d.view_selected()
        bpy.ops.view3d.zoom(delta=1)
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    bpy.context.view_layer.objects.active = bpy.data.objects[char]
    bpy.data.objects[char].select_set(True)
    yield 1.0
    yield from settle()
    screenshot("ghosts")

    # --- click a ghost (xdotool, a real click in the viewport)
    before = snapshot()
    g = ghosts[1]
    win, area, region = view3d()
    rv3d = area.spaces.active.region_3d
    target = g.get("dposer_click_point")
    co = g.matrix_world @ __import__("mathutils").Vector(target) if target else g.matrix_world.translation
    p = view3d_utils.location_3d_to_region_2d(region, rv3d, co)
    if p is None:
        check("click a ghost", False, "the ghost is not in view")
    else:
        x, y = int(region.x + p.x), int(SCREEN_H - (region.y + p.y))
        xdo("mousemove", str(x), str(y))
        yield 0.3
        xdo("click", "1")
        yield 1.0
        active = bpy.context.view_layer.objects.active
        picked = ext("operators.sample").ghost_of(active)
        body, _, _ = pc.read_smpl_pose(bpy.data.objects[char])
        untouched = snapshot()["pose"][char] == before["pose"][char]
        check("click a ghost", picked is not None and picked.name == g.name and untouched,
              f"active={active.name if active else None} -> picked {picked.name if picked else None} "
              f"(wanted {g.name}); character untouched: {untouched}")
        yield from undo_check("click a ghost", before)
    yield from settle()
    screenshot("ghost_clicked")

    # --- Apply & Key (the picked ghost, as the panel's button does)
    before = snapshot()
    bpy.context.scene.frame_set(1)
    bpy.ops.ed.undo_push(message="driver: frame 1")
    before = snapshot()
    picked = ext("operators.sample").ghost_of(bpy.context.view_layer.objects.active)
    gpose = np.array(picked["dposer_pose"]).reshape(21, 3) if picked is not None else None
    invoke("dposer.apply_candidate", index=-1, key=True)
    yield 0.5
    ob = bpy.data.objects[char]
    keyed = ob.animation_data is not None and ob.animation_data.action is not None and \
        1.0 in set(aio.keyed_frames(ob.animation_data.action, ob).tolist())
    left = ext("operators.sample").ghosts_of(ob)
    body, _, _ = pc.read_smpl_pose(ob)
    err = float(np.abs(pc.axis_angle_to_matrix(body) - pc.axis_angle_to_matrix(gpose)).max()) if gpose is not None else 9.0
    check("Apply & Key", keyed and not left and err < 1e-4,
          f"keyed at 1: {keyed}, ghosts left: {len(left)}, |R(pose) - R(picked ghost)| = {err:.1e}")
    yield from undo_check("Apply & Key", before)

    # --- Variations
    bpy.context.view_layer.objects.active = bpy.data.objects[char]
    before = snapshot()
    HB.current = "Variations"
    invoke("dposer.variations", n=4, seed=1)
    yield 0.3
    yield from wait_idle()
    ghosts = ext("operators.sample").ghosts_of(bpy.data.objects[char])
    check("Variations", len(ghosts) == 4, f"{len(ghosts)} variation ghosts")
    yield from undo_check("Variations", before)
    bpy.context.view_layer.objects.active = bpy.data.objects[char]
    invoke("dposer.clear_candidates")
    yield 0.3

    # --- In-between two keys on the character: keys at 1 and 25
    ob = bpy.data.objects[char]
    rng = np.random.default_rng(0)
    aio.key_smpl_pose(ob, 25, rng.normal(0, 0.25, 63))
    bpy.context.scene.frame_set(12)
    bpy.ops.ed.undo_push(message="driver: keys for the in-between")
    act = ob.animation_data.action
    keys_before = {k: v for k, v in snapshot()["actions"][act.name].items()}
    before = snapshot()
    HB.current = "In-between"
    invoke("dposer.inbetween")
    yield 0.3
    yield from wait_idle()
    ob = bpy.data.objects[char]
    frames = aio.keyed_frames(ob.animation_data.action, ob)
    m = aio.read_smpl_motion(ob)
    # the keys at 1 and 25 stay bit-exact
    kept = True
    for fc in aio.action_fcurves(ob.animation_data.action, ob):
        co = np.empty(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        old = np.frombuffer(bytes.fromhex(keys_before.get(f"{fc.data_path}[{fc.array_index}]", "")), np.float32)
        if old.size:
            o2 = old.reshape(-1, 2)
            n2 = co.reshape(-1, 2)
            for f, v in o2:
                hit = n2[n2[:, 0] == f]
                kept &= bool(hit.size and hit[0, 1] == v)
    check("In-between", len(frames) == 25 and kept and np.all(np.isfinite(m["body_pose"])),
          f"{len(frames)} keyed frames (1..25), keys bit-exact: {kept}")
    yield from undo_check("In-between", before)

    # --- Complete -> flip -> Apply (upper body selected and kept)
    ob = bpy.data.objects[char]
    bpy.context.view_layer.objects.active = ob
    rig = pc.SMPLRig.from_armature(ob)
    keep_names = [rig.bone_names[j] for j in (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21)]
    with bpy.context.temp_override(window=win, area=area, region=region, active_object=ob):
        bpy.ops.object.mode_set(mode='POSE')
    for b in ob.data.bones:
        b.select = b.name in keep_names
    bpy.ops.ed.undo_push(message="driver: select the upper body")
    kept_q = {n: tuple(ob.pose.bones[n].rotation_quaternion) for n in keep_names}
    before = snapshot()
    HB.current = "Complete"
    invoke("dposer.complete", hypotheses=5)
    yield 0.3
    yield from wait_idle()
    ob = bpy.data.objects[char]
    h = ob.get("dposer_complete")
    same = all(tuple(ob.pose.bones[n].rotation_quaternion) == kept_q[n] for n in keep_names)
    count = int(h["count"]) if h is not None else 0
    check("Complete", count == 5 and same, f"{count} hypotheses, selected bones unchanged: {same}")
    yield from undo_check("Complete", before)
    # frame the character, scroll the sidebar to the hypotheses, and take the screenshot
    with bpy.context.temp_override(window=win, area=area, region=region):
        bpy.ops.view3d.view_selected()  # the kept (selected) upper body, and the filled legs below it
        bpy.ops.view3d.zoom(delta=-2)
    ui = next(r for r in area.regions if r.type == 'UI')
    with bpy.context.temp_override(window=win, area=area, region=ui):
        bpy.ops.view2d.scroll_down(page=True)
    yield 1.0
    yield from settle()
    screenshot("completion")
    with bpy.context.temp_override(window=win, area=area, region=ui):
        bpy.ops.view2d.scroll_up(page=True)
    ob = bpy.data.objects[char]
    before = snapshot()
    q0 = quats_of(char)
    invoke("dposer.complete_flip", direction=1)
    yield 0.5
    ob = bpy.data.objects[char]
    idx = int(ob["dposer_complete"]["index"]) if ob.get("dposer_complete") is not None else -1
    moved = float(np.abs(quats_of(char) - q0).max())
    same = all(tuple(ob.pose.bones[n].rotation_quaternion) == kept_q[n] for n in keep_names)
    check("Complete flip", idx == 1 and moved > 1e-4 and same,
          f"index {idx}, free bones moved by {moved:.3f}, kept bones unchanged: {same}")
    yield from undo_check("Complete flip", before)
    before = snapshot()
    bpy.context.scene.frame_set(40)
    bpy.ops.ed.undo_push(message="driver: frame 40")
    before = snapshot()
    invoke("dposer.complete_apply")
    yield 0.5
    ob = bpy.data.objects[char]
    keyed = 40.0 in set(aio.keyed_frames(ob.animation_data.action, ob).tolist())
    check("Complete apply", keyed and ob.get("dposer_complete") is None, f"keyed at 40: {keyed}")
    yield from undo_check("Complete apply", before)
    with bpy.context.temp_override(window=win, area=area, region=region, active_object=bpy.data.objects[char]):
        bpy.ops.object.mode_set(mode='OBJECT')
    yield 0.3

    # --- Pose from Image: file browser (images only) -> the fits, the photo beside the character
    photo = ext("operators.photo")
    ob = bpy.data.objects[char]
    bpy.context.view_layer.objects.active = ob
    ok_feature, msg = photo.feature_state()
    bpy.ops.ed.undo_push(message="driver: character active")
    before = snapshot()
    HB.current = "Pose from Image"
    invoke("dposer.pose_from_image")
    yield 1.5
    pic = os.path.join(ARGS.repo, "tests", "data", "photos", "mannequin_front.png")
    opened = yield from choose_in_file_browser(pic)
    yield from wait_idle(300)
    ob = bpy.data.objects[char]
    h = photo.hypotheses(ob)
    emp = bpy.data.objects.get(f"{char} photo")
    check("Pose from Image", ok_feature is True and opened and h is not None and h["count"] == 4
          and emp is not None and emp.data is not None,
          f"feature {ok_feature} {msg!r}; file browser {opened}; fits {h['count'] if h else 0}; "
          f"photo empty {emp.name if emp else None}")
    if h is not None:
        for o in bpy.context.view_layer.objects:
            o.select_set(o.name in (char, f"{char} photo"))
        with bpy.context.temp_override(window=win, area=area, region=region):
            bpy.ops.view3d.view_axis(type='FRONT')
            bpy.ops.view3d.view_selected()
        for o in bpy.context.view_layer.objects:
            o.select_set(o.name == char)
        bpy.context.view_layer.objects.active = bpy.data.objects[char]
        yield from settle()
        screenshot("photo_fit")
    yield from undo_check("Pose from Image", before)
    if photo.hypotheses(bpy.data.objects[char]) is not None:
        bpy.context.view_layer.objects.active = bpy.data.objects[char]
        before = snapshot()
        invoke("dposer.photo_flip", direction=1)
        yield 0.5
        idx = photo.hypotheses(bpy.data.objects[char])["index"]
        invoke("dposer.photo_apply")
        yield 0.5
        ob = bpy.data.objects[char]
        frame = bpy.context.scene.frame_current
        keyed = float(frame) in set(aio.keyed_frames(ob.animation_data.action, ob).tolist())
        check("Pose from Image flip + apply", idx == 1 and keyed and ob.get(photo.PROP) is None,
              f"flipped to {idx + 1}, keyed at {frame}: {keyed}")

    # --- Plausibility on the character's action
    before = snapshot()
    bpy.context.view_layer.objects.active = bpy.data.objects[char]
    HB.current = "Plausibility"
    invoke("dposer.plausibility")
    yield 0.3
    yield from wait_idle()
    ob = bpy.data.objects[char]
    fcs = [fc for fc in aio.action_fcurves(ob.animation_data.action, ob) if "dposer_plausibility" in fc.data_path]
    n_pts = len(fcs[0].keyframe_points) if fcs else 0
    check("Plausibility", n_pts >= 25, f"plausibility F-curve with {n_pts} points")
    yield from undo_check("Plausibility", before)

    # --- Import BVH through the file browser (the Import button's path)
    bvh = os.path.join(ARGS.repo, "tests", "data", "cmu_daz_07_01_walk.bvh")
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    bpy.context.view_layer.objects.active = None
    bpy.ops.ed.undo_push(message="driver: deselect all")
    before = snapshot()
    HB.current = "Import BVH"
    invoke("dposer.import_motion")
    yield 1.5
    opened = yield from choose_in_file_browser(bvh, shot="import_file_browser")
    if not opened:
        check("Import BVH (file browser)", False, "no file browser opened")
    else:
        yield from wait_idle()
        yield 0.5
        walkers = [o for o in bpy.data.objects if o.animation_data and o.animation_data.action
                   and o.animation_data.action.name.startswith("cmu_daz_07_01_walk")]
        n = len(aio.keyed_frames(walkers[0].animation_data.action, walkers[0])) if walkers else 0
        fps = bpy.context.scene.render.fps / bpy.context.scene.render.fps_base
        head = open(bvh).read(20000)
        n_src = int(head.split("Frames:")[1].split()[0])
        src_fps = round(1.0 / float(head.split("Frame Time:")[1].split()[0]))
        # the first frame (the conversion's T-pose) is dropped; the rest covers (n_src - 2) / src_fps seconds
        want = int(np.floor((n_src - 2) / src_fps * fps + 1e-6)) + 1
        check("Import BVH (file browser)", abs(n - want) <= 1,
              f"{len(walkers)} armature(s) with the walk, {n} frames (want {want} at {fps:g} fps)")
        yield from undo_check("Import BVH", before)

    # --- Import AMASS (a file in the real AMASS layout, written here)
    amass = os.path.join(out, "amass_walk_poses.npz")
    T = 120
    t = np.linspace(0, 2 * np.pi, T)
    poses = np.zeros((T, 156), np.float32)
    poses[:, 0] = np.pi / 2  # Z-up root, as AMASS stores it
    poses[:, 3 + 0] = 0.4 * np.sin(t)  # left hip swings
    poses[:, 6 + 0] = -0.4 * np.sin(t)
    poses[:, 12 + 0] = 0.6 * np.clip(np.sin(t), 0, None)  # knees
    poses[:, 15 + 0] = 0.6 * np.clip(-np.sin(t), 0, None)
    trans = np.stack([np.zeros(T), np.linspace(0, 2, T), 0.9 + 0.01 * np.sin(2 * t)], 1).astype(np.float32)
    np.savez(amass, poses=poses, trans=trans, betas=np.zeros(16, np.float32), gender="neutral",
             mocap_framerate=np.float64(60.0))
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    bpy.context.view_layer.objects.active = None
    bpy.ops.ed.undo_push(message="driver: deselect all")
    before = snapshot()
    HB.current = "Import AMASS"
    invoke("dposer.import_motion", filepath=amass)
    yield 0.3
    yield from wait_idle()
    got = [o for o in bpy.data.objects if o.animation_data and o.animation_data.action
           and o.animation_data.action.name.startswith("amass_walk_poses")]
    n = len(aio.keyed_frames(got[0].animation_data.action, got[0])) if got else 0
    fps = bpy.context.scene.render.fps / bpy.context.scene.render.fps_base
    want = int(round(T / 60.0 * fps))
    check("Import AMASS", abs(n - want) <= 1, f"{len(got)} armature(s), {n} frames (120 @ 60 fps -> {want} @ {fps:g} fps)")
    yield from undo_check("Import AMASS", before)

    # --- Denoise the walk into a new action; the original kept in the NLA
    for o in bpy.context.view_layer.objects:
        own = o.parent if o.parent is not None else o
        act = own.animation_data.action if own.animation_data else None
        if o.type in ('ARMATURE', 'MESH') and not (act and act.name.startswith("cmu_daz_07_01_walk")):
            o.hide_set(True)
    bpy.ops.ed.undo_push(message="driver: show the walker alone")
    walker = next(o for o in bpy.data.objects if o.animation_data and o.animation_data.action
                  and o.animation_data.action.name.startswith("cmu_daz_07_01_walk"))
    wname, src_action = walker.name, walker.animation_data.action.name
    for o in bpy.context.view_layer.objects:
        o.select_set(o.name == wname)
    bpy.context.view_layer.objects.active = walker
    bpy.context.scene.frame_set(30)
    bpy.ops.ed.undo_push(message="driver: select the walker")
    before = snapshot()
    HB.current = "Denoise"
    invoke("dposer.denoise")
    for _ in range(3):  # let the sidebar lay out its progress box, then show it (if still running)
        redraw_all()
        yield 0.3
    if runtime.progress() is not None:
        screenshot("denoise_progress")
    yield from wait_idle()
    walker = bpy.data.objects[wname]
    ad = walker.animation_data
    new_act = ad.action.name if ad and ad.action else None
    tracks = [(t.name, t.mute, [s.action.name for s in t.strips if s.action]) for t in ad.nla_tracks] if ad else []
    kept_orig = any(src_action in names for _, _, names in tracks) and src_action in bpy.data.actions
    check("Denoise", new_act is not None and new_act != src_action and new_act.endswith("_dposer") and kept_orig,
          f"active action {new_act!r}, NLA tracks {tracks}")
    yield from undo_check("Denoise", before)
    # the NLA editor, for a screenshot
    # the NLA, in the big viewport area for the screenshot: the muted "DPoser original" track under the new action
    win, area, region = view3d()
    area.ui_type = 'NLA_EDITOR'
    yield 1.0
    nla_region = next(r for r in area.regions if r.type == 'WINDOW')
    with bpy.context.temp_override(window=win, area=area, region=nla_region):
        bpy.ops.nla.view_all()
    yield from settle()
    screenshot("nla_original_kept")
    area.ui_type = 'VIEW_3D'
    yield 1.0

    # --- Esc during Denoise: nothing changes
    bpy.context.view_layer.objects.active = bpy.data.objects[wname]
    before = snapshot()
    n0 = len(reports())
    invoke("dposer.denoise", noise='MM', noise_mm=60.0)
    yield 0.2
    key("Escape")
    yield 0.5
    yield from wait_idle(30)
    after = snapshot()
    new = last_report_since(n0)
    check("Esc during Denoise", after == before and any("cancelled" in m.lower() for _, m in new),
          ("scene unchanged" if after == before else diff(before, after)) + f"; reports {new}")

    # --- kill -9 the backend mid-denoise: a report, the next call works
    before = snapshot()
    n0 = len(reports())
    invoke("dposer.denoise", noise='MM', noise_mm=60.0)
    yield 0.2
    pid = runtime.current_client().pid
    if pid:
        os.kill(pid, 9)
    yield from wait_idle(60)
    new = last_report_since(n0)
    err = [m for _, m in new if "backend" in m.lower() and any(w in m.lower() for w in ("crash", "killed", "exited"))]
    unchanged = snapshot() == before
    bpy.context.view_layer.objects.active = bpy.data.objects[wname]
    HB.current = "Sample after crash"
    invoke("dposer.sample", n=2, seed=0)
    yield 0.3
    yield from wait_idle(240)
    ghosts = ext("operators.sample").ghosts_of(bpy.data.objects[wname])
    check("dead backend", bool(pid) and bool(err) and unchanged and len(ghosts) == 2,
          f"killed pid {pid}; crash reports {err} (all: {new}); scene unchanged {unchanged}; "
          f"next sample gave {len(ghosts)} ghosts")
    invoke("dposer.clear_candidates")
    yield 0.3

    # --- Stop Backend always clears a busy state
    invoke("dposer.sample", n=64, sampler="em", steps=3000)
    yield 0.5
    busy = runtime.progress() is not None
    invoke("dposer.backend_stop")
    yield 0.6
    check("Stop Backend clears busy", busy and runtime.progress() is None,
          f"busy before stop: {busy}, after: {runtime.progress() is not None}")
    yield from wait_for(lambda: True, 1)
    HB.current = None


def finish(error: str | None = None) -> None:
    if error:
        check("driver", False, error)
    try:
        runtime = ext("runtime")
        runtime.close()
        ext_dir = os.path.dirname(ext().__file__)
        pyc = [os.path.relpath(os.path.join(d, f), ext_dir) for d, _, fs in os.walk(ext_dir) for f in fs
               if f.endswith(".pyc")]
        # Blender's importer compiles the package's own __init__ before any of its code runs (as for every
        # extension); everything the extension imports itself, and the backend, writes no bytecode
        ours = [p for p in pyc if not (p.startswith("__pycache__" + os.sep + "__init__.") and p.count(os.sep) == 1)]
        check("nothing written in the extension folder", not ours,
              f"{len(ours)} .pyc files written by the extension or its backend: {ours[:5]} "
              f"(Blender's own import of __init__: {len(pyc) - len(ours)})")
    except Exception as ex:  # noqa: BLE001
        check("nothing written in the extension folder", False, f"could not check: {ex}")
    gaps = {k: round(v, 3) for k, v in HB.gaps.items()}
    worst = max(gaps.values()) if gaps else None
    RESULTS["_heartbeat"] = {"ok": worst is not None and worst < 0.5,
                             "detail": f"largest gap per operation: {gaps}; largest idle gap {HB.idle:.3f} s",
                             "max_gap_s": worst, "gaps": gaps, "idle_max_gap_s": round(HB.idle, 3),
                             "quiet_baseline_max_gap_s": round(HB.baseline or 0.0, 3),
                             "full_window_redraw_s": round(getattr(HB, "redraw_s", 0.0), 3),
                             "extension_tick_max_s": {k: round(v, 3) for k, v in EXT_TIME.items()}}
    RESULTS["_screenshots"] = {"ok": True, "detail": ", ".join(os.path.basename(s) for s in SHOTS)}
    with open(os.path.join(ARGS.out, "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)
    log(f"heartbeat: {gaps}; idle {HB.idle:.3f} s; quiet baseline {HB.baseline or 0.0:.3f} s; "
        f"the extension's longest modal tick per operation: "
        f"{ {k: round(v, 3) for k, v in EXT_TIME.items()} }")
    log("done")
    bpy.ops.wm.quit_blender()


_GEN = None


def step() -> float | None:
    global _GEN
    try:
        if _GEN is None:
            _GEN = scenario()
        delay = next(_GEN)
        HB.last = max(HB.last, time.monotonic())  # the driver's own work (screenshots, checks) is not a gap
        return float(delay)
    except StopIteration:
        finish()
        return None
    except Exception:  # noqa: BLE001 - recorded as a failed check, then Blender quits
        finish("driver error: " + traceback.format_exc().replace("Traceback", "Driver exception"))
        return None


def start() -> None:
    os.makedirs(ARGS.out, exist_ok=True)
    bpy.app.timers.register(HB.tick, first_interval=0.05, persistent=True)
    bpy.app.timers.register(step, first_interval=2.0, persistent=True)


start()
