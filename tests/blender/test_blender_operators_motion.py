"""The ``dposer.*`` operators against the real backend (CPU; shipped weights or a tiny checkpoint): motion (denoise, undo, import, plausibility).

In the bpy module ``bpy.app.background`` is True, so every operator runs blocking (``execute``) -
the same code path scripts use; the modal path only differs in how the request is waited for.
Each test starts from an empty factory scene (conftest ``factory_scene``).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
import pytest

from dposer_blender.blender import actions, fcurves
from dposer_blender.blender import rig as smpl_rig
from operator_helpers import fcurve_dump, keyed_pair, random_motion, run, smpl

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("dposer_addon")


# --------------------------------------------------------------------------- denoise

def test_denoise_new_action_original_in_muted_nla_survives_save_reload(tmp_path: Path) -> None:
    obj = smpl()
    T = 24
    body, root, trans = random_motion(T, seed=1, scale=0.25)
    actions.write_smpl_motion(obj, body, root, trans, frame_start=1, name="walk")
    assert run("denoise", noise="MM", noise_mm=20.0) == {'FINISHED'}
    ad = obj.animation_data
    assert ad.action.name == "walk_dposer"
    m = actions.read_smpl_motion(obj)
    assert len(m["frames"]) == T and np.array_equal(m["frames"], np.arange(1, T + 1))
    src = actions.read_smpl_motion(obj, bpy.data.actions["walk"])
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
    src = actions.read_smpl_motion(obj, bpy.data.actions["walk"])
    assert len(src["frames"]) == T


def test_denoise_frame_range() -> None:
    obj = smpl()
    body, root, trans = random_motion(20, seed=2)
    actions.write_smpl_motion(obj, body, root, trans, frame_start=1, name="clip")
    sc = bpy.context.scene
    sc.frame_start, sc.frame_end = 5, 14
    assert run("denoise", use_frame_range=True) == {'FINISHED'}
    m = actions.read_smpl_motion(obj)
    assert np.array_equal(m["frames"], np.arange(5, 15))


def test_nan_action_is_reported_and_scene_unchanged() -> None:
    obj = smpl()
    body, root, trans = random_motion(6, seed=3)
    act = actions.write_smpl_motion(obj, body, root, trans, name="broken")
    fc = next(f for f in fcurves.action_fcurves(act, obj) if f.data_path == fcurves.ROT_PATH.format("left_knee"))
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
    action = keyed_pair(obj, 1, 9)
    bpy.context.scene.frame_set(3)
    bpy.ops.ed.undo_push(message="before")
    before = fcurve_dump(obj, action)
    assert bpy.ops.dposer.inbetween('EXEC_DEFAULT', True, steps=2) == {'FINISHED'}
    assert len(fcurve_dump(obj, action)[(fcurves.ROT_PATH.format("left_hip"), 0)][0]) == 9
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
    assert smpl_rig.check_smpl_armature(obj)[0]  # an SMPL armature was added
    act = obj.animation_data.action
    assert act.name == "subject_clip_poses" and act["dposer_fps"] == 30.0
    m = actions.read_smpl_motion(obj)
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
    m = actions.read_smpl_motion(obj)
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
    actions.write_smpl_motion(obj, body, root, trans, frame_start=1, name="clip")
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
