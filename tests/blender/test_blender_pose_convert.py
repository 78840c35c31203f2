"""Axis round trip: Blender FK (evaluated pose-bone heads) equals the backend's torch FK, both ways."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from mathutils import Matrix

from dposer_blender.blender import armature
from dposer_blender.blender import rig as smpl_rig
from dposer_blender.core import pose_convert as pc
from dposer_blender.dposer_core import rotations_np as rot
from dposer_blender.dposer_core.skeleton import joint_names, smpl_skeleton

TOL = 1e-5


def world_heads(obj: bpy.types.Object, rig: smpl_rig.SMPLRig) -> np.ndarray:
    """(24,3) world-space heads of the rig's SMPL bones from the evaluated pose."""
    bpy.context.view_layer.update()
    mw = np.array(obj.matrix_world)
    heads = np.array([tuple(obj.pose.bones[n].head) if n else (np.nan,) * 3 for n in rig.bone_names])
    return heads @ mw[:3, :3].T + mw[:3, 3]


def expected_world(obj: bpy.types.Object, rig: smpl_rig.SMPLRig, joints_smpl: np.ndarray) -> np.ndarray:
    """Backend FK joints (SMPL frame) -> world space of ``obj`` via C, the rig offset and the object matrix."""
    mw = np.array(obj.matrix_world)
    return pc.smpl_points_to_blender(joints_smpl, rig.offset) @ mw[:3, :3].T + mw[:3, 3]


def make_smplx_style_rig(names: list[str], extra: tuple[str, ...] = ("jaw", "left_index1")) -> bpy.types.Object:
    """A rig like the SMPL-X add-on's: heads at the joints, every bone pointing along +Z (0.1 m), roll 0,
    no hand bones but extra face/finger bones."""
    sk = smpl_skeleton()
    heads = pc.smpl_points_to_blender(sk.rest_joints)
    arm = bpy.data.armatures.new("SMPLX")
    obj = bpy.data.objects.new("SMPLX", arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    eb: dict[int, bpy.types.EditBone] = {}
    for j in range(22):
        b = arm.edit_bones.new(names[j])
        b.head = tuple(heads[j])
        b.tail = tuple(heads[j] + np.array([0.0, 0.0, 0.1]))
        b.roll = 0.0
        if sk.parents[j] >= 0:
            b.parent = eb[sk.parents[j]]
        eb[j] = b
    for i, n in enumerate(extra):
        b = arm.edit_bones.new(n)
        b.head = tuple(heads[15] + [0.0, -0.05 * i, 0.0])
        b.tail = tuple(heads[15] + [0.0, -0.05 * i, 0.1])
        b.parent = eb[15]
    bpy.ops.object.mode_set(mode='OBJECT')
    return obj


def test_pure_numpy_round_trip_batched() -> None:
    """smpl_to_pose_quats / pose_quats_to_smpl are inverses for T x 24 batches and arbitrary rest frames."""
    rng = np.random.default_rng(0)
    body = rng.normal(0, 0.7, (5, 21, 3))
    root = rng.normal(0, 0.7, (5, 3))
    rest = rot.axis_angle_to_matrix(rng.normal(0, 1.5, (24, 3)))
    q = pc.smpl_to_pose_quats(body.reshape(5, 63), root, rest)
    assert q.shape == (5, 24, 4)
    b2, r2 = pc.pose_quats_to_smpl(q, rest)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(b2), rot.axis_angle_to_matrix(body), atol=1e-10)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(r2), rot.axis_angle_to_matrix(root), atol=1e-10)
    t = rng.normal(size=(5, 3))
    np.testing.assert_allclose(pc.pelvis_location_to_trans(pc.trans_to_pelvis_location(t, rest[0]), rest[0]), t,
                               atol=1e-12)


def test_rotation_helpers_agree() -> None:
    rng = np.random.default_rng(1)
    aa = rng.normal(0, 1.0, (100, 3))
    aa[0] = 0.0
    m = rot.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(rot.axis_angle_to_quat(aa)), m, atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(rot.matrix_to_quat(m)), m, atol=1e-12)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(rot.matrix_to_axis_angle(m)), m, atol=1e-10)


@pytest.mark.parametrize("placement", ["default", "moved"])
def test_blender_fk_equals_backend_fk(random_poses, expected_joints, placement: str) -> None:
    """SMPL pose -> pose bones -> evaluated world heads == C · backend FK (+ rig offset, object matrix)."""
    obj = armature.create_smpl_armature(mannequin=False)
    if placement == "moved":  # the conversion is in armature space; the object transform just carries it
        obj.matrix_world = Matrix.Translation((1.0, -2.0, 0.5)) @ Matrix.Rotation(0.7, 4, 'Z')
    rig = smpl_rig.SMPLRig.from_armature(obj)
    body, root, trans = random_poses
    for n in range(len(body)):
        smpl_rig.apply_smpl_pose(obj, body[n], root[n], trans[n], rig)
        err = np.abs(world_heads(obj, rig) - expected_world(obj, rig, expected_joints[n])).max()
        assert err < TOL, f"pose {n}: max joint error {err:.2e} m"


def test_rest_heads_match_skeleton() -> None:
    obj = armature.create_smpl_armature(mannequin=False)
    rig = smpl_rig.SMPLRig.from_armature(obj)
    np.testing.assert_allclose(rig.rest_heads, pc.smpl_points_to_blender(smpl_skeleton().rest_joints), atol=1e-6)
    np.testing.assert_allclose(rig.offset, 0.0, atol=1e-6)


