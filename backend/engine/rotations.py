"""Rotation conversions in torch, batched over leading ``...`` dimensions.

Named ``<from>_to_<to>`` (as in naver/roma). Quaternions are (w, x, y, z), scalar first.
All functions have finite gradients at the zero rotation (Taylor branches near angle 0).
For numpy-side work, prefer ``scipy.spatial.transform.Rotation``; note scipy's
quaternions are scalar *last* (x, y, z, w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_SMALL = 1e-6


def _safe_angle(axis_angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (theta, theta^2, small mask), each (...,1); theta's gradient is finite at 0."""
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta2 < _SMALL**2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    return theta, theta2, small


def axis_angle_to_quat(axis_angle: torch.Tensor) -> torch.Tensor:
    """(...,3) axis-angle -> (...,4) unit quaternion (w, x, y, z)."""
    theta, theta2, small = _safe_angle(axis_angle)
    half = 0.5 * theta
    # sin(theta/2)/theta with the Taylor series 1/2 - theta^2/48 near 0.
    k = torch.where(small, 0.5 - theta2 / 48.0, torch.sin(half) / theta)
    w = torch.where(small, 1.0 - theta2 / 8.0, torch.cos(half))
    return torch.cat([w, axis_angle * k], dim=-1)


def quat_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """(...,4) quaternion (w, x, y, z), any norm -> (...,3) axis-angle with angle in [0, pi]."""
    q = F.normalize(quat, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)  # w >= 0 gives angle <= pi
    w, xyz = q[..., :1], q[..., 1:]
    s2 = (xyz * xyz).sum(-1, keepdim=True)
    small = s2 < _SMALL**2
    s = torch.sqrt(torch.where(small, torch.ones_like(s2), s2))
    angle = 2.0 * torch.atan2(s, w)
    # angle / |xyz|; near 0 it is 2 atan(s/w)/s = 2/w * (1 - s^2/(3 w^2)) + O(s^4).
    k = torch.where(small, 2.0 / w * (1.0 - s2 / (3.0 * w * w)), angle / s)
    return xyz * k


def quat_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """(...,4) quaternion (w, x, y, z), any norm -> (...,3,3) rotation matrix."""
    w, x, y, z = F.normalize(quat, dim=-1).unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    m = torch.stack([
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    ], dim=-1)
    return m.reshape(quat.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(...,3) axis-angle -> (...,3,3) rotation matrix (Rodrigues; finite gradient at 0)."""
    theta, theta2, small = _safe_angle(axis_angle)
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)  # sin t / t
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2.clamp_min(_SMALL**2))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(axis_angle.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(K)
    return eye + a[..., None] * K + b[..., None] * (K @ K)


def matrix_to_quat(matrix: torch.Tensor) -> torch.Tensor:
    """(...,3,3) rotation matrix -> (...,4) unit quaternion (w, x, y, z), w >= 0.

    Uses the numerically stable branch per element (largest diagonal term).
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    tr = m00 + m11 + m22
    cands = torch.stack([
        torch.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22], -1),
    ], dim=-2)  # (...,4,4): each row is 4 q_i * q (up to sign)
    diag = torch.stack([tr, m00, m11, m22], -1)
    best = diag.argmax(-1, keepdim=True)[..., None].expand(diag.shape[:-1] + (1, 4))
    q = torch.gather(cands, -2, best).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(...,3,3) rotation matrix -> (...,3) axis-angle with angle in [0, pi]."""
    return quat_to_axis_angle(matrix_to_quat(matrix))


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """(...,3,3) -> (...,6): the first two columns (Zhou et al. 2019), column-major."""
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """(...,6) -> (...,3,3) by Gram-Schmidt on the two columns."""
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def axis_angle_to_rot6d(axis_angle: torch.Tensor) -> torch.Tensor:
    """(...,3) -> (...,6)."""
    return matrix_to_rot6d(axis_angle_to_matrix(axis_angle))


def rot6d_to_axis_angle(rot6d: torch.Tensor) -> torch.Tensor:
    """(...,6) -> (...,3)."""
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of (...,4) quaternions (w, x, y, z): the rotation ``a`` after ``b``."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def quat_slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Shortest-arc slerp between (...,4) unit quaternions; ``t`` broadcasts against (...,1)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() == a.dim() - 1:
        t = t[..., None]
    dot = (a * b).sum(-1, keepdim=True)
    b = torch.where(dot < 0, -b, b)
    dot = dot.abs().clamp(max=1.0)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    near = so < 1e-6
    so_safe = torch.where(near, torch.ones_like(so), so)
    wa = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * omega) / so_safe)
    wb = torch.where(near, t, torch.sin(t * omega) / so_safe)
    return F.normalize(wa * a + wb * b, dim=-1)
