"""The SMPL armature and the mannequin body."""

from __future__ import annotations

import bpy
import numpy as np

from dposer_blender.blender import armature, mannequin
from dposer_blender.blender import rig as smpl_rig
from dposer_blender.core import pose_convert as pc
from dposer_blender.dposer_core.skeleton import joint_names, smpl_skeleton


def test_armature_has_24_smpl_bones_in_the_right_tree() -> None:
    obj = armature.create_smpl_armature(mannequin=False)
    sk = smpl_skeleton()
    bones = obj.data.bones
    assert len(bones) == 24
    assert {b.name for b in bones} == set(joint_names())
    for j, name in enumerate(sk.names):
        b = bones[name]
        p = sk.parents[j]
        assert (b.parent.name if b.parent else None) == (sk.names[p] if p >= 0 else None)
    assert bpy.context.view_layer.objects.active == obj and obj.mode == 'OBJECT'
    assert all(pb.rotation_mode == 'QUATERNION' for pb in obj.pose.bones)


def test_bones_point_to_their_child_z_up_facing_minus_y() -> None:
    obj = armature.create_smpl_armature(mannequin=False)
    sk = smpl_skeleton()
    rest = pc.smpl_points_to_blender(sk.rest_joints)
    bones = obj.data.bones
    for j, name in enumerate(sk.names):
        np.testing.assert_allclose(tuple(bones[name].head_local), rest[j], atol=1e-6)
        kids = sk.children(j)
        if len(kids) == 1:
            np.testing.assert_allclose(tuple(bones[name].tail_local), rest[kids[0]], atol=1e-6)
            assert bones[sk.names[kids[0]]].use_connect
    np.testing.assert_allclose(tuple(bones["pelvis"].tail_local), rest[sk.index("spine1")], atol=1e-6)
    np.testing.assert_allclose(tuple(bones["spine3"].tail_local), rest[sk.index("neck")], atol=1e-6)
    # Z up: the head is above the pelvis, above the feet; facing -Y: the toes are at -Y of the ankles;
    # +X is the subject's left.
    hl = {n: np.array(bones[n].head_local) for n in joint_names()}
    assert hl["head"][2] > hl["pelvis"][2] > hl["left_ankle"][2]
    assert bones["left_foot"].tail_local.y < hl["left_ankle"][1] - 0.1
    assert hl["left_shoulder"][0] > 0 > hl["right_shoulder"][0]
    head_dir = np.array(bones["head"].tail_local - bones["head"].head_local)
    assert head_dir[2] > 0.19
    foot_dir = np.array(bones["left_foot"].tail_local - bones["left_foot"].head_local)
    assert abs(foot_dir[2]) < 1e-6 and foot_dir[1] < 0
    hand_dir = np.array(bones["left_hand"].tail_local - bones["left_hand"].head_local)
    assert hand_dir[0] > 0.09
    # rolls: legs/spine have local X along world +X; arms have local Z forward (mirrored left/right)
    for n in ("spine1", "left_hip", "right_knee", "neck"):
        assert bones[n].matrix_local.col[0].x > 0.9, n
    for n in ("left_shoulder", "right_elbow"):
        assert bones[n].matrix_local.col[2].y < -0.9, n


def test_mannequin_skinned_and_standing_on_the_floor() -> None:
    obj = armature.create_smpl_armature()
    bodies = [c for c in obj.children if c.type == 'MESH']
    assert len(bodies) == 1
    body = bodies[0]
    mods = [m for m in body.modifiers if m.type == 'ARMATURE']
    assert mods and mods[0].object == obj
    assert set(body.vertex_groups.keys()) <= set(joint_names())
    assert {"pelvis", "spine3", "head", "left_hand", "right_foot", "left_knee"} <= set(body.vertex_groups.keys())
    me = body.data
    assert len(me.vertices) > 3000 and all(p.use_smooth for p in me.polygons)
    # every vertex fully weighted
    tot = np.zeros(len(me.vertices))
    for v in me.vertices:
        tot[v.index] = sum(g.weight for g in v.groups)
    np.testing.assert_allclose(tot, 1.0, atol=1e-3)
    dg = bpy.context.evaluated_depsgraph_get()
    ev = body.evaluated_get(dg)
    m = ev.to_mesh()
    co = np.array([tuple(ev.matrix_world @ v.co) for v in m.vertices])
    ev.to_mesh_clear()
    assert abs(co[:, 2].min()) < 1e-5  # soles on z = 0
    height = co[:, 2].max() - co[:, 2].min()
    assert 1.6 < height < 1.85, height
    assert co[:, 0].max() > 0.8 and co[:, 0].min() < -0.8  # T-pose arm span


def test_mannequin_follows_the_pose() -> None:
    obj = armature.create_smpl_armature()
    body = obj.children[0]
    names = joint_names()
    pose = np.zeros((21, 3))
    pose[names.index("left_shoulder") - 1] = (0.0, 0.0, -1.3)  # left arm down
    smpl_rig.apply_smpl_pose(obj, pose, None)
    bpy.context.view_layer.update()
    dg = bpy.context.evaluated_depsgraph_get()
    ev = body.evaluated_get(dg)
    m = ev.to_mesh()
    co = np.array([tuple(ev.matrix_world @ v.co) for v in m.vertices])
    ev.to_mesh_clear()
    assert co[:, 0].max() < 0.45 and co[:, 0].min() < -0.8


def test_floor_lift_matches_geometry() -> None:
    assert abs(mannequin.floor_lift() + mannequin.build_mannequin_smpl().verts[:, 1].min()) < 1e-12
    assert 1.1 < mannequin.floor_lift() < 1.25


def test_smpl_mesh_from_model_file(tmp_path) -> None:
    """With an SMPL model file configured the real mesh is used (synthetic tiny model file here)."""
    sk = smpl_skeleton()
    rng = np.random.default_rng(0)
    V = 60
    v = sk.rest_joints[rng.integers(0, 24, V)] + rng.normal(0, 0.02, (V, 3))
    w = rng.random((V, 24)) ** 8
    w /= w.sum(1, keepdims=True)
    f = np.stack([np.arange(V - 2), np.arange(1, V - 1), np.arange(2, V)], 1)
    kt = np.stack([np.array(sk.parents), np.arange(24)]).astype(np.int64)
    kt[0, 0] = -1
    path = tmp_path / "smpl_tiny.npz"
    np.savez(path, v_template=v, shapedirs=np.zeros((V, 3, 10)), posedirs=np.zeros((V, 3, 207)),
             J_regressor=np.full((24, V), 1.0 / V), weights=w, kintree_table=kt, f=f)
    obj = armature.create_smpl_armature(smpl_model_path=str(path))
    body = obj.children[0]
    assert body.name.endswith("smpl_mesh") and len(body.data.vertices) == V
    gi = body.vertex_groups["left_knee"].index
    j = list(joint_names()).index("left_knee")
    for i in np.nonzero(w[:, j] > 1e-3)[0][:5]:
        got = [g.weight for g in body.data.vertices[int(i)].groups if g.group == gi]
        assert got and abs(got[0] - w[i, j]) < 1e-6
    np.testing.assert_allclose([tuple(x.co) for x in body.data.vertices], pc.smpl_points_to_blender(v), atol=1e-6)
    # bad path: falls back to the mannequin
    obj2 = armature.create_smpl_armature(name="SMPL2", smpl_model_path=str(tmp_path / "missing.pkl"))
    assert obj2.children[0].name.endswith("mannequin")
