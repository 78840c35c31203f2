"""An SMPL-like armature as seen by DPoser: which bone is which joint, its rest frames, its pose as SMPL.

The conversion maths is :mod:`..core.pose_convert`; this module reads ``bone.matrix_local`` and reads /
writes pose-bone attributes (it never imports ``bpy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..core.bones import find_smpl_bones, missing_joints
from ..core.keep import BODY_JOINTS, kept_joints as _kept_joints
from ..core.pose_convert import (pelvis_location_to_trans, pose_quats_to_smpl, smpl_points_to_blender,
                                 smpl_to_pose_quats, trans_to_pelvis_location)
from ..dposer_core.constants import NUM_JOINTS
from ..dposer_core.skeleton import smpl_skeleton


def check_smpl_armature(obj: Any) -> tuple[bool, str]:
    """Whether ``obj`` is an SMPL-like armature (for operator polls).

    Returns:
        (True, "") when the 22 body bones pelvis..right_wrist exist (hands are optional), else
        (False, reason) with a one-line reason naming the missing bones.
    """
    if obj is None:
        return False, "No active object: select an SMPL armature"
    if getattr(obj, "type", None) != 'ARMATURE':
        return False, f"'{obj.name}' is not an armature: select an SMPL armature"
    missing = missing_joints([b.name for b in obj.data.bones])
    if missing:
        return False, (f"'{obj.name}' is not an SMPL armature: missing bone"
                       f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return True, ""


@dataclass(frozen=True)
class SMPLRig:
    """How the 24 SMPL joints map onto an armature's bones.

    Attributes:
        bone_names: 24 bone names in SMPL joint order (None for a missing hand bone).
        rest_rots: (24,3,3) armature-space rest rotation per joint (identity where missing).
        rest_heads: (24,3) armature-space rest head per joint (the SMPL rest joint, converted, where
            missing).
        offset: (3,) armature-space position of SMPL's origin: ``rest_heads[0] - C · smpl_rest[0]``.
    """

    bone_names: tuple[str | None, ...]
    rest_rots: np.ndarray
    rest_heads: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_armature(cls, obj: Any) -> "SMPLRig":
        """Read the rest frames of an SMPL-like armature object; ``ValueError`` if it is not one."""
        ok, reason = check_smpl_armature(obj)
        if not ok:
            raise ValueError(reason)
        names = find_smpl_bones([b.name for b in obj.data.bones])
        skel_rest = smpl_points_to_blender(smpl_skeleton().rest_joints)
        rots = np.tile(np.eye(3), (NUM_JOINTS, 1, 1))
        heads = skel_rest.copy()
        for j, n in enumerate(names):
            if n is None:
                continue
            ml = np.array(obj.data.bones[n].matrix_local, dtype=np.float64)
            rots[j] = ml[:3, :3] / np.linalg.norm(ml[:3, :3], axis=0, keepdims=True)
            heads[j] = ml[:3, 3]
        offset = heads[0] - skel_rest[0]
        for j, n in enumerate(names):
            if n is None:
                heads[j] = skel_rest[j] + offset
        return cls(tuple(names), rots, heads, offset)

    def present(self) -> list[int]:
        """Indices of the SMPL joints that have a bone on this rig."""
        return [j for j, n in enumerate(self.bone_names) if n is not None]

    def body_bone_names(self) -> list[str]:
        """The bones of the 21 body joints (SMPL joints 1..21)."""
        return [self.bone_names[j] for j in BODY_JOINTS]


def pose_to_bone_data(body_pose: np.ndarray, root_orient: np.ndarray | None, trans: np.ndarray | None,
                      rig: SMPLRig) -> tuple[np.ndarray, np.ndarray | None]:
    """Batched SMPL pose -> (quats (...,24,4), pelvis location (...,3) or None) for ``rig``."""
    quats = smpl_to_pose_quats(body_pose, root_orient, rig.rest_rots)
    loc = None if trans is None else trans_to_pelvis_location(trans, rig.rest_rots[0])
    return quats, loc


def bone_data_to_pose(quats: np.ndarray, location: np.ndarray | None,
                      rig: SMPLRig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched inverse of :func:`pose_to_bone_data` -> (body_pose (...,21,3), root_orient (...,3), trans (...,3))."""
    body, root = pose_quats_to_smpl(quats, rig.rest_rots)
    if location is None:
        trans = np.zeros(root.shape)
    else:
        trans = pelvis_location_to_trans(location, rig.rest_rots[0])
    return body, root, trans


# --------------------------------------------------------------------------- the floor

