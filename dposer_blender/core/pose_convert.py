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

The maths is pure numpy (batched over any leading dimensions, e.g. T frames × 24 bones) on the rest
rotations ``M_b``; reading them from an armature and posing it is :mod:`..blender.rig`.
"""

from __future__ import annotations

import numpy as np

from ..dposer_core.constants import NUM_BODY_JOINTS, NUM_JOINTS
from ..dposer_core.rotations_np import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_quat, quat_to_matrix

#: Change of basis SMPL -> Blender: (x, y, z) -> (x, -z, y).
SMPL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: Change of basis Blender -> SMPL (the transpose).
BLENDER_TO_SMPL = SMPL_TO_BLENDER.T.copy()


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


__all__ = ["SMPL_TO_BLENDER", "BLENDER_TO_SMPL", "smpl_to_pose_quats", "pose_quats_to_smpl",
           "trans_to_pelvis_location", "pelvis_location_to_trans", "smpl_points_to_blender",
           "blender_points_to_smpl"]
