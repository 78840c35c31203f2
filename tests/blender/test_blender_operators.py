"""The ``dposer.*`` operators against the real backend (CPU; shipped weights or a tiny checkpoint): posing (sample, variations, in-between, complete).

In the bpy module ``bpy.app.background`` is True, so every operator runs blocking (``execute``) -
the same code path scripts use; the modal path only differs in how the request is waited for.
Each test starts from an empty factory scene (conftest ``factory_scene``).
"""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from dposer_blender.blender import actions, fcurves
from dposer_blender.blender import rig as smpl_rig
from dposer_blender.dposer_core.curves import ease
from dposer_blender.dposer_core.skeleton import joint_names
from operator_helpers import (assert_same_rotations, fcurve_dump, keyed_pair, operator_ids, random_motion, run,
                              select_bone, smpl)

pytestmark = pytest.mark.usefixtures("dposer_addon")


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
    assert smpl_rig.check_smpl_armature(obj)[0]
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
    body, _, _ = smpl_rig.read_smpl_pose(g2)
    assert_same_rotations(body, pose)

    assert run("apply_candidate", index=2, key=True) == {'FINISHED'}
    assert not [o for o in bpy.data.objects if o.get("dposer_ghost_of") is not None]
    assert bpy.data.collections.get("DPoser Candidates") is None
    assert len(bpy.data.armatures) == 1  # the ghosts' armature data went too
    assert not [c for c in bpy.data.curves if c.users == 0] and not [m for m in bpy.data.meshes if m.users == 0]
    m = actions.read_smpl_motion(obj)
    assert np.array_equal(m["frames"], [7.0])
    assert_same_rotations(m["body_pose"][0], pose)


def test_a_clicked_ghost_body_is_the_picked_candidate() -> None:
    """A click selects the ghost's body (a mesh); Apply with index -1 applies the ghost it belongs to.
    (The click itself is Blender's selection; the real-window suite clicks with xdotool.)"""
    obj = smpl()
    run("sample", n=2, steps=2, seed=1)
    g = next(o for o in bpy.data.objects if o.get("dposer_ghost_index") == 1)
    body_part = next(o for o in bpy.data.objects if o.get("dposer_ghost_part") == g.name and o.type == 'MESH')
    before, _, _ = smpl_rig.read_smpl_pose(obj)
    bpy.context.view_layer.objects.active = body_part
    body, _, _ = smpl_rig.read_smpl_pose(obj)
    assert np.array_equal(body, before)  # picking does not touch the character
    assert run("apply_candidate", index=-1, key=False) == {'FINISHED'}
    body, _, _ = smpl_rig.read_smpl_pose(obj)
    assert_same_rotations(body, np.array(g["dposer_pose"], copy=True))
    assert run("clear_candidates") == {'FINISHED'}
    assert bpy.context.view_layer.objects.active == obj


def test_variations_from_current_pose() -> None:
    obj = smpl()
    body, root, _ = random_motion(1, seed=5, scale=0.2)
    smpl_rig.apply_smpl_pose(obj, body[0].reshape(21, 3), root[0])
    assert run("variations", n=3, steps=2, seed=0, strength=0.2) == {'FINISHED'}
    ghosts = [o for o in bpy.data.objects if o.get("dposer_ghost_of") == obj.name]
    assert len(ghosts) == 3


# --------------------------------------------------------------------------- in-between

def test_inbetween_fills_frames_and_keeps_keys_bit_exact() -> None:
    obj = smpl()
    action = keyed_pair(obj, 1, 11)
    before = fcurve_dump(obj, action)
    bpy.context.scene.frame_set(4)  # A, B default to the keys around it
    assert run("inbetween", steps=3, ease="ease_in_out", root="INTERPOLATE") == {'FINISHED'}
    after = fcurve_dump(obj, action)
    gen = fcurves.key_type_value(fcurves.generated_key_type())
    kf = fcurves.key_type_value("KEYFRAME")
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
    m = actions.read_smpl_motion(obj)
    assert len(m["frames"]) == 11 and np.all(np.isfinite(m["body_pose"]))


