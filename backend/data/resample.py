"""Frame-rate resampling of motion channels (numpy): slerp for rotations, linear for the rest."""

from __future__ import annotations

import numpy as np

__all__ = ["resample_rotations", "resample_linear", "slerp", "normalize"]


def normalize(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """``v`` scaled to unit length along the last axis (vectors, quaternions); zero stays near zero."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def slerp(q0: np.ndarray, q1: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (either component order) at fractions ``a``
    (broadcast against the (...,1) dot products), along the shorter arc; unit results."""
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    omega = np.arccos(dot)
    so = np.sin(omega)
    near = so < 1e-6
    so_safe = np.where(near, 1.0, so)
    w0 = np.where(near, 1.0 - a, np.sin((1.0 - a) * omega) / so_safe)
    w1 = np.where(near, a, np.sin(a * omega) / so_safe)
    return normalize(w0 * q0 + w1 * q1)


def resample_rotations(quats: np.ndarray, src_fps: float, dst_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Slerp-resample rotation sequences.

    Args:
        quats: (T,K,4) scipy-order (x,y,z,w) unit quaternions sampled at ``src_fps``.

    Returns:
        (T2,K,4) quaternions at ``dst_fps`` covering the same duration, and the (T2,) fractional
        source-frame positions they were taken at (for resampling other channels linearly).
    """
    T = quats.shape[0]
    # BVH frame times are rounded (0.0333333, 0.00833333): snap rates within 0.01 % of an integer.
    if abs(src_fps - round(src_fps)) < 1e-4 * src_fps:
        src_fps = float(round(src_fps))
    if T == 0 or abs(src_fps - dst_fps) < 1e-6 * dst_fps:
        return quats.copy(), np.arange(T, dtype=np.float64)
    duration = (T - 1) / src_fps
    n2 = int(np.floor(duration * dst_fps + 1e-6)) + 1
    pos = np.arange(n2) * (src_fps / dst_fps)
    pos = np.minimum(pos, T - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, T - 1)
    return slerp(quats[i0], quats[i1], (pos - i0)[:, None, None]), pos


def resample_linear(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(T,...) sampled at integer frames -> values at fractional frame positions ``pos`` (T2,)."""
    if x.shape[0] == 0:
        return x.copy()
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, x.shape[0] - 1)
    a = (pos - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1 - a) * x[i0] + a * x[i1]
