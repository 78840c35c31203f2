"""Evaluation metrics. All errors are in millimetres on FK joints of the built-in neutral SMPL skeleton
(root at the origin, zero root orientation: ``dposer_core.kinematics_np.forward_kinematics(poses)``), as in
the DPoser evaluation protocol.

Shapes: poses (N,63) axis-angle; joints (N,22,3) metres.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg

from dposer_core.kinematics_np import kabsch
from dposer_core.skeleton import smpl_skeleton

# 22 FK joints: 0 pelvis, 1 l_hip, 2 r_hip, 3 spine1, 4 l_knee, 5 r_knee, 6 spine2, 7 l_ankle, 8 r_ankle,
# 9 spine3, 10 l_foot, 11 r_foot, 12 neck, 13 l_collar, 14 r_collar, 15 head, 16 l_shoulder,
# 17 r_shoulder, 18 l_elbow, 19 r_elbow, 20 l_wrist, 21 r_wrist.
FOOT_JOINTS = (7, 8, 10, 11)
LEG_JOINTS = (1, 2, 4, 5, 7, 8, 10, 11)
UPPER_JOINTS = tuple(j for j in range(22) if j not in LEG_JOINTS)


def hidden_fk_joints(hidden_body_joints: tuple[int, ...] | list[int]) -> list[int]:
    """FK joints (of the 22) moved by hiding the given body joints (indices into joints 1..21):
    each hidden joint's *children* positions change; we report the positions of every FK joint that
    is a descendant of a hidden joint (including the hidden joint's own child positions)."""
    parents = smpl_skeleton().parents[:22]
    hidden = {j + 1 for j in hidden_body_joints}  # SMPL joint ids
    out = []
    for j in range(22):
        p, moved = parents[j], False
        while p >= 0:
            if p in hidden:
                moved = True
                break
            p = parents[p]
        if moved:
            out.append(j)
    return out


def mpjpe(pred: np.ndarray, gt: np.ndarray, joints: list[int] | tuple[int, ...] | None = None) -> np.ndarray:
    """Per-sample mean per-joint position error in mm: pred/gt (...,J,3) metres -> (...)."""
    d = np.linalg.norm(np.asarray(pred) - np.asarray(gt), axis=-1)
    if joints is not None:
        d = d[..., list(joints)]
    return 1000.0 * d.mean(-1)


def acceleration_mm(joints: np.ndarray) -> float:
    """Mean joint acceleration (mm/frame², norm of the second temporal difference) of (...,T,J,3) metres."""
    j = np.asarray(joints, np.float64)
    return float(1000.0 * np.linalg.norm(j[..., 2:, :, :] - 2 * j[..., 1:-1, :, :] + j[..., :-2, :, :], axis=-1).mean())


def procrustes_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """PA-MPJPE (mm) of (J,3) after the similarity transform (rotation, translation, scale) best
    aligning ``pred`` to ``gt`` (Umeyama: Kabsch rotation, scale = tr(R^T A^T B) / |A|^2 of the centred sets)."""
    mp, mg = pred.mean(0), gt.mean(0)
    A, B = pred - mp, gt - mg
    AR = A @ kabsch(A, B).T
    s = float((AR * B).sum() / (A ** 2).sum())
    return float(1000 * np.linalg.norm(s * AR + mg - gt, axis=-1).mean())


def pelvis_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE (mm) of (J,3) after subtracting each one's pelvis (joint 0)."""
    return float(1000 * np.linalg.norm((pred - pred[0]) - (gt - gt[0]), axis=-1).mean())


def apd(joints: np.ndarray) -> float:
    """Average pairwise distance (cm) between H samples: joints (H,J,3) -> mean over ordered pairs
    i != j of the mean per-joint distance (DPoser reports cm)."""
    j = np.asarray(joints, dtype=np.float64)
    h = j.shape[0]
    if h < 2:
        return 0.0
    d = np.linalg.norm(j[:, None] - j[None], axis=-1).mean(-1)  # (H,H)
    return float(100.0 * d.sum() / (h * (h - 1)))


def apd_batched(joints: np.ndarray) -> float:
    """Mean APD (cm) over N sets of hypotheses: joints (N,H,J,3)."""
    return float(np.mean([apd(x) for x in joints])) if len(joints) else float("nan")


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N,D) and b (M,D)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    off = np.eye(s1.shape[0]) * 1e-10  # tiny ridge: keeps sqrtm well-defined for rank-deficient sets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
        if not np.all(np.isfinite(covmean)):
            off = np.eye(s1.shape[0]) * 1e-6
            covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def nearest_neighbour_mpjpe(query: np.ndarray, ref: np.ndarray, k: int = 8, chunk: int = 512) -> np.ndarray:
    """For each query pose's joints (N,J,3), the MPJPE (mm) to its nearest reference pose (M,J,3):
    candidates by flattened L2 (top ``k``), then exact MPJPE among them. -> (N,)."""
    q = torch.as_tensor(np.asarray(query, np.float32).reshape(len(query), -1))
    r = torch.as_tensor(np.asarray(ref, np.float32).reshape(len(ref), -1))
    k = min(k, len(r))
    out = np.empty(len(q))
    J = np.asarray(query).shape[1]
    with torch.inference_mode():
        for s in range(0, len(q), chunk):
            qq = q[s:s + chunk]
            idx = torch.cdist(qq, r).topk(k, largest=False).indices  # (n,k)
            cand = r[idx].reshape(len(qq), k, J, 3)
            d = (cand - qq.reshape(len(qq), 1, J, 3)).norm(dim=-1).mean(-1)  # (n,k)
            out[s:s + chunk] = 1000.0 * d.min(1).values.numpy()
    return out


