"""Rotation conversions in numpy (float64, ``...x3`` / ``...x4`` / ``...x3x3`` batches).

Quaternions are (w, x, y, z). The torch twins are in ``backend/engine/rotations.py``;
``tests/core/test_rotations_np.py`` pins these to them. Small angles use Taylor terms, so values and
gradients stay finite at zero.
"""

from __future__ import annotations

import numpy as np

_SMALL = 1e-8


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(...,3) axis-angle -> (...,3,3) rotation matrices (Rodrigues, float64)."""
    aa = np.asarray(aa, dtype=np.float64)
    theta2 = np.sum(aa * aa, axis=-1)[..., None, None]
    small = theta2 < _SMALL
    theta = np.sqrt(np.where(small, 1.0, theta2))
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(theta) / theta)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(theta)) / np.where(small, 1.0, theta2))
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    return np.eye(3) + a * k + b * (k @ k)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(...,3,3) rotation matrices -> (...,4) unit quaternions (w, x, y, z) with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    tr = m00 + m11 + m22
    cands = np.stack([
        np.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1]], -1),
        np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22], -1),
    ], axis=-2)
    best = np.argmax(np.stack([tr, m00, m11, m22], -1), axis=-1)
    q = np.take_along_axis(cands, best[..., None, None].repeat(4, -1), axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(...,4) quaternions (w, x, y, z), any norm -> (...,3,3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xx, yy, zz, xy, xz, yz, wx, wy, wz = x * x, y * y, z * z, x * y, x * z, y * z, w * x, w * y, w * z
    m = np.stack([1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
                  2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
                  2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(...,4) quaternions (w, x, y, z), any norm -> (...,3) axis-angle with angle in [0, pi]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., :1] < 0, -q, q)
    w, xyz = q[..., :1], q[..., 1:]
    s = np.linalg.norm(xyz, axis=-1, keepdims=True)
    small = s < 1e-7
    angle = 2.0 * np.arctan2(s, w)
    k = np.where(small, 2.0 / np.maximum(w, 1e-12), angle / np.where(small, 1.0, s))
    return xyz * k


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """(...,3,3) rotation matrices -> (...,3) axis-angle with angle in [0, pi]."""
    return quat_to_axis_angle(matrix_to_quat(m))


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """(...,3) axis-angle -> (...,4) unit quaternion (w, x, y, z)."""
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    small = theta < 1e-7
    k = np.where(small, 0.5 - theta * theta / 48.0, np.sin(0.5 * theta) / np.where(small, 1.0, theta))
    return np.concatenate([np.cos(0.5 * theta), aa * k], axis=-1)