def test_inverse_round_trip(random_poses, expected_joints) -> None:
    """Pose bones -> SMPL axis-angle reproduces the rotations and translation; re-applying gives the same FK."""
    obj = armature.create_smpl_armature(mannequin=False)
    rig = smpl_rig.SMPLRig.from_armature(obj)
    body, root, trans = random_poses
    for n in range(len(body)):
        smpl_rig.apply_smpl_pose(obj, body[n], root[n], trans[n], rig)
        b2, r2, t2 = smpl_rig.read_smpl_pose(obj, rig)
        assert b2.shape == (21, 3) and r2.shape == (3,) and t2.shape == (3,)
        np.testing.assert_allclose(rot.axis_angle_to_matrix(b2), rot.axis_angle_to_matrix(body[n]), atol=1e-5)
        np.testing.assert_allclose(rot.axis_angle_to_matrix(r2), rot.axis_angle_to_matrix(root[n]), atol=1e-5)
        np.testing.assert_allclose(t2, trans[n], atol=1e-6)
        armature.reset_pose(obj)
        smpl_rig.apply_smpl_pose(obj, b2, r2, t2, rig)
        err = np.abs(world_heads(obj, rig) - expected_world(obj, rig, expected_joints[n])).max()
        assert err < TOL


def test_read_pose_from_euler_bones(random_poses, expected_joints) -> None:
    """Bones in an Euler rotation mode are read through their matrix_basis."""
    obj = armature.create_smpl_armature(mannequin=False)
    rig = smpl_rig.SMPLRig.from_armature(obj)
    body, root, trans = random_poses
    smpl_rig.apply_smpl_pose(obj, body[2], root[2], trans[2], rig)
    for name in ("left_knee", "spine2", "right_elbow"):
        pb = obj.pose.bones[name]
        e = pb.rotation_quaternion.to_euler('XYZ')
        pb.rotation_mode = 'XYZ'
        pb.rotation_euler = e
    b2, r2, t2 = smpl_rig.read_smpl_pose(obj, rig)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(b2), rot.axis_angle_to_matrix(body[2]), atol=1e-5)


@pytest.mark.parametrize("style", ["smplx_names", "smpl_fbx_names"])
def test_smplx_addon_style_rig(random_poses, expected_joints, style: str) -> None:
    """A rig whose bones all point along +Z (SMPL-X add-on) with other names works the same way."""
    names = list(joint_names())
    if style == "smpl_fbx_names":
        def fbx(n: str) -> str:
            for side, p in (("left_", "L_"), ("right_", "R_")):
                if n.startswith(side):
                    return "m_avg_" + p + n[len(side):].capitalize()
            return "m_avg_" + n.capitalize()
        names = [fbx(n) for n in names]
    obj = make_smplx_style_rig(names)
    ok, reason = smpl_rig.check_smpl_armature(obj)
    assert ok, reason
    rig = smpl_rig.SMPLRig.from_armature(obj)
    assert rig.bone_names[22] is None and rig.bone_names[23] is None
    assert rig.bone_names[1] == names[1]
    np.testing.assert_allclose(rig.rest_rots[:22], np.broadcast_to(pc.SMPL_TO_BLENDER, (22, 3, 3)), atol=1e-6)
    body, root, trans = random_poses
    for n in range(1, len(body)):
        smpl_rig.apply_smpl_pose(obj, body[n], root[n], trans[n], rig)
        # on such a rig (rest rotation == C) the pose-bone quaternion is the SMPL rotation itself, which
        # is how the SMPL-X add-on sets poses (rotation_quaternion = Quaternion(axis, angle))
        q = np.array(tuple(obj.pose.bones[names[4]].rotation_quaternion))
        np.testing.assert_allclose(rot.quat_to_matrix(q), rot.axis_angle_to_matrix(body[n][3]), atol=1e-6)
        got = world_heads(obj, rig)[:22]
        err = np.abs(got - expected_world(obj, rig, expected_joints[n])[:22]).max()
        assert err < TOL, f"pose {n}: max joint error {err:.2e} m"
        b2, r2, t2 = smpl_rig.read_smpl_pose(obj, rig)
        np.testing.assert_allclose(rot.axis_angle_to_matrix(b2), rot.axis_angle_to_matrix(body[n]), atol=1e-5)
        np.testing.assert_allclose(t2, trans[n], atol=1e-6)


def test_smpl_likeness_check() -> None:
    ok, reason = smpl_rig.check_smpl_armature(None)
    assert not ok and "No active object" in reason
    me = bpy.data.meshes.new("m")
    mesh_obj = bpy.data.objects.new("Cube", me)
    ok, reason = smpl_rig.check_smpl_armature(mesh_obj)
    assert not ok and "not an armature" in reason
    obj = armature.create_smpl_armature(mannequin=False)
    assert smpl_rig.check_smpl_armature(obj) == (True, "")
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    for n in ("left_knee", "head"):
        obj.data.edit_bones.remove(obj.data.edit_bones[n])
    bpy.ops.object.mode_set(mode='OBJECT')
    ok, reason = smpl_rig.check_smpl_armature(obj)
    assert not ok
    assert "missing bones left_knee, head" in reason, reason
    with pytest.raises(ValueError, match="left_knee"):
        smpl_rig.SMPLRig.from_armature(obj)
