"""The ``dposer.*`` operators against the real backend (CPU; shipped weights or a tiny checkpoint).

In the bpy module ``bpy.app.background`` is True, so every operator runs blocking (``execute``) -
the same code path scripts use; the modal path only differs in how the request is waited for.
Each test starts from an empty factory scene (conftest ``factory_scene``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import bpy
import numpy as np
import pytest

from dposer_blender import action_io as aio
from dposer_blender import armature, pose_convert as pc

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("dposer_addon")


# --------------------------------------------------------------------------- helpers

def smpl(mannequin: bool = False) -> bpy.types.Object:
    obj = armature.create_smpl_armature(mannequin=mannequin)
    bpy.context.view_layer.objects.active = obj
    return obj


def random_motion(T: int, seed: int = 0, scale: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    body = rng.normal(0, scale, (T, 63))
    root = rng.normal(0, 0.2, (T, 3))
    trans = rng.normal(0, 0.1, (T, 3))
    return body, root, trans


def fcurve_dump(obj: bpy.types.Object, action: bpy.types.Action) -> dict:
    """(data_path, index) -> (frames f32, values f32, types int) for every F-curve."""
    out = {}
    for fc in aio.action_fcurves(action, obj):
        n = len(fc.keyframe_points)
        co = np.empty(2 * n, dtype=np.float32)
        ty = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("co", co)
        fc.keyframe_points.foreach_get("type", ty)
        out[(fc.data_path, fc.array_index)] = (co[0::2].copy(), co[1::2].copy(), ty)
    return out


def assert_same_rotations(a: np.ndarray, b: np.ndarray, atol: float = 1e-4) -> None:
    """Axis-angle arrays describe the same rotations (the tiny test prior gives angles beyond pi)."""
    np.testing.assert_allclose(pc.axis_angle_to_matrix(np.reshape(a, (-1, 3))),
                               pc.axis_angle_to_matrix(np.reshape(b, (-1, 3))), atol=atol)


def run(op, **kw):
    """Call ``bpy.ops.dposer.<op>``; returns the result set (raises RuntimeError with the report on errors)."""
    return getattr(bpy.ops.dposer, op)(**kw)


def operator_ids() -> list[str]:
    return sorted(n for n in dir(bpy.ops.dposer) if not n.startswith("_"))


# --------------------------------------------------------------------------- backend / armature

def test_backend_status_ready(dposer_addon) -> None:
    runtime = dposer_addon
    state, text = runtime.status()
    assert state == runtime.READY, text
    assert "cpu" in text and "torch" in text
    assert bpy.ops.dposer.backend_stop.poll()


def test_add_smpl_armature_operator() -> None:
    assert run("add_smpl_armature", body=True) == {'FINISHED'}
    obj = bpy.context.view_layer.objects.active
    assert obj.type == 'ARMATURE' and len(obj.data.bones) == 24
    assert pc.check_smpl_armature(obj)[0]
    assert any(o.type == 'MESH' and o.parent == obj for o in bpy.data.objects)


def test_all_operators_are_one_undo_step() -> None:
    ops = operator_ids()
    assert {"sample", "variations", "apply_candidate", "inbetween", "complete", "complete_apply", "denoise",
            "import_motion", "plausibility", "select_worst_frames", "add_smpl_armature"} <= set(ops)
    for name in ops:
        if name.startswith("backend_"):
            continue  # no scene change: not in the undo history
        cls = getattr(bpy.types, f"DPOSER_OT_{name}")
        assert {'REGISTER', 'UNDO'} <= set(cls.bl_options), name


# --------------------------------------------------------------------------- sample / variations

def test_sample_shows_ghosts_and_apply_and_key_keys_a_pose() -> None:
    obj = smpl()
    bpy.context.scene.frame_set(7)
    assert run("sample", n=4, steps=2, seed=3) == {'FINISHED'}
    ghosts = [o for o in bpy.data.objects if o.get("dposer_ghost_of") == obj.name]
    assert len(ghosts) == 4 and bpy.data.collections.get("DPoser Candidates") is not None
    # a row, best score first, each ghost a solid body with a number + score label
    ghosts.sort(key=lambda g: g["dposer_ghost_index"])
    xs = [g.location.x for g in ghosts]
    assert xs == sorted(xs) and len(set(round(x, 3) for x in xs)) == 4
    scores = [g["dposer_score"] for g in ghosts]
    assert scores == sorted(scores)
    for g in ghosts:
        parts = [o for o in bpy.data.objects if o.get("dposer_ghost_part") == g.name]
        assert {o.type for o in parts} == {'MESH', 'FONT'}, parts
        label = next(o for o in parts if o.type == 'FONT')
        assert label.data.body == f"{g['dposer_ghost_index'] + 1}  {g['dposer_score']:.2f}"
        assert all(o.hide_render for o in parts) and g.hide_render
    # neighbouring posed bodies do not overlap (evaluated mesh bounds along x)
    dg = bpy.context.evaluated_depsgraph_get()
    spans = []
    for g in ghosts:
        body = next(o for o in bpy.data.objects if o.get("dposer_ghost_part") == g.name and o.type == 'MESH')
        ev = body.evaluated_get(dg)
        me = ev.to_mesh()
        co = np.empty(3 * len(me.vertices))
        me.vertices.foreach_get("co", co)
        w = np.asarray(ev.matrix_world) @ np.c_[co.reshape(-1, 3), np.ones(len(me.vertices))].T
        spans.append((w[0].min(), w[0].max()))
        ev.to_mesh_clear()
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a1 < b0, (spans,)
    g2 = next(g for g in ghosts if g["dposer_ghost_index"] == 2)
    pose = np.array(g2["dposer_pose"], copy=True).reshape(21, 3)
    # the ghost shows its pose
    body, _, _ = pc.read_smpl_pose(g2)
    assert_same_rotations(body, pose)

    assert run("apply_candidate", index=2, key=True) == {'FINISHED'}
    assert not [o for o in bpy.data.objects if o.get("dposer_ghost_of") is not None]
    assert bpy.data.collections.get("DPoser Candidates") is None
    assert len(bpy.data.armatures) == 1  # the ghosts' armature data went too
    assert not [c for c in bpy.data.curves if c.users == 0] and not [m for m in bpy.data.meshes if m.users == 0]
    m = aio.read_smpl_motion(obj)
    assert np.array_equal(m["frames"], [7.0])
    assert_same_rotations(m["body_pose"][0], pose)


def test_a_clicked_ghost_body_is_the_picked_candidate() -> None:
    """A click selects the ghost's body (a mesh); Apply with index -1 applies the ghost it belongs to.
    (The click itself is Blender's selection; the real-window suite clicks with xdotool.)"""
    obj = smpl()
    run("sample", n=2, steps=2, seed=1)
    g = next(o for o in bpy.data.objects if o.get("dposer_ghost_index") == 1)
    body_part = next(o for o in bpy.data.objects if o.get("dposer_ghost_part") == g.name and o.type == 'MESH')
    before, _, _ = pc.read_smpl_pose(obj)
    bpy.context.view_layer.objects.active = body_part
    body, _, _ = pc.read_smpl_pose(obj)
    assert np.array_equal(body, before)  # picking does not touch the character
    assert run("apply_candidate", index=-1, key=False) == {'FINISHED'}
    body, _, _ = pc.read_smpl_pose(obj)
    assert_same_rotations(body, np.array(g["dposer_pose"], copy=True))
    assert run("clear_candidates") == {'FINISHED'}
    assert bpy.context.view_layer.objects.active == obj


def test_variations_from_current_pose() -> None:
    obj = smpl()
    body, root, _ = random_motion(1, seed=5, scale=0.2)
    pc.apply_smpl_pose(obj, body[0].reshape(21, 3), root[0])
    assert run("variations", n=3, steps=2, seed=0, strength=0.2) == {'FINISHED'}
    ghosts = [o for o in bpy.data.objects if o.get("dposer_ghost_of") == obj.name]
    assert len(ghosts) == 3


# --------------------------------------------------------------------------- in-between

def _keyed_pair(obj, a: int = 1, b: int = 11, seed: int = 0):
    body, root, trans = random_motion(2, seed)
    for f, i in ((a, 0), (b, 1)):
        aio.key_smpl_pose(obj, f, body[i], root[i], trans[i])
    return obj.animation_data.action


def test_inbetween_fills_frames_and_keeps_keys_bit_exact() -> None:
    obj = smpl()
    action = _keyed_pair(obj, 1, 11)
    before = fcurve_dump(obj, action)
    bpy.context.scene.frame_set(4)  # A, B default to the keys around it
    assert run("inbetween", steps=3, ease="ease_in_out", root="INTERPOLATE") == {'FINISHED'}
    after = fcurve_dump(obj, action)
    gen = aio.key_type_value(aio.generated_key_type())
    kf = aio.key_type_value("KEYFRAME")
    for key, (fr0, v0, t0) in before.items():
        fr1, v1, t1 = after[key]
        if "_hand" in key[0]:  # not in the body pose: left to Blender's interpolation
            assert np.array_equal(fr1, fr0) and np.array_equal(v1, v0)
            continue
        assert np.array_equal(fr1, np.arange(1, 12, dtype=np.float32)), key
        for f in (1.0, 11.0):
            i0, i1 = int(np.nonzero(fr0 == f)[0][0]), int(np.nonzero(fr1 == f)[0][0])
            assert v1[i1].tobytes() == v0[i0].tobytes(), (key, f)  # bit-exact
            assert t1[i1] == t0[i0] == kf
        assert np.all(t1[1:-1] == gen), key
    m = aio.read_smpl_motion(obj)
    assert len(m["frames"]) == 11 and np.all(np.isfinite(m["body_pose"]))


def test_inbetween_keep_root_and_explicit_frames() -> None:
    obj = smpl()
    action = _keyed_pair(obj, 5, 9, seed=2)
    pelvis = aio.ROT_PATH.format("pelvis")
    before = fcurve_dump(obj, action)
    assert run("inbetween", frame_a=5, frame_b=9, steps=2, root="KEEP") == {'FINISHED'}
    after = fcurve_dump(obj, action)
    for i in range(4):  # root untouched
        assert np.array_equal(after[(pelvis, i)][0], before[(pelvis, i)][0])
    assert np.array_equal(after[(aio.ROT_PATH.format("left_knee"), 0)][0], np.arange(5, 10, dtype=np.float32))


def test_inbetween_without_keys_reports() -> None:
    smpl()
    with pytest.raises(RuntimeError, match="no active action"):
        run("inbetween")


# --------------------------------------------------------------------------- complete

def _select_bone(obj, name: str, state: bool = True) -> None:
    pb = obj.pose.bones[name]
    if hasattr(pb, "select"):
        pb.select = state
    else:
        obj.data.bones[name].select = state


def test_complete_keeps_selected_and_locked_bones_bit_exact() -> None:
    obj = smpl()
    body, root, _ = random_motion(1, seed=9, scale=0.25)
    pc.apply_smpl_pose(obj, body[0].reshape(21, 3), root[0])
    for b in obj.data.bones:
        _select_bone(obj, b.name, False)
    selected = ["left_shoulder", "left_elbow", "spine2"]
    locked = ["right_knee", "neck"]
    for n in selected:
        _select_bone(obj, n)
    for n in locked:
        obj.pose.bones[n].lock_rotation = (True, True, True)
    kept = selected + locked
    q_before = {n: np.array(obj.pose.bones[n].rotation_quaternion, dtype=np.float32) for n in obj.pose.bones.keys()}

    assert run("complete", hypotheses=3, steps=10, seed=0) == {'FINISHED'}
    h = obj["dposer_complete"]
    assert int(h["count"]) == 3
    for n in kept:
        assert np.array(obj.pose.bones[n].rotation_quaternion, dtype=np.float32).tobytes() == q_before[n].tobytes(), n
    free = [n for n in pc.joint_names()[1:22] if n not in kept]
    assert any(not np.allclose(np.array(obj.pose.bones[n].rotation_quaternion), q_before[n], atol=1e-4) for n in free)

    assert run("complete_flip", direction=1) == {'FINISHED'}
    assert obj["dposer_complete"]["index"] == 1
    shown = {n: np.array(obj.pose.bones[n].rotation_quaternion, dtype=np.float32) for n in free}
    bpy.context.scene.frame_set(3)
    assert run("complete_apply") == {'FINISHED'}
    assert obj.get("dposer_complete") is None
    dump = fcurve_dump(obj, obj.animation_data.action)
    for n in kept:
        for i in range(4):
            fr, v, _ = dump[(aio.ROT_PATH.format(n), i)]
            assert np.array_equal(fr, [3.0]) and v[0].tobytes() == q_before[n][i].tobytes(), (n, i)
    for n in free[:3]:
        assert dump[(aio.ROT_PATH.format(n), 0)][1][0] == shown[n][0]


def test_complete_discard_restores_pose() -> None:
    obj = smpl()
    body, root, _ = random_motion(1, seed=4, scale=0.25)
    pc.apply_smpl_pose(obj, body[0].reshape(21, 3), root[0])
    q0 = {pb.name: tuple(pb.rotation_quaternion) for pb in obj.pose.bones}
    run("complete", hypotheses=2, steps=5, seed=1)
    assert run("complete_discard") == {'FINISHED'}
    assert {pb.name: tuple(pb.rotation_quaternion) for pb in obj.pose.bones} == q0


# --------------------------------------------------------------------------- denoise

def test_denoise_new_action_original_in_muted_nla_survives_save_reload(tmp_path: Path) -> None:
    obj = smpl()
    T = 24
    body, root, trans = random_motion(T, seed=1, scale=0.25)
    aio.write_smpl_motion(obj, body, root, trans, frame_start=1, name="walk")
    assert run("denoise", noise="MM", noise_mm=20.0) == {'FINISHED'}
    ad = obj.animation_data
    assert ad.action.name == "walk_dposer"
    m = aio.read_smpl_motion(obj)
    assert len(m["frames"]) == T and np.array_equal(m["frames"], np.arange(1, T + 1))
    src = aio.read_smpl_motion(obj, bpy.data.actions["walk"])
    np.testing.assert_allclose(m["root_orient"], src["root_orient"], atol=1e-5)  # the root is held
    np.testing.assert_allclose(m["trans"], src["trans"], atol=1e-6)
    tracks = list(ad.nla_tracks)
    assert len(tracks) == 1 and tracks[0].mute and tracks[0].strips[0].action.name == "walk"
    last = obj["dposer_last_denoise"]
    assert last["frames_before"] == last["frames_after"] == T and last["mean_joint_change_mm"] >= 0

    path = tmp_path / "denoised.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    obj = bpy.data.objects["SMPL"]
    assert {"walk", "walk_dposer"} <= set(bpy.data.actions.keys())
    assert obj.animation_data.action.name == "walk_dposer"
    tr = obj.animation_data.nla_tracks[0]
    assert tr.mute and tr.strips[0].action.name == "walk"
    src = aio.read_smpl_motion(obj, bpy.data.actions["walk"])
    assert len(src["frames"]) == T


def test_denoise_frame_range() -> None:
    obj = smpl()
    body, root, trans = random_motion(20, seed=2)
    aio.write_smpl_motion(obj, body, root, trans, frame_start=1, name="clip")
    sc = bpy.context.scene
    sc.frame_start, sc.frame_end = 5, 14
    assert run("denoise", use_frame_range=True) == {'FINISHED'}
    m = aio.read_smpl_motion(obj)
    assert np.array_equal(m["frames"], np.arange(5, 15))


def test_nan_action_is_reported_and_scene_unchanged() -> None:
    obj = smpl()
    body, root, trans = random_motion(6, seed=3)
    act = aio.write_smpl_motion(obj, body, root, trans, name="broken")
    fc = next(f for f in aio.action_fcurves(act, obj) if f.data_path == aio.ROT_PATH.format("left_knee"))
    fc.keyframe_points[2].co = (3.0, float("nan"))
    n_actions = len(bpy.data.actions)
    for op in ("denoise", "plausibility"):
        with pytest.raises(RuntimeError, match="NaN"):
            run(op)
    assert len(bpy.data.actions) == n_actions and obj.animation_data.action == act
    assert len(obj.animation_data.nla_tracks) == 0


# --------------------------------------------------------------------------- undo

def test_undo_restores_the_scene() -> None:
    """``ed.undo`` works in the bpy module (it has a window). Script calls push no undo step unless asked
    (``bpy.ops.x('EXEC_DEFAULT', True)``, what the UI does for an operator with 'UNDO'); one step undoes
    the whole operator."""
    obj = smpl()
    action = _keyed_pair(obj, 1, 9)
    bpy.context.scene.frame_set(3)
    bpy.ops.ed.undo_push(message="before")
    before = fcurve_dump(obj, action)
    assert bpy.ops.dposer.inbetween('EXEC_DEFAULT', True, steps=2) == {'FINISHED'}
    assert len(fcurve_dump(obj, action)[(aio.ROT_PATH.format("left_hip"), 0)][0]) == 9
    bpy.ops.ed.undo()
    obj = bpy.data.objects["SMPL"]
    after = fcurve_dump(obj, obj.animation_data.action)
    assert after.keys() == before.keys()
    for k in before:
        assert np.array_equal(after[k][0], before[k][0]) and np.array_equal(after[k][1], before[k][1])

    bpy.ops.ed.undo_push(message="before sample")
    assert bpy.ops.dposer.sample('EXEC_DEFAULT', True, n=2, steps=2, seed=0) == {'FINISHED'}
    assert any(o.get("dposer_ghost_of") for o in bpy.data.objects)
    bpy.ops.ed.undo()
    assert not any(o.get("dposer_ghost_of") for o in bpy.data.objects)


# --------------------------------------------------------------------------- import

def _fake_amass(path: Path, n: int, fps: float) -> None:
    """A synthetic file in the real AMASS SMPL-H layout."""
    rng = np.random.default_rng(0)
    poses = np.zeros((n, 156))
    poses[:, :66] = rng.normal(0, 0.1, (n, 66))
    np.savez(path, poses=poses, trans=rng.normal(0, 0.1, (n, 3)) + [0, 0, 0.9], betas=np.zeros(16),
             gender=np.array("neutral"), mocap_framerate=np.array(fps), dmpls=np.zeros((n, 8)))


def test_import_amass_frame_count_and_fps(tmp_path: Path, dposer_addon) -> None:
    p = tmp_path / "subject_clip_poses.npz"
    _fake_amass(p, 121, 60.0)
    sc = bpy.context.scene
    sc.render.fps, sc.render.fps_base = 30, 1.0
    assert run("import_motion", filepath=str(p)) == {'FINISHED'}
    obj = bpy.context.view_layer.objects.active
    assert pc.check_smpl_armature(obj)[0]  # an SMPL armature was added
    act = obj.animation_data.action
    assert act.name == "subject_clip_poses" and act["dposer_fps"] == 30.0
    m = aio.read_smpl_motion(obj)
    assert len(m["frames"]) == 61  # 2 s at 30 fps
    ref = dposer_addon.call("read_amass", path=str(p), fps=30.0)
    assert ref.body_pose.shape[0] == 61
    assert (sc.frame_start, sc.frame_end) == (1, 61)


def test_import_bvh_frame_count_and_fps(dposer_addon) -> None:
    obj = smpl()
    p = REPO / "tests" / "data" / "cmu_cgspeed_131_01_trim241.bvh"  # 241 frames at 120 fps
    sc = bpy.context.scene
    sc.render.fps, sc.render.fps_base = 30, 1.0
    assert run("import_motion", filepath=str(p)) == {'FINISHED'}
    assert bpy.context.view_layer.objects.active == obj
    m = aio.read_smpl_motion(obj)
    ref = dposer_addon.call("retarget_bvh", path=str(p), fps=30.0)  # the backend's own reading
    assert len(m["frames"]) == ref.body_pose.shape[0]
    assert 59 <= len(m["frames"]) <= 61  # 2 s at 30 fps (the retargeting may drop a T-pose frame)
    assert np.array_equal(m["frames"], np.arange(1, len(m["frames"]) + 1))
    assert obj.animation_data.action["dposer_fps"] == 30.0
    assert np.all(np.isfinite(m["body_pose"]))


def test_import_menu_entry() -> None:
    from dposer_blender.operators import importers

    assert importers.menu_func_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()


def test_import_missing_file_reports(tmp_path: Path) -> None:
    smpl()
    with pytest.raises(RuntimeError, match="No such file"):
        run("import_motion", filepath=str(tmp_path / "nope.bvh"))


# --------------------------------------------------------------------------- plausibility

def test_plausibility_curve_and_worst_frames() -> None:
    obj = smpl()
    body, root, trans = random_motion(12, seed=6)
    body[4] *= 8.0  # a wild frame
    aio.write_smpl_motion(obj, body, root, trans, frame_start=1, name="clip")
    assert run("plausibility") == {'FINISHED'}
    from dposer_blender.operators import plausibility as pl

    fc = pl.plausibility_fcurve(obj)
    assert fc is not None and fc.data_path == '["dposer_plausibility"]'
    frames, scores = pl.read_curve(fc)
    assert np.array_equal(frames, np.arange(1, 13)) and np.all(np.isfinite(scores))
    assert run("select_worst_frames", count=3) == {'FINISHED'}
    marks = [m for m in bpy.context.scene.timeline_markers if m.name.startswith("DPoser worst")]
    assert len(marks) == 3 and all(m.select for m in marks)
    worst = set(frames[np.argsort(-scores)[:3]].astype(int))
    assert {m.frame for m in marks} == worst
    # the in-between A/B defaults ignore the plausibility curve's keys
    from dposer_blender.operators.inbetween import default_range

    assert default_range(obj, 5) == (5, 6)


# --------------------------------------------------------------------------- failures

def test_bad_armature_disables_operators_and_says_which_bones() -> None:
    obj = smpl()
    bpy.ops.object.mode_set(mode='EDIT')
    for name in ("left_knee", "right_wrist"):
        obj.data.edit_bones.remove(obj.data.edit_bones[name])
    bpy.ops.object.mode_set(mode='OBJECT')
    for op in ("sample", "variations", "inbetween", "complete", "denoise", "plausibility"):
        assert not getattr(bpy.ops.dposer, op).poll()
        with pytest.raises(RuntimeError, match=r"missing bones left_knee, right_wrist"):
            run(op)


def test_not_an_armature_reports() -> None:
    me = bpy.data.meshes.new("m")
    ob = bpy.data.objects.new("Cube", me)
    bpy.context.scene.collection.objects.link(ob)
    bpy.context.view_layer.objects.active = ob
    with pytest.raises(RuntimeError, match="'Cube' is not an armature"):
        run("sample")


def _fake_python(tmp_path: Path, body: str) -> str:
    """A 'python' that answers the discovery probe with the real backend Python and does ``body`` otherwise."""
    real = os.environ["DPOSER_PYTHON"]
    p = tmp_path / "fakepython"
    p.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec "{real}" "$@"; fi\n{body}\n')
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(p)


def test_dead_backend_is_reported_and_scene_unchanged(tmp_path: Path, dposer_addon) -> None:
    from dposer_blender.client import BackendClient

    runtime = dposer_addon
    obj = smpl()
    # the fake dies 0.3 s after starting (an instant exit can race the client's thread start-up: the
    # reader may finish before the stderr thread is started, see the report)
    bad = BackendClient(python=_fake_python(tmp_path, "sleep 0.3; echo 'Segmentation fault' >&2; exit 139"),
                        device="cpu")
    old = runtime.set_client(bad)
    try:
        with pytest.raises(RuntimeError, match=r"DPoser backend exited with code 139"):
            run("sample", n=2, steps=2)
        assert not any(o.get("dposer_ghost_of") for o in bpy.data.objects)
        state, text = runtime.status()
        assert state == runtime.ERROR and "139" in text
    finally:
        runtime.set_client(old)
        bad.close()
    assert obj.animation_data is None


def test_backend_missing_is_reported(monkeypatch, dposer_addon) -> None:
    from dposer_blender.client import BackendClient, PythonNotFound
    from dposer_blender.client import backend_client as bc

    def nope(pref=None):
        raise PythonNotFound("DPoser needs a Python with PyTorch for its backend and none was found (tried x)")

    monkeypatch.setattr(bc, "find_python", nope)
    runtime = dposer_addon
    smpl()
    missing = BackendClient(python="/nonexistent/python", device="cpu")
    old = runtime.set_client(missing)
    try:
        with pytest.raises(RuntimeError, match="needs a Python with PyTorch"):
            run("sample", n=1, steps=1)
    finally:
        runtime.set_client(old)


def test_protocol_mismatch_is_reported(tmp_path: Path, dposer_addon) -> None:
    from dposer_blender.client import BackendClient

    runtime = dposer_addon
    smpl()
    hello = ('{"type":"hello","protocol":"99.0","backend_version":"0","torch_version":"0","device":"cpu"}')
    fake = _fake_python(tmp_path, f"echo '{hello}'; sleep 5")
    c = BackendClient(python=fake, device="cpu")
    old = runtime.set_client(c)
    try:
        with pytest.raises(RuntimeError, match="protocol version mismatch"):
            run("sample", n=1, steps=1)
    finally:
        runtime.set_client(old)
        c.close()


def test_cancel_message_is_plain(dposer_addon) -> None:
    """Cancelling (Esc in the modal operator) cancels the request; the operator reports this sentence and
    writes nothing. The modal path needs an interactive event loop, so here the request is cancelled
    directly and the scene checked."""
    runtime = dposer_addon
    obj = smpl()
    fut = runtime.submit("sample", n=64, sampler="em", steps=5000, seed=0)
    fut.cancel()
    with pytest.raises(Exception) as ei:
        fut.result(120)
    assert runtime.describe_error(ei.value) == "Cancelled; nothing was changed."
    assert obj.animation_data is None and len(bpy.data.objects) == 1


def test_operators_work_with_smpl_addon_bone_names() -> None:
    """Rigs named like the SMPL add-on / FBX (m_avg_L_Hip, ...) are SMPL-like: the operators map the bones."""
    obj = smpl()
    for b in obj.data.bones:
        side, _, rest = b.name.partition("_")
        if side in ("left", "right"):
            b.name = f"m_avg_{side[0].upper()}_{rest.capitalize()}"
        else:
            b.name = f"m_avg_{b.name.capitalize()}"
    assert "m_avg_L_Elbow" in obj.data.bones and pc.check_smpl_armature(obj)[0]
    _keyed_pair(obj, 1, 6, seed=4)
    bpy.context.scene.frame_set(2)
    assert run("inbetween", steps=2) == {'FINISHED'}
    assert len(aio.read_smpl_motion(obj)["frames"]) == 6
    for b in obj.data.bones:
        _select_bone(obj, b.name, b.name == "m_avg_L_Elbow")
    q = np.array(obj.pose.bones["m_avg_L_Elbow"].rotation_quaternion, dtype=np.float32)
    assert run("complete", hypotheses=2, steps=4, seed=0) == {'FINISHED'}
    assert run("complete_apply") == {'FINISHED'}
    assert np.array(obj.pose.bones["m_avg_L_Elbow"].rotation_quaternion, dtype=np.float32).tobytes() == q.tobytes()
