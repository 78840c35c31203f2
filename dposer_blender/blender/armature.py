"""The SMPL armature: 24 bones named like the SMPL-X add-on, rest pose from the built-in skeleton.

Layout (Blender armature space: Z up, metres, character facing -Y, +X = subject's left); the armature
space is exactly ``C · SMPL`` so SMPL's origin is the armature origin, and the armature *object* is
lifted so that the mannequin's soles touch the floor (z = 0) in the rest pose.

* Each bone points from its joint to its child. Multi-child joints: pelvis -> spine1, spine3 -> neck.
  Leaves: head straight up (0.20 m), feet along the ankle->foot direction flattened to horizontal
  (0.07 m), hands along the wrist direction (0.10 m). A child whose head is its parent's tail is
  connected (chains spine1..spine3, legs, arms, neck->head), which suits IK and chain selection.
* Bone rolls: torso, legs, neck, head and feet have their local X along the subject's left (world +X),
  so flexion is a rotation about local X; collars and arms have local Z pointing forward (world -Y),
  which makes left/right rolls mirror images (Blender's symmetrize convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.pose_convert import smpl_points_to_blender
from ..dposer_core.skeleton import smpl_skeleton
from . import mannequin as _mannequin

#: Leaf bone lengths in metres.
HEAD_LENGTH = 0.20
FOOT_LENGTH = 0.07
HAND_LENGTH = 0.10

#: Tail target for joints with several children (parent name -> child name).
MULTI_CHILD_TAIL = {"pelvis": "spine1", "spine3": "neck"}

_ARM_WORDS = ("collar", "shoulder", "elbow", "wrist", "hand")


@dataclass(frozen=True)
class BoneSpec:
    """One bone of the SMPL armature in Blender armature space.

    Attributes:
        name: SMPL joint name.
        parent: parent bone name or None.
        head, tail: (3,) positions in metres.
        z_axis: (3,) direction the bone's local Z axis is rolled towards (``EditBone.align_roll``).
        connect: whether the bone is connected to its parent (head == parent's tail).
    """

    name: str
    parent: str | None
    head: np.ndarray
    tail: np.ndarray
    z_axis: np.ndarray
    connect: bool


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def bone_layout() -> list[BoneSpec]:
    """The 24 bone specs of the SMPL armature, in SMPL joint order (pure numpy, no bpy)."""
    sk = smpl_skeleton()
    heads = smpl_points_to_blender(sk.rest_joints)
    up = np.array([0.0, 0.0, 1.0])
    tails = np.zeros_like(heads)
    for j, name in enumerate(sk.names):
        kids = sk.children(j)
        if len(kids) == 1:
            tails[j] = heads[kids[0]]
        elif len(kids) > 1:
            tails[j] = heads[sk.index(MULTI_CHILD_TAIL[name])]
        elif name == "head":
            tails[j] = heads[j] + HEAD_LENGTH * up
        else:
            d = heads[j] - heads[sk.parents[j]]
            if name.endswith("_foot"):
                d = d.copy()
                d[2] = 0.0
                tails[j] = heads[j] + FOOT_LENGTH * _unit(d)
            else:
                tails[j] = heads[j] + HAND_LENGTH * _unit(d)
    specs: list[BoneSpec] = []
    for j, name in enumerate(sk.names):
        y = _unit(tails[j] - heads[j])
        if any(w in name for w in _ARM_WORDS):
            ref = np.array([0.0, -1.0, 0.0])  # local Z forward
            z = _unit(ref - np.dot(ref, y) * y)
        else:
            ref = np.array([1.0, 0.0, 0.0])  # local X to the subject's left
            x = _unit(ref - np.dot(ref, y) * y)
            z = np.cross(x, y)
        p = sk.parents[j]
        parent = sk.names[p] if p >= 0 else None
        connect = p >= 0 and bool(np.allclose(tails[p], heads[j], atol=1e-9))
        specs.append(BoneSpec(name, parent, heads[j].copy(), tails[j].copy(), z, connect))
    return specs


def _ensure_object_mode(context: Any) -> None:
    import bpy

    obj = getattr(context, "object", None)
    if obj is not None and obj.mode != 'OBJECT':
        bpy.ops.object.mode_set(mode='OBJECT')


def create_smpl_armature(context: Any = None, name: str = "SMPL", collection: Any = None,
                         location: tuple[float, float, float] | None = None,
                         mannequin: bool = True, smpl_model_path: str | None = None) -> Any:
    """Add an SMPL armature (and by default its mannequin body) to the scene; returns the armature object.

    Args:
        context: a ``bpy.context``-like object (default ``bpy.context``).
        name: object / data name of the armature.
        collection: collection to link into (default: the scene's active collection).
        location: armature object location; by default (0, 0, lift) so the rest-pose soles touch z = 0
            (``lift`` = ``mannequin.floor_lift()``, stored as the object property ``dposer_floor_lift``).
        mannequin: also create the procedural mannequin mesh (``mannequin.create_mannequin``), or the
            real SMPL mesh when ``smpl_model_path`` is given and readable.
        smpl_model_path: optional SMPL model file (.npz / .pkl) for the real mesh.

    The new armature is the active, selected object, in Object mode.
    """
    import bpy

    context = context or bpy.context
    _ensure_object_mode(context)
    collection = collection or context.collection or context.scene.collection
    arm = bpy.data.armatures.new(name)
    arm.display_type = 'OCTAHEDRAL'
    obj = bpy.data.objects.new(name, arm)
    obj.show_in_front = True
    collection.objects.link(obj)
    if location is None:
        location = (0.0, 0.0, _mannequin.floor_lift())
    obj.location = location

    view_layer = context.view_layer
    for o in list(context.selected_objects):
        o.select_set(False)
    view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        ebones = {}
        for spec in bone_layout():
            eb = arm.edit_bones.new(spec.name)
            eb.head = tuple(spec.head)
            eb.tail = tuple(spec.tail)
            eb.align_roll(tuple(spec.z_axis))
            if spec.parent is not None:
                eb.parent = ebones[spec.parent]
                eb.use_connect = spec.connect
            ebones[spec.name] = eb
    finally:
        bpy.ops.object.mode_set(mode='OBJECT')
    for pb in obj.pose.bones:
        pb.rotation_mode = 'QUATERNION'
    obj["dposer_smpl"] = True
    # distance from the armature origin (SMPL's origin) down to the rest-pose soles: the floor is at
    # object z - lift; rig.motion_trans_to_rig() uses it for floor-based motion translations
    obj["dposer_floor_lift"] = float(_mannequin.floor_lift())

    if mannequin:
        body = None
        if smpl_model_path:
            try:
                body = _mannequin.create_smpl_mesh(obj, smpl_model_path, context=context)
            except Exception as ex:  # noqa: BLE001 - fall back to the mannequin, say why
                print(f"[dposer] SMPL mesh unavailable ({ex}); using the mannequin")
                body = None
        if body is None:
            _mannequin.create_mannequin(obj, context=context)
        view_layer.objects.active = obj
        obj.select_set(True)
    return obj


def reset_pose(obj: Any) -> None:
    """Put every pose bone back to rest (identity rotation, zero location, unit scale)."""
    for pb in obj.pose.bones:
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.rotation_euler = (0.0, 0.0, 0.0)
        pb.rotation_axis_angle = (0.0, 0.0, 1.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)


__all__ = ["BoneSpec", "bone_layout", "create_smpl_armature", "reset_pose", "HEAD_LENGTH", "FOOT_LENGTH",
           "HAND_LENGTH"]
