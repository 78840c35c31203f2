"""Non-learned baselines for the evaluation (numpy in / numpy out).

Shapes: poses (N,63) axis-angle; joints (T,22,3) metres; quaternions (w,x,y,z).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage, signal
from scipy.spatial.transform import Rotation

from backend.data.resample import slerp

# ------------------------------------------------------------------ completion


def mean_pose_fill(pose: np.ndarray, keep: np.ndarray, mean_pose: np.ndarray) -> np.ndarray:
    """Hidden joints set to the training mean pose. pose (N,63), keep (21,) bool, mean (63,) -> (N,63)."""
    pose = np.asarray(pose, np.float32)
    dims = np.repeat(np.asarray(keep, bool), 3)
    out = np.broadcast_to(np.asarray(mean_pose, np.float32), pose.shape).copy()
    out[:, dims] = pose[:, dims]
    return out


def nn_retrieval_fill(pose: np.ndarray, keep: np.ndarray, train_poses: np.ndarray, k: int = 10,
                      chunk: int = 256) -> np.ndarray:
    """Nearest-neighbour retrieval on the kept joints: the ``k`` training poses closest on the kept
    axis-angle dims (nearest first) supply the hidden dims; kept dims are pasted back.
    pose (N,63), keep (21,) bool, train (M,63) -> (N,k,63)."""
    pose = np.asarray(pose, np.float32)
    dims = np.repeat(np.asarray(keep, bool), 3)
    tr = torch.as_tensor(np.asarray(train_poses, np.float32))
    trk = tr[:, torch.as_tensor(dims)]
    out = np.empty((len(pose), k, 63), np.float32)
    with torch.inference_mode():
        for s in range(0, len(pose), chunk):
            q = torch.as_tensor(pose[s:s + chunk][:, dims])
            idx = torch.cdist(q, trk).topk(k, largest=False).indices  # (n,k)
            out[s:s + chunk] = tr[idx].numpy()
    out[:, :, dims] = pose[:, None, dims]
    return out


# ------------------------------------------------------------------ denoising (on joint positions)


def gaussian_filter(joints: np.ndarray, sigma: float) -> np.ndarray:
    """Temporal Gaussian filter (frames) on (...,T,J,3) joint positions (edges: nearest)."""
    if sigma <= 0:
        return np.asarray(joints).copy()
    return ndimage.gaussian_filter1d(np.asarray(joints, np.float64), sigma, axis=-3, mode="nearest")


def butterworth(joints: np.ndarray, cutoff_hz: float, order: int, fps: float = 30.0) -> np.ndarray:
    """Zero-phase Butterworth low-pass (``filtfilt``) on (...,T,J,3) joint positions."""
    b, a = signal.butter(order, cutoff_hz / (0.5 * fps), btype="low")
    x = np.asarray(joints, np.float64)
    padlen = min(3 * max(len(a), len(b)), x.shape[-3] - 1)
    return signal.filtfilt(b, a, x, axis=-3, padlen=padlen, padtype="odd")


def tune_filter(noisy: np.ndarray, clean: np.ndarray, kind: str, fps: float = 30.0) -> dict:
    """Grid-search a filter's parameters minimising MPJPE (windows (W,T,J,3)).
    Returns {"params": {...}, "mpjpe_mm": float}."""
    best: dict = {"mpjpe_mm": float("inf"), "params": {}}

    def err(y: np.ndarray) -> float:
        return float(1000.0 * np.linalg.norm(y - clean, axis=-1).mean())

    if kind == "gaussian":
        for s in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0):
            e = err(gaussian_filter(noisy, s))
            if e < best["mpjpe_mm"]:
                best = {"mpjpe_mm": e, "params": {"sigma": s}}
    elif kind == "butterworth":
        for order in (1, 2, 3, 4):
            for fc in (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
                e = err(butterworth(noisy, fc, order, fps))
                if e < best["mpjpe_mm"]:
                    best = {"mpjpe_mm": e, "params": {"cutoff_hz": fc, "order": order}}
    else:
        raise ValueError(f"unknown filter {kind!r}")
    return best


def apply_filter(noisy: np.ndarray, kind: str, params: dict, fps: float = 30.0) -> np.ndarray:
    """Applies a tuned filter (see :func:`tune_filter`)."""
    if kind == "gaussian":
        return gaussian_filter(noisy, params["sigma"])
    return butterworth(noisy, params["cutoff_hz"], params["order"], fps)


# ------------------------------------------------------------------ interpolation


def _quats(poses: np.ndarray) -> np.ndarray:
    """(N,63) axis-angle -> (N,21,4) quaternions (w,x,y,z)."""
    q = Rotation.from_rotvec(np.asarray(poses, np.float64).reshape(-1, 3)).as_quat()  # x,y,z,w
    return q[:, [3, 0, 1, 2]].reshape(len(poses), 21, 4)


def _aa(quats: np.ndarray) -> np.ndarray:
    """(N,21,4) (w,x,y,z) -> (N,63) axis-angle."""
    q = quats.reshape(-1, 4)[:, [1, 2, 3, 0]]
    return Rotation.from_quat(q).as_rotvec().reshape(len(quats), 63).astype(np.float32)


def slerp_fill(key_a: np.ndarray, key_b: np.ndarray, k: int) -> np.ndarray:
    """Per-joint quaternion slerp of the ``k`` frames strictly between two keys (63,) -> (k,63)."""
    qa, qb = _quats(key_a[None])[0], _quats(key_b[None])[0]
    return _aa(slerp(qa, qb, (np.arange(1, k + 1) / (k + 1))[:, None, None]))


def cubic_fill(keys: np.ndarray, key_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Blender-like cubic interpolation: per-joint quaternion components (sign-aligned to the previous
    key) interpolated by a Catmull-Rom / cardinal Hermite spline through the keys, then normalised.
    keys (K,63) at increasing ``key_times`` (K,), evaluated at ``times`` (n,) -> (n,63)."""
    q = _quats(keys)
    for i in range(1, len(q)):
        s = np.sign((q[i] * q[i - 1]).sum(-1, keepdims=True))
        q[i] *= np.where(s == 0, 1, s)
    kt = np.asarray(key_times, np.float64)
    K = len(kt)
    # finite-difference tangents (non-uniform Catmull-Rom), one-sided at the ends
    m = np.empty_like(q)
    for i in range(K):
        lo, hi = max(i - 1, 0), min(i + 1, K - 1)
        m[i] = (q[hi] - q[lo]) / (kt[hi] - kt[lo]) if hi > lo else 0.0
    out = np.empty((len(times), 21, 4))
    for n, t in enumerate(np.asarray(times, np.float64)):
        i = int(np.clip(np.searchsorted(kt, t, side="right") - 1, 0, K - 2))
        h = kt[i + 1] - kt[i]
        s = (t - kt[i]) / h
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        out[n] = h00 * q[i] + h10 * h * m[i] + h01 * q[i + 1] + h11 * h * m[i + 1]
    return _aa(out / np.linalg.norm(out, axis=-1, keepdims=True))


# ------------------------------------------------------------------ generation


class GaussianPoseModel:
    """A full-covariance Gaussian fitted to training poses (63-D axis-angle)."""

    def __init__(self, train_poses: np.ndarray) -> None:
        p = np.asarray(train_poses, np.float64)
        self.mean = p.mean(0)
        self.cov = np.cov(p, rowvar=False) + 1e-8 * np.eye(p.shape[1])

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """(n,63) float32 samples."""
        rng = np.random.default_rng(seed)
        return rng.multivariate_normal(self.mean, self.cov, size=n).astype(np.float32)
