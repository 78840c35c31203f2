"""Bulk action write / read (slotted actions on 5.x, action.fcurves on 4.2), key types."""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from dposer_blender.blender import actions, armature, fcurves
from dposer_blender.blender import rig as smpl_rig
from dposer_blender.core import pose_convert as pc
from dposer_blender.dposer_core import rotations_np as rot


@pytest.fixture
def rig_obj() -> tuple[bpy.types.Object, smpl_rig.SMPLRig]:
    obj = armature.create_smpl_armature(mannequin=False)
    return obj, smpl_rig.SMPLRig.from_armature(obj)


def motion(T: int, rig: smpl_rig.SMPLRig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    body = rng.normal(0, 0.5, (T, 21, 3))
    root = rng.normal(0, 0.5, (T, 3))
    trans = rng.normal(0, 0.3, (T, 3))
    q, loc = smpl_rig.pose_to_bone_data(body, root, trans, rig)
    return q.astype(np.float32), loc.astype(np.float32)


def test_api_flavour_matches_version(rig_obj) -> None:
    obj, rig = rig_obj
    q, loc = motion(3, rig)
    act = actions.write_action(obj, q, rig.bone_names, location=loc, name="flavour")
    assert obj.animation_data.action == act
    if bpy.app.version >= (4, 4, 0):
        assert fcurves.uses_slotted_actions()
        assert len(act.slots) == 1 and obj.animation_data.action_slot == act.slots[0]
        cb = fcurves.channelbag(act, act.slots[0])
        assert len(cb.fcurves) == 24 * 4 + 3
        assert cb.fcurves[0].group is not None and cb.fcurves[0].group.name == "pelvis"
    else:
        assert not fcurves.uses_slotted_actions()
        assert len(act.fcurves) == 24 * 4 + 3
        assert act.fcurves[0].group.name == "pelvis"


def test_write_read_round_trip_is_bit_exact(rig_obj) -> None:
    obj, rig = rig_obj
    T = 40
    q, loc = motion(T, rig)
    frames = np.arange(T, dtype=np.float64) * 2 + 5  # every other frame from 5
    act = actions.write_action(obj, q, rig.bone_names, frames=frames, location=loc, name="rt")
    m = actions.read_action(act, rig.bone_names, obj)
    assert m.quats.dtype == np.float32 and m.quats.shape == (T, 24, 4)
    assert np.array_equal(m.frames, frames)
    assert np.array_equal(m.quats, q)
    assert np.array_equal(m.location, loc)
    assert m.root_bone == "pelvis"
    np.testing.assert_array_equal(fcurves.keyed_frames(act, obj), frames)
    # 21 body bones only (DPoser body pose): other channels are read as identity
    m21 = actions.read_action(act, rig.bone_names[1:22], obj, root_bone="pelvis")
    assert np.array_equal(m21.quats, q[:, 1:22])


def test_written_action_evaluates_to_backend_fk(rig_obj, random_poses, expected_joints) -> None:
    obj, rig = rig_obj
    body, root, trans = random_poses
    q, loc = smpl_rig.pose_to_bone_data(body, root, trans, rig)
    actions.write_action(obj, q, rig.bone_names, frame_start=1, location=loc, name="fk")
    scene = bpy.context.scene
    for n in range(len(body)):
        scene.frame_set(1 + n)
        heads = np.array([tuple(obj.pose.bones[b].head) for b in rig.bone_names])
        mw = np.array(obj.matrix_world)
        got = heads @ mw[:3, :3].T + mw[:3, 3]
        exp = pc.smpl_points_to_blender(expected_joints[n]) @ mw[:3, :3].T + mw[:3, 3]
        assert np.abs(got - exp).max() < 1e-5  # float32 storage of the keys


def test_generated_key_type(rig_obj) -> None:
    obj, rig = rig_obj
    assert fcurves.generated_key_type() == "GENERATED"  # exists on 4.2 and 5.x
    q, loc = motion(5, rig)
    act = actions.write_action(obj, q, rig.bone_names, location=loc, key_type="GENERATED", name="gen")
    types = fcurves.key_types(act, obj)
    assert len(types) == 24 * 4 + 3
    assert all(t == ["GENERATED"] * 5 for t in types.values())
    # single-pose keys
    obj.animation_data.action = None
    smpl_rig.apply_smpl_pose(obj, np.zeros(63), np.array([0.0, 0.3, 0.0]), np.array([0.0, 0.0, 0.1]), rig)
    n = actions.key_pose(obj, 12, location_bone="pelvis", key_type="GENERATED")
    assert n == 24 * 4 + 3
    act2 = obj.animation_data.action
    t2 = fcurves.key_types(act2, obj)
    assert len(t2) == 24 * 4 + 3 and all(t == ["GENERATED"] for t in t2.values())
    actions.key_pose(obj, 20)
    t3 = fcurves.key_types(act2, obj)
    assert all(t == ["GENERATED", "KEYFRAME"] for k, t in t3.items() if "rotation" in k[0])
    assert all(t == ["GENERATED"] for k, t in t3.items() if "location" in k[0])  # not keyed at 20
    assert fcurves.set_key_type(act2, "GENERATED", frames=[20], obj=obj) == 24 * 4
    assert all(t == ["GENERATED", "GENERATED"] for k, t in fcurves.key_types(act2, obj).items() if "rotation" in k[0])


def test_rewrite_replaces_only_written_channels(rig_obj) -> None:
    obj, rig = rig_obj
    q, loc = motion(6, rig, seed=1)
    act = actions.write_action(obj, q, rig.bone_names, location=loc, name="base")
    q2, _ = motion(3, rig, seed=2)
    actions.write_action(obj, q2[:, 4:6], rig.bone_names[4:6], frame_start=10, action=act)
    m = actions.read_action(act, rig.bone_names, obj)
    # frames now 1..6 and 10..12; untouched bones keep their keys, rewritten ones only have 10..12
    np.testing.assert_array_equal(m.frames, [1, 2, 3, 4, 5, 6, 10, 11, 12])
    fc = {(f.data_path, f.array_index): f for f in fcurves.action_fcurves(act, obj)}
    assert len(fc[(fcurves.ROT_PATH.format(rig.bone_names[4]), 0)].keyframe_points) == 3
    assert len(fc[(fcurves.ROT_PATH.format(rig.bone_names[0]), 0)].keyframe_points) == 6
    assert np.array_equal(m.quats[6:, 4:6], q2[:, 4:6])
    assert np.array_equal(m.quats[:6, 7], q[:, 7])


def test_bad_input_rejected(rig_obj) -> None:
    obj, rig = rig_obj
    q, _ = motion(3, rig)
    q[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        actions.write_action(obj, q, rig.bone_names)
    with pytest.raises(ValueError, match=r"\(T,24,4\)"):
        actions.write_action(obj, q[:, :5], rig.bone_names)


def test_write_without_assigning_keeps_current_action(rig_obj) -> None:
    obj, rig = rig_obj
    q, loc = motion(4, rig)
    a1 = actions.write_action(obj, q, rig.bone_names, name="first")
    a2 = actions.write_action(obj, q, rig.bone_names, location=loc, name="second", assign=False)
    assert obj.animation_data.action == a1 and a2 != a1
    m = actions.read_action(a2, rig.bone_names, obj)
    assert np.array_equal(m.quats, q) and np.array_equal(m.location, loc)


def test_smpl_motion_round_trip_and_fk(rig_obj, random_poses, expected_joints) -> None:
    obj, rig = rig_obj
    body, root, trans = random_poses
    floor_trans = trans + np.array([0.0, obj["dposer_floor_lift"], 0.0])  # feet-on-floor convention
    act = actions.write_smpl_motion(obj, body.reshape(len(body), 63), root, floor_trans, frame_start=1,
                                floor_based_trans=True, key_type="GENERATED", name="smpl")
    back = actions.read_smpl_motion(obj, act, floor_based_trans=True)
    np.testing.assert_array_equal(back["frames"], np.arange(1, len(body) + 1))
    np.testing.assert_allclose(rot.axis_angle_to_matrix(back["body_pose"].reshape(-1, 21, 3)),
                               rot.axis_angle_to_matrix(body), atol=1e-5)  # float32 keys
    np.testing.assert_allclose(back["trans"], floor_trans, atol=1e-6)
    bpy.context.scene.frame_set(3)
    heads = np.array([tuple(obj.pose.bones[b].head) for b in rig.bone_names])
    np.testing.assert_allclose(heads, pc.smpl_points_to_blender(expected_joints[2]), atol=1e-5)
    # single pose key, only some joints
    obj.animation_data.action = None
    n = actions.key_smpl_pose(obj, 7, body[1], root[1], None, key_type="GENERATED", joints=[4, 5])
    assert n == 8 and len(fcurves.action_fcurves(obj.animation_data.action, obj)) == 8
