"""The demo's noisy motion: joint positions with noise, turned back into rotations that reach them.

The forward kinematics and the rigid fit are ``dposer_core.kinematics_np``; the extension's operators do the
real work.
"""

from __future__ import annotations

import numpy as np

from dposer_core.kinematics_np import forward_kinematics, kabsch
from dposer_core.rotations_np import axis_angle_to_matrix, matrix_to_axis_angle
from dposer_core.skeleton import smpl_skeleton

NUM = 22  # pelvis + the 21 body joints


def _skeleton() -> tuple[list[int], np.ndarray]:
    sk = smpl_skeleton()
    return [int(p) for p in sk.parents[:NUM]], np.asarray(sk.rest_joints[:NUM], dtype=np.float64)


def body_joint_names() -> list[str]:
    """The 22 joint names (pelvis first) in FK order."""
    return list(smpl_skeleton().names[:NUM])


def fk(body: np.ndarray, root: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(T,22,3) joint positions, SMPL frame, metres."""
    return forward_kinematics(body, root, trans)


def swing(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T,3,3) minimal rotations taking directions u (T,3) to v (T,3)."""
    a = u / np.linalg.norm(u, axis=-1, keepdims=True)
    b = v / np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    return np.eye(3) + K + (K @ K) / (1.0 + c)[..., None, None]


def reach(body: np.ndarray, root: np.ndarray, trans: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Body pose (T,63) whose joints point at ``targets`` (T,22,3), root kept: each joint is turned (on top of
    its clean rotation) so its bones aim at its children's targets (a minimal swing for one child, the
    best-fitting rotation for several). Bone lengths are fixed, so only the noise across the bones stays."""
    parents, rest = _skeleton()
    children = {j: [c for c in range(NUM) if parents[c] == j] for j in range(NUM)}
    T = body.shape[0]
    R = axis_angle_to_matrix(np.concatenate([root.reshape(T, 1, 3), body.reshape(T, 21, 3)], axis=1))
    W = np.empty_like(R)
    J = np.empty((T, NUM, 3))
    W[:, 0], J[:, 0] = R[:, 0], rest[0] + trans
    Rn = R.copy()
    for j in range(1, NUM):
        p = parents[j]
        J[:, j] = J[:, p] + np.einsum("tij,j->ti", W[:, p], rest[j] - rest[p])
        Wc = W[:, p] @ R[:, j]
        ch = children[j]
        if ch:
            u = np.stack([np.einsum("tij,j->ti", Wc, rest[c] - rest[j]) for c in ch], axis=1)
            v = np.stack([targets[:, c] - J[:, j] for c in ch], axis=1)
            S = swing(u[:, 0], v[:, 0]) if len(ch) == 1 else kabsch(u, v)
            Wc = S @ Wc
            Rn[:, j] = np.swapaxes(W[:, p], -1, -2) @ Wc
        W[:, j] = Wc
    return matrix_to_axis_angle(Rn[:, 1:]).reshape(T, 63)


def body_local(J: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Joints relative to the pelvis in the body frame (x = subject's left, y = up, z = forward)."""
    W0 = axis_angle_to_matrix(root)  # (T,3,3)
    return np.einsum("tji,tkj->tki", W0, J - J[:, :1])