def floor_lift_of(obj: Any) -> float:
    """Height (m) by which an SMPL armature object was lifted so its rest-pose soles touch z = 0
    (the ``dposer_floor_lift`` property set by ``armature.create_smpl_armature``; 0 for other rigs)."""
    try:
        return float(obj.get("dposer_floor_lift", 0.0))
    except (AttributeError, TypeError):
        return 0.0


def motion_trans_to_rig(trans: np.ndarray, obj: Any) -> np.ndarray:
    """Floor-based motion translation (AMASS / the backend's BVH retargeting: feet on SMPL y = 0) ->
    the translation to give :func:`apply_smpl_pose` / the pelvis of ``obj``, whose object location
    already lifts the body by ``floor_lift_of(obj)``. (...,3) -> (...,3)."""
    t = np.array(trans, dtype=np.float64, copy=True)
    t[..., 1] -= floor_lift_of(obj)
    return t


def rig_trans_to_motion(trans: np.ndarray, obj: Any) -> np.ndarray:
    """Inverse of :func:`motion_trans_to_rig` (pelvis translation read from ``obj`` -> floor-based)."""
    t = np.array(trans, dtype=np.float64, copy=True)
    t[..., 1] += floor_lift_of(obj)
    return t


# --------------------------------------------------------------------------- pose / read the armature

def apply_smpl_pose(obj: Any, body_pose: np.ndarray, root_orient: np.ndarray | None = None,
                    trans: np.ndarray | None = None, rig: SMPLRig | None = None,
                    joints: Sequence[int] | None = None) -> None:
    """Pose an SMPL-like armature object (no keyframes).

    Sets ``rotation_mode = 'QUATERNION'`` and ``rotation_quaternion`` on the mapped pose bones (hands
    get identity unless ``body_pose`` has 23 joints), and the pelvis ``location`` when ``trans`` is
    given. ``joints`` restricts the write to those SMPL joint indices (e.g. to keep locked bones).
    """
    rig = rig or SMPLRig.from_armature(obj)
    quats, loc = pose_to_bone_data(body_pose, root_orient, trans, rig)
    if quats.ndim != 2:
        raise ValueError(f"apply_smpl_pose takes one pose, got batch shape {quats.shape[:-2]}")
    todo = rig.present() if joints is None else [j for j in joints if rig.bone_names[j] is not None]
    for j in todo:
        pb = obj.pose.bones[rig.bone_names[j]]
        pb.rotation_mode = 'QUATERNION'
        pb.rotation_quaternion = tuple(float(v) for v in quats[j])
    if loc is not None:
        obj.pose.bones[rig.bone_names[0]].location = tuple(float(v) for v in loc)


def read_pose_quats(obj: Any, rig: SMPLRig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Current pose-bone rotations (24,4) (identity for missing bones; any rotation mode) and pelvis location (3,)."""
    rig = rig or SMPLRig.from_armature(obj)
    quats = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (NUM_JOINTS, 1))
    for j in rig.present():
        pb = obj.pose.bones[rig.bone_names[j]]
        if pb.rotation_mode == 'QUATERNION':
            quats[j] = tuple(pb.rotation_quaternion)
        else:
            quats[j] = tuple(pb.matrix_basis.to_3x3().normalized().to_quaternion())
    loc = np.array(tuple(obj.pose.bones[rig.bone_names[0]].location), dtype=np.float64)
    return quats, loc


def read_smpl_pose(obj: Any, rig: SMPLRig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The armature's current pose as SMPL: (body_pose (21,3), root_orient (3,), trans (3,))."""
    rig = rig or SMPLRig.from_armature(obj)
    quats, loc = read_pose_quats(obj, rig)
    return bone_data_to_pose(quats, loc, rig)


def bone_selected(obj: Any, bone_name: str) -> bool:
    """Selection state of a bone (PoseBone.select on 5.x, Bone.select on 4.x)."""
    pb = obj.pose.bones[bone_name]
    if hasattr(pb, "select"):
        return bool(pb.select)
    return bool(obj.data.bones[bone_name].select)


def kept_joints(obj: Any, rig: SMPLRig) -> list[int]:
    """SMPL body joints (1..21) that Complete keeps: the bone is selected or its X, Y and Z rotation locks are
    on (W alone does not pin a rotation)."""
    names = rig.body_bone_names()
    return _kept_joints([bone_selected(obj, n) for n in names],
                        [all(obj.pose.bones[n].lock_rotation) for n in names])


__all__ = ["SMPLRig", "check_smpl_armature", "pose_to_bone_data", "bone_data_to_pose", "floor_lift_of",
           "motion_trans_to_rig", "rig_trans_to_motion", "apply_smpl_pose", "read_pose_quats", "read_smpl_pose",
           "bone_selected", "kept_joints"]
