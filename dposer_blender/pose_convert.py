"""The one conversion between SMPL axis-angle poses and Blender pose-bone quaternions.

Frames
------
SMPL native frame: +Y up, body facing +Z, +X is the subject's left (metres).
Blender armature space: +Z up, character facing -Y, +X is the subject's left.
The change of basis is ``C``::

    (x, y, z)_smpl  ->  (x, -z, y)_blender        C = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]

Derivation
----------
Let ``M_b`` be the armature-space rest rotation of bone ``b`` (``bone.matrix_local.to_3x3()``) and
``Q_b`` the rotation of its ``matrix_basis`` (``pose_bone.rotation_quaternion``). Blender poses a bone
as ``P_b = P_p · (Rest_p⁻¹ · Rest_b) · Basis_b``, so the rotation that bone ``b`` applies relative to
its rest, ``D_b = G_b · M_bᵀ`` (``G_b`` = posed armature-space rotation), satisfies

    D_b = D_p · (M_b · Q_b · M_bᵀ)

and each posed head is ``head_b = head_p + D_p · (rest_head_b - rest_head_p)``.
SMPL forward kinematics is ``W_b = W_p · R_b`` and ``J_b = J_p + W_p · (r_b - r_p)``. Matching
``D_b = C · W_b · Cᵀ`` for every bone gives ``M_b Q_b M_bᵀ = C R_b Cᵀ``, i.e.

    Q_b = M_bᵀ · C · R_b · Cᵀ · M_b

(the same for the pelvis with ``root_orient``), and then every posed head equals ``C · J_b`` plus
the rig's constant offset, whatever the bone rolls or directions are. Translation: the pelvis's
``location`` is expressed in its rest frame, so ``location = M_pelvisᵀ · C · trans``.

The maths is pure numpy (batched over any leading dimensions, e.g. T frames × 24 bones). The
functions taking an armature object only read ``bone.matrix_local`` / write pose-bone attributes,
so this module never imports ``bpy``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .dposer_core.rotations_np import (axis_angle_to_matrix, axis_angle_to_quat,  # noqa: F401 (callers migrate)
                                        matrix_to_axis_angle, matrix_to_quat, quat_to_axis_angle, quat_to_matrix)
from .dposer_core.skeleton import NUM_BODY_JOINTS, NUM_JOINTS, joint_names, smpl_skeleton

#: Change of basis SMPL -> Blender: (x, y, z) -> (x, -z, y).
SMPL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: Change of basis Blender -> SMPL (the transpose).
BLENDER_TO_SMPL = SMPL_TO_BLENDER.T.copy()

#: SMPL joints that must exist for an armature to count as SMPL-like (pelvis..right_wrist).
REQUIRED_JOINTS = 22



# --------------------------------------------------------------------------- pure conversion

def _as_local_axis_angle(body_pose: np.ndarray, root_orient: np.ndarray | None) -> np.ndarray:
    """Body pose (...,63|69) or (...,21|23,3) + root (...,3) -> (...,24,3) SMPL local axis-angle."""
    bp = np.asarray(body_pose, dtype=np.float64)
    if bp.shape[-1] in (3 * NUM_BODY_JOINTS, 3 * (NUM_JOINTS - 1)):
        bp = bp.reshape(bp.shape[:-1] + (bp.shape[-1] // 3, 3))
    if bp.ndim < 2 or bp.shape[-1] != 3 or bp.shape[-2] not in (NUM_BODY_JOINTS, NUM_JOINTS - 1):
        raise ValueError(f"body_pose must be (...,63), (...,21,3), (...,69) or (...,23,3); got {bp.shape}")
    batch = bp.shape[:-2]
    if root_orient is None:
        ro = np.zeros(batch + (3,))
    else:
        ro = np.broadcast_to(np.asarray(root_orient, dtype=np.float64), batch + (3,))
    out = np.zeros(batch + (NUM_JOINTS, 3))
    out[..., 0, :] = ro
    out[..., 1:1 + bp.shape[-2], :] = bp
    return out


def smpl_to_pose_quats(body_pose: np.ndarray, root_orient: np.ndarray | None, rest_rots: np.ndarray,
                       axis: np.ndarray = SMPL_TO_BLENDER) -> np.ndarray:
    """SMPL local axis-angle -> pose-bone quaternions ``Q_b = M_bᵀ · C · R_b · Cᵀ · M_b``.

    Args:
        body_pose: (...,63) / (...,21,3) body pose (joints 1..21), or (...,69) / (...,23,3) with hands.
        root_orient: (...,3) global orientation of the pelvis, or None for zero.
        rest_rots: (24,3,3) armature-space rest rotation of each SMPL bone (``SMPLRig.rest_rots``).
        axis: the SMPL -> armature-space change of basis (default ``SMPL_TO_BLENDER``).

    Returns:
        (...,24,4) float64 quaternions (w, x, y, z), w >= 0, in SMPL joint order.
    """
    r = axis_angle_to_matrix(_as_local_axis_angle(body_pose, root_orient))  # (...,24,3,3)
    m = np.asarray(rest_rots, dtype=np.float64)
    cm = np.asarray(axis, dtype=np.float64)
    q = np.swapaxes(m, -1, -2) @ cm @ r @ cm.T @ m
    return matrix_to_quat(q)


def pose_quats_to_smpl(quats: np.ndarray, rest_rots: np.ndarray,
                       axis: np.ndarray = SMPL_TO_BLENDER) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`smpl_to_pose_quats`: ``R_b = Cᵀ · M_b · Q_b · M_bᵀ · C``.

    Args:
        quats: (...,22|24,4) pose-bone quaternions (w, x, y, z) in SMPL joint order.
        rest_rots: (24,3,3) armature-space rest rotations.

    Returns:
        body_pose (...,21,3) axis-angle (angles in [0, pi]) and root_orient (...,3).
    """
    q = np.asarray(quats, dtype=np.float64)
    n = q.shape[-2]
    m = np.asarray(rest_rots, dtype=np.float64)[:n]
    cm = np.asarray(axis, dtype=np.float64)
    r = cm.T @ m @ quat_to_matrix(q) @ np.swapaxes(m, -1, -2) @ cm
    aa = matrix_to_axis_angle(r)
    return aa[..., 1:1 + NUM_BODY_JOINTS, :], aa[..., 0, :]


