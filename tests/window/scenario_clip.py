"""The window suite's scenario, part 2: Pose from Image, Plausibility, importing BVH and AMASS motion,
Denoise, and the failure paths (Esc, a killed backend, Stop Backend while busy)."""

from __future__ import annotations

import os

import bpy
import numpy as np

from window_common import (ARGS, HB, check, choose_in_file_browser, ext, invoke, key, last_report_since, redraw_all,
                           reports, screenshot, settle, view3d, wait_for, wait_idle)
from window_scene import diff, snapshot, undo_check


def deselect_all() -> dict:
    """Nothing selected or active (an undo step), so an import adds its own armature; the snapshot after it."""
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    bpy.context.view_layer.objects.active = None
    bpy.ops.ed.undo_push(message="driver: deselect all")
    return snapshot()


def photo(char: str):
    """Pose from Image through the file browser, flip + apply; then Plausibility of the character's action."""
    fcurves = ext("blender.fcurves")
    win, area, region = view3d()
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
        keyed = float(frame) in set(fcurves.keyed_frames(ob.animation_data.action, ob).tolist())
        check("Pose from Image flip + apply", idx == 1 and keyed and ob.get(photo.PROP) is None,
              f"flipped to {idx + 1}, keyed at {frame}: {keyed}")

    # --- Plausibility on the character's action
    # Baseline = the pose as the action evaluates it (what Ctrl+Z restores), not as Apply wrote it
    # (one run in five failed here with a pose difference; unconfirmed cause).
    bpy.context.scene.frame_set(bpy.context.scene.frame_current)
    before = snapshot()
    bpy.context.view_layer.objects.active = bpy.data.objects[char]
    HB.current = "Plausibility"
    invoke("dposer.plausibility")
    yield 0.3
    yield from wait_idle()
    ob = bpy.data.objects[char]
    fcs = [fc for fc in fcurves.action_fcurves(ob.animation_data.action, ob) if "dposer_plausibility" in fc.data_path]
    n_pts = len(fcs[0].keyframe_points) if fcs else 0
    check("Plausibility", n_pts >= 25, f"plausibility F-curve with {n_pts} points")
    yield from undo_check("Plausibility", before)


def motion():
    """Import BVH (file browser) and AMASS, Denoise (original kept in the NLA), Esc, kill -9, Stop Backend."""
    runtime = ext("runtime")
    fcurves = ext("blender.fcurves")
    out = ARGS.out
    # --- Import BVH through the file browser (the Import button's path)
    bvh = os.path.join(ARGS.repo, "tests", "data", "cmu_daz_07_01_walk.bvh")
    before = deselect_all()
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
        n = len(fcurves.keyed_frames(walkers[0].animation_data.action, walkers[0])) if walkers else 0
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
    before = deselect_all()
    HB.current = "Import AMASS"
    invoke("dposer.import_motion", filepath=amass)
    yield 0.3
    yield from wait_idle()
    got = [o for o in bpy.data.objects if o.animation_data and o.animation_data.action
           and o.animation_data.action.name.startswith("amass_walk_poses")]
    n = len(fcurves.keyed_frames(got[0].animation_data.action, got[0])) if got else 0
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
    ghosts = ext("blender.ghosts").ghosts_of(bpy.data.objects[wname])
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