def floor_violation(joints: np.ndarray, margin_m: float = 0.05) -> np.ndarray:
    """Foot-below-floor check for a static pose (root at origin): the pose stands on its lowest
    foot joint (ankles/feet); a violation is any non-leg joint (pelvis, spine, head, arms) lying
    more than ``margin_m`` below that floor. joints (N,22,3) -> (N,) bool."""
    j = np.asarray(joints)
    floor = j[:, list(FOOT_JOINTS), 1].min(1)
    lowest_upper = j[:, list(UPPER_JOINTS), 1].min(1)
    return lowest_upper < floor - margin_m


class JointLimits:
    """Data-driven joint limits: per axis-angle component, the [q, 1-q] quantile range of the
    training poses widened by ``widen`` x its width (at least ``min_margin`` radians, 2 deg, so that
    a component constant in training, e.g. toes that are not retargeted, tolerates float noise) on
    each side, plus a total-angle limit per joint (the 1-q quantile of the rotation angle, widened)."""

    def __init__(self, train_poses: np.ndarray, q: float = 0.001, widen: float = 0.1,
                 min_margin: float = 0.035) -> None:
        p = np.asarray(train_poses, np.float64).reshape(-1, 21, 3)
        lo, hi = np.quantile(p, q, axis=0), np.quantile(p, 1 - q, axis=0)
        w = np.maximum(widen * (hi - lo), min_margin)
        self.lo, self.hi = lo - w, hi + w
        ang = np.linalg.norm(p, axis=-1)
        self.max_angle = np.quantile(ang, 1 - q, axis=0) * (1 + widen) + min_margin

    def violations(self, poses: np.ndarray) -> np.ndarray:
        """(N,63) -> (N,) bool: any joint outside its limits."""
        p = np.asarray(poses, np.float64).reshape(-1, 21, 3)
        comp = ((p < self.lo) | (p > self.hi)).any(-1)
        ang = np.linalg.norm(p, axis=-1) > self.max_angle
        return (comp | ang).any(-1)


class VertexMetric:
    """MPVPE (mm) with an SMPL model file (zero root orientation, translation and shape)."""

    def __init__(self, model_path: str) -> None:
        from backend.engine.body_model import load_body_model
        self.model = load_body_model(model_path)

    def vertices(self, poses: np.ndarray, batch: int = 1024) -> np.ndarray:
        """(...,63) -> (...,V,3) float32 metres."""
        p = np.asarray(poses, np.float32)
        flat = p.reshape(-1, 63)
        out = []
        with torch.inference_mode():
            for s in range(0, len(flat), batch):
                out.append(self.model(torch.from_numpy(flat[s:s + batch])).vertices.numpy())
        v = np.concatenate(out, 0)
        return v.reshape(p.shape[:-1] + v.shape[-2:])

    def mpvpe(self, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
        """Per-sample mean vertex error (mm): poses pred (...,63) vs gt (...,63) (broadcast)."""
        return 1000.0 * np.linalg.norm(self.vertices(pred) - self.vertices(gt), axis=-1).mean(-1)


def feet_flat_under_hips(joints: np.ndarray, flat_tol_m: float = 0.04, under_m: float = 0.15,
                         drop_m: float = 0.7) -> np.ndarray:
    """Standing-posture test for static poses (root at the origin, zero root orientation, so "up" is
    the pelvis's +Y): feet flat (both ankles at one height and both toe joints at one height, within
    ``flat_tol_m``, and each foot's ankle-over-toe height within ``flat_tol_m`` of the rest pose's),
    each ankle within ``under_m`` of its hip in the horizontal (X-Z) plane and at least ``drop_m``
    below it (legs under the body, nearly straight). joints (N,22,3) -> (N,) bool."""
    rest = smpl_skeleton().rest_joints
    j = np.asarray(joints)
    y = j[..., 1]
    ok = (np.abs(y[:, 7] - y[:, 8]) < flat_tol_m) & (np.abs(y[:, 10] - y[:, 11]) < flat_tol_m)
    for ankle, toe in ((7, 10), (8, 11)):
        ok &= np.abs((y[:, ankle] - y[:, toe]) - (rest[ankle, 1] - rest[toe, 1])) < flat_tol_m
    for hip, ankle in ((1, 7), (2, 8)):
        horiz = np.linalg.norm(j[:, ankle][:, [0, 2]] - j[:, hip][:, [0, 2]], axis=-1)
        ok &= (horiz < under_m) & (y[:, hip] - y[:, ankle] > drop_m)
    return ok