def trans_to_pelvis_location(trans: np.ndarray, pelvis_rest_rot: np.ndarray,
                             axis: np.ndarray = SMPL_TO_BLENDER) -> np.ndarray:
    """SMPL translation (...,3) -> pelvis pose-bone ``location`` (...,3): ``M_pelvisᵀ · C · trans``."""
    t = np.asarray(trans, dtype=np.float64)
    return t @ (np.asarray(pelvis_rest_rot, dtype=np.float64).T @ axis).T


def pelvis_location_to_trans(location: np.ndarray, pelvis_rest_rot: np.ndarray,
                             axis: np.ndarray = SMPL_TO_BLENDER) -> np.ndarray:
    """Pelvis pose-bone ``location`` (...,3) -> SMPL translation (...,3): ``Cᵀ · M_pelvis · location``."""
    loc = np.asarray(location, dtype=np.float64)
    return loc @ (axis.T @ np.asarray(pelvis_rest_rot, dtype=np.float64)).T


def smpl_points_to_blender(points: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """(...,3) SMPL-frame points -> Blender armature space: ``C · p + offset``."""
    p = np.asarray(points, dtype=np.float64) @ SMPL_TO_BLENDER.T
    return p if offset is None else p + np.asarray(offset, dtype=np.float64)


def blender_points_to_smpl(points: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """(...,3) Blender armature-space points -> SMPL frame: ``Cᵀ · (p - offset)``."""
    p = np.asarray(points, dtype=np.float64)
    if offset is not None:
        p = p - np.asarray(offset, dtype=np.float64)
    return p @ SMPL_TO_BLENDER


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


# --------------------------------------------------------------------------- rig mapping

_SIDE = {"l": "left", "r": "right"}
_PREFIXES = ("m_avg_", "f_avg_", "smpl_", "smplx_", "smplh_")


def normalize_bone_name(name: str) -> str:
    """Canonical SMPL name for a bone name from the SMPL-X add-on (``left_hip``), the SMPL add-on / FBX
    (``L_Hip``, ``m_avg_L_Hip``) or similar; unknown names are returned lower-cased."""
    n = name.strip().lower()
    for p in _PREFIXES:
        if n.startswith(p):
            n = n[len(p):]
            break
    m = re.match(r"^([lr])[_.]?(.+)$", n)
    if m and m.group(2) in ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist", "hand"):
        n = f"{_SIDE[m.group(1)]}_{m.group(2)}"
    return n


def find_smpl_bones(bone_names: Sequence[str]) -> list[str | None]:
    """Map the 24 SMPL joints to bone names of a rig (exact name first, then aliases); None where missing."""
    names = list(bone_names)
    exact = set(names)
    canon: dict[str, str] = {}
    for n in names:
        canon.setdefault(normalize_bone_name(n), n)
    return [j if j in exact else canon.get(j) for j in joint_names()]


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
    mapping = find_smpl_bones([b.name for b in obj.data.bones])
    missing = [joint_names()[j] for j in range(REQUIRED_JOINTS) if mapping[j] is None]
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


__all__ = [
    "SMPL_TO_BLENDER", "BLENDER_TO_SMPL", "REQUIRED_JOINTS", "SMPLRig",
    "smpl_to_pose_quats", "pose_quats_to_smpl", "trans_to_pelvis_location",
    "pelvis_location_to_trans", "smpl_points_to_blender", "blender_points_to_smpl", "normalize_bone_name",
    "find_smpl_bones", "check_smpl_armature", "pose_to_bone_data", "bone_data_to_pose", "apply_smpl_pose",
    "read_pose_quats", "read_smpl_pose", "floor_lift_of", "motion_trans_to_rig", "rig_trans_to_motion",
]