def test_inbetween_fills_the_pelvis_translation_with_the_same_ease() -> None:
    """The keys' pelvis translations go to the backend (SMPL frame), which eases them like the body; the
    operator keys what comes back."""
    obj = smpl()
    keyed_pair(obj, 1, 11)
    _, _, trans = random_motion(2, 0)  # what keyed_pair keyed
    bpy.context.scene.frame_set(4)
    assert run("inbetween", steps=3, ease="ease_in_out", root="INTERPOLATE") == {'FINISHED'}
    m = actions.read_smpl_motion(obj)
    u = ease(np.arange(11) / 10.0, "ease_in_out")
    np.testing.assert_allclose(m["trans"], trans[0] + u[:, None] * (trans[1] - trans[0]), atol=1e-5)
    types = fcurves.key_types(obj.animation_data.action, obj)
    loc = types[(fcurves.LOC_PATH.format("pelvis"), 0)]
    assert loc[0] == loc[-1] == "KEYFRAME" and set(loc[1:-1]) == {fcurves.generated_key_type()}


def test_inbetween_keep_root_and_explicit_frames() -> None:
    obj = smpl()
    action = keyed_pair(obj, 5, 9, seed=2)
    pelvis = fcurves.ROT_PATH.format("pelvis")
    before = fcurve_dump(obj, action)
    assert run("inbetween", frame_a=5, frame_b=9, steps=2, root="KEEP") == {'FINISHED'}
    after = fcurve_dump(obj, action)
    for i in range(4):  # root untouched
        assert np.array_equal(after[(pelvis, i)][0], before[(pelvis, i)][0])
    assert np.array_equal(after[(fcurves.ROT_PATH.format("left_knee"), 0)][0], np.arange(5, 10, dtype=np.float32))


def test_inbetween_without_keys_reports() -> None:
    smpl()
    with pytest.raises(RuntimeError, match="no active action"):
        run("inbetween")


# --------------------------------------------------------------------------- complete

def test_complete_keeps_selected_and_locked_bones_bit_exact() -> None:
    obj = smpl()
    body, root, _ = random_motion(1, seed=9, scale=0.25)
    smpl_rig.apply_smpl_pose(obj, body[0].reshape(21, 3), root[0])
    for b in obj.data.bones:
        select_bone(obj, b.name, False)
    selected = ["left_shoulder", "left_elbow", "spine2"]
    locked = ["right_knee", "neck"]
    for n in selected:
        select_bone(obj, n)
    for n in locked:
        obj.pose.bones[n].lock_rotation = (True, True, True)
    kept = selected + locked
    q_before = {n: np.array(obj.pose.bones[n].rotation_quaternion, dtype=np.float32) for n in obj.pose.bones.keys()}

    assert run("complete", hypotheses=3, steps=10, seed=0) == {'FINISHED'}
    h = obj["dposer_complete"]
    assert int(h["count"]) == 3
    for n in kept:
        assert np.array(obj.pose.bones[n].rotation_quaternion, dtype=np.float32).tobytes() == q_before[n].tobytes(), n
    free = [n for n in joint_names()[1:22] if n not in kept]
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
            fr, v, _ = dump[(fcurves.ROT_PATH.format(n), i)]
            assert np.array_equal(fr, [3.0]) and v[0].tobytes() == q_before[n][i].tobytes(), (n, i)
    for n in free[:3]:
        assert dump[(fcurves.ROT_PATH.format(n), 0)][1][0] == shown[n][0]


def test_complete_discard_restores_pose() -> None:
    obj = smpl()
    body, root, _ = random_motion(1, seed=4, scale=0.25)
    smpl_rig.apply_smpl_pose(obj, body[0].reshape(21, 3), root[0])
    q0 = {pb.name: tuple(pb.rotation_quaternion) for pb in obj.pose.bones}
    run("complete", hypotheses=2, steps=5, seed=1)
    assert run("complete_discard") == {'FINISHED'}
    assert {pb.name: tuple(pb.rotation_quaternion) for pb in obj.pose.bones} == q0
