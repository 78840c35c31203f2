"""The window suite's scenario, part 1: the stage, install and preferences, then posing a character
(Add SMPL Armature, Sample, a click on a ghost, Apply & Key, Variations, In-between, Complete).

Each part is a generator stepped by ``driver.py``'s timer: it yields the seconds to wait for Blender's
event loop, and records its checks with ``window_common.check``.
"""

from __future__ import annotations

import os
import sys
import time

import bpy
import mathutils
import numpy as np
from bpy_extras import view3d_utils

from window_common import (ARGS, HB, PKG, SCREEN_H, check, ext, instrument_modal, invoke, last_report_since, log,
                           reports, screenshot, settle, view3d, wait_for, wait_idle, window, xdo)
from window_scene import quats_of, snapshot, undo_check


def setup():
    """An empty stage, the event loop's baseline, the DPoser tab; the install and the preferences' Test."""
    runtime = ext("runtime")
    instrument_modal()
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


def run_for_ghosts(char: str, name: str, op_path: str, want: int, what: str, **props):
    """Run a ghost-making operator (Sample, Variations) on ``char``: ``want`` ghosts, one Ctrl+Z undoes it."""
    before = snapshot()
    HB.current = name
    invoke(op_path, **props)
    yield 0.3
    yield from wait_idle()
    ghosts = ext("blender.ghosts").ghosts_of(bpy.data.objects[char])
    check(name, len(ghosts) == want, f"{len(ghosts)} {what}")
    yield from undo_check(name, before)


def pose():
    """Add SMPL Armature, Sample, click a ghost, Apply & Key, Variations, In-between; returns the character."""
    fcurves, actions = ext("blender.fcurves"), ext("blender.actions")
    smpl_rig, rot = ext("blender.rig"), ext("dposer_core.rotations_np")
    win, area, region = view3d()
    # --- Add SMPL Armature
    before = snapshot()
    invoke("dposer.add_smpl_armature")
    yield 0.5
    obj = bpy.context.view_layer.objects.active
    ok, why = smpl_rig.check_smpl_armature(obj)
    names = [b.name for b in obj.data.bones] if obj is not None and obj.type == 'ARMATURE' else []
    check("Add SMPL Armature", ok and len(names) == 24, f"{obj.name if obj else None}: {len(names)} bones, {why}")
    yield from undo_check("Add SMPL Armature", before)
    char = bpy.context.view_layer.objects.active.name
    with bpy.context.temp_override(window=win, area=area, region=region):
        bpy.ops.view3d.view_selected()
    yield 0.5

    # --- Sample -> ghosts
    yield from run_for_ghosts(char, "Sample", "dposer.sample", 6, f"ghosts of {char}", n=6, seed=3)
    ghosts = ext("blender.ghosts").ghosts_of(bpy.data.objects[char])
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
    co = g.matrix_world @ mathutils.Vector(target) if target else g.matrix_world.translation
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
        picked = ext("blender.ghosts").ghost_of(active)
        body, _, _ = smpl_rig.read_smpl_pose(bpy.data.objects[char])
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
    picked = ext("blender.ghosts").ghost_of(bpy.context.view_layer.objects.active)
    gpose = np.array(picked["dposer_pose"]).reshape(21, 3) if picked is not None else None
    invoke("dposer.apply_candidate", index=-1, key=True)
    yield 0.5
    ob = bpy.data.objects[char]
    keyed = ob.animation_data is not None and ob.animation_data.action is not None and \
        1.0 in set(fcurves.keyed_frames(ob.animation_data.action, ob).tolist())
    left = ext("blender.ghosts").ghosts_of(ob)
    body, _, _ = smpl_rig.read_smpl_pose(ob)
    err = float(np.abs(rot.axis_angle_to_matrix(body) - rot.axis_angle_to_matrix(gpose)).max()) if gpose is not None else 9.0
    check("Apply & Key", keyed and not left and err < 1e-4,
          f"keyed at 1: {keyed}, ghosts left: {len(left)}, |R(pose) - R(picked ghost)| = {err:.1e}")
    yield from undo_check("Apply & Key", before)

    # --- Variations
    bpy.context.view_layer.objects.active = bpy.data.objects[char]
    yield from run_for_ghosts(char, "Variations", "dposer.variations", 4, "variation ghosts", n=4, seed=1)
    bpy.context.view_layer.objects.active = bpy.data.objects[char]
    invoke("dposer.clear_candidates")
    yield 0.3

    # --- In-between two keys on the character: keys at 1 and 25
    ob = bpy.data.objects[char]
    rng = np.random.default_rng(0)
    actions.key_smpl_pose(ob, 25, rng.normal(0, 0.25, 63))
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
    frames = fcurves.keyed_frames(ob.animation_data.action, ob)
    m = actions.read_smpl_motion(ob)
    # the keys at 1 and 25 stay bit-exact
    kept = True
    for fc in fcurves.action_fcurves(ob.animation_data.action, ob):
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
    return char


def complete(char: str):
    """Complete with the upper body selected (kept), flip, apply."""
    fcurves, smpl_rig = ext("blender.fcurves"), ext("blender.rig")
    win, area, region = view3d()
    # --- Complete -> flip -> Apply (upper body selected and kept)
    ob = bpy.data.objects[char]
    bpy.context.view_layer.objects.active = ob
    rig = smpl_rig.SMPLRig.from_armature(ob)
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
    keyed = 40.0 in set(fcurves.keyed_frames(ob.animation_data.action, ob).tolist())
    check("Complete apply", keyed and ob.get("dposer_complete") is None, f"keyed at 40: {keyed}")
    yield from undo_check("Complete apply", before)
    with bpy.context.temp_override(window=win, area=area, region=region, active_object=bpy.data.objects[char]):
        bpy.ops.object.mode_set(mode='OBJECT')
    yield 0.3
