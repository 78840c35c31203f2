"""SMPL forward kinematics and rigid alignment in numpy (float64; for reports, previews and the Blender side).

The torch twin (differentiable, batched) is ``backend/engine/kinematics.py``;
``tests/core/test_kinematics_np.py`` pins :func:`forward_kinematics` to it.
"""

from __future__ import annotations

import numpy as np

from .constants import NUM_BODY_JOINTS
from .rotations_np import axis_angle_to_matrix
from .skeleton import Skeleton, smpl_skeleton


def forward_kinematics(body_pose: np.ndarray, root_orient: np.ndarray | None = None,
                       trans: np.ndarray | None = None, skeleton: Skeleton | None = None,
                       num_joints: int = 22) -> np.ndarray:
    """SMPL forward kinematics of the 22 body joints (pelvis + joints 1..21), or 24 with the hands.

    Args:
        body_pose: (...,63) or (...,21,3) parent-relative axis-angle.
        root_orient: (...,3) pelvis rotation, or None (identity).
        trans: (...,3) added to every joint, or None (pelvis at its rest position).
        skeleton: the kinematic tree (default: the built-in SMPL skeleton).
        num_joints: 22, or 24 (the hand joints get identity rotations), as in the torch twin.

    Returns:
        (...,num_joints,3) joint positions in metres, SMPL frame.
    """
    if num_joints not in (22, 24):
        raise ValueError(f"num_joints must be 22 or 24, got {num_joints}")
    sk = skeleton or smpl_skeleton()
    bp = np.asarray(body_pose, dtype=np.float64)
    lead = bp.shape[:-1] if bp.shape[-1] == 3 * NUM_BODY_JOINTS else bp.shape[:-2]
    bp = bp.reshape(-1, NUM_BODY_JOINTS, 3)
    n = bp.shape[0]
    ro = np.zeros((n, 3)) if root_orient is None else np.asarray(root_orient, np.float64).reshape(n, 3)
    hands = np.zeros((n, num_joints - 22, 3))
    R = axis_angle_to_matrix(np.concatenate([ro[:, None], bp, hands], axis=1))  # (n,J,3,3)
    rest = sk.rest_joints[:num_joints]
    W = np.empty_like(R)
    J = np.empty((n, num_joints, 3))
    W[:, 0] = R[:, 0]
    J[:, 0] = rest[0]
    for j in range(1, num_joints):
        p = sk.parents[j]
        W[:, j] = W[:, p] @ R[:, j]
        J[:, j] = J[:, p] + np.einsum("tij,j->ti", W[:, p], rest[j] - rest[p])
    if trans is not None:
        J = J + np.asarray(trans, np.float64).reshape(n, 1, 3)
    return J.reshape(lead + (num_joints, 3))


def kabsch(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(...,3,3) rotations R minimising sum_k |R u_k - v_k|^2 for point sets u, v (...,K,3) (no centring)."""
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    H = np.einsum("...ki,...kj->...ij", u, v)
    U, _, Vt = np.linalg.svd(H)
    V, Ut = np.swapaxes(Vt, -1, -2), np.swapaxes(U, -1, -2)
    d = np.sign(np.linalg.det(V @ Ut))
    D = np.broadcast_to(np.eye(3), H.shape).copy()
    D[..., 2, 2] = d
    return V @ D @ Ut
