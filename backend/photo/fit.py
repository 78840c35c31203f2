"""Fit the SMPL body to 2D keypoints with a pose prior: the SMPLify objective of the paper (Eq. 11-12).

    E(theta, R, t) = E_J + w_bend E_bend + w_prior E_prior  (+ w_3d E_3D)

* ``E_J``: Geman-McClure-robust reprojection error of the keypoints, each weighted by its detector
  confidence (and its per-keypoint weight); residuals are measured in units of the person's 2D height
  so that the weights do not depend on the image resolution.
* ``E_bend``: SMPLify's bending term on elbows and knees, sum exp(+-theta)^2 of the bending angle
  in the unnatural direction.
* ``E_prior``: the DPoser regulariser (``backend.engine.regularizer.dposer_loss``) at the time of the
  truncated schedule t_max -> t_min, or, for the baselines, a Gaussian fitted to training poses
  (Mahalanobis distance), or nothing.
* ``E_3D`` (on by default when the detector gives them, weight 0.05): root-relative 3D keypoints
  against mediapipe's metric "world" landmarks, Geman-McClure-robust, down-weighted.

Unknowns per hypothesis: the body pose (in the prior's z-space), the global orientation in the camera
frame and the camera translation of a pinhole camera (focal length fixed from the image size unless
given; principal point at the image centre). Two stages as in SMPLify: orientation + translation on
the torso keypoints with the pose held at the training mean, then everything.

Hypotheses are one batch: facing the camera / facing away, each with the detector's left-right labels
as given and swapped (the mirrored / depth-flipped readings of the same 2D points), plus quarter turns
and random pose starts when more are asked for. They are ranked by the final reprojection error plus
the prior's own plausibility score (no ground truth).

Frames: the camera frame is OpenCV's (x right, y down, z forward). Results are also given in the
SMPL native world frame of a camera that sits on the +Z axis looking towards -Z (``CAM_TO_WORLD``), so
a person facing the camera gets the identity ``root_orient``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from backend.engine.kinematics import forward_kinematics
from backend.engine.prior import PosePrior
from backend.engine.regularizer import dposer_loss, truncated_schedule
from backend.engine.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from backend.tasks import canonical_axis_angle, cpu_threads, score
from dposer_core.protocol.errors import TaskCancelled
from dposer_core.constants import POSE_DIM
from dposer_core.skeleton import Skeleton, smpl_skeleton

from .body import KeypointBody
from .keypoints import KEYPOINT_WEIGHTS, NUM_KEYPOINTS, TORSO_KEYPOINTS, Keypoints

CAM_TO_WORLD = np.diag([1.0, -1.0, -1.0])
"""OpenCV camera axes -> SMPL native world axes (Y up) for a camera on +Z looking at the origin."""
PRIOR_KINDS = ("dposer", "gaussian", "none")
# SMPLify's bending term: (index into the 63-D body pose, sign): elbows bend about y, knees about x
BEND_TERMS = ((17 * 3 + 1, 1.0), (18 * 3 + 1, -1.0), (3 * 3 + 0, -1.0), (4 * 3 + 0, -1.0))
FRONT = np.diag([1.0, -1.0, -1.0])  # SMPL body (facing +Z, Y up) facing an OpenCV camera


@dataclass
class GaussianPrior:
    """A single Gaussian over the 63-D axis-angle body pose (the baseline prior, SMPLify-style but one
    component): energy = 0.5 (x - mean)^T precision (x - mean) / 63."""

    mean: np.ndarray
    precision: np.ndarray

    @staticmethod
    def fit(poses: np.ndarray, shrink: float = 1e-3) -> "GaussianPrior":
        """Mean and (shrunk) inverse covariance of training poses (N,63)."""
        p = np.asarray(poses, dtype=np.float64)
        cov = np.cov(p, rowvar=False)
        cov += shrink * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
        return GaussianPrior(p.mean(0).astype(np.float32), np.linalg.inv(cov).astype(np.float32))

    def energy(self, pose: torch.Tensor) -> torch.Tensor:
        """(B,63) -> (B,)."""
        d = pose - torch.as_tensor(self.mean, device=pose.device)
        P = torch.as_tensor(self.precision, device=pose.device)
        return 0.5 * ((d @ P) * d).sum(-1) / POSE_DIM


@dataclass
class FitConfig:
    """Weights and schedule of the fit (defaults: the tuned DPoser setting, see docs/results_issue13.md)."""

    prior: str = "dposer"
    init_steps: int = 20
    steps: int = 100
    lr_pose: float = 0.08
    lr_global: float = 0.03
    gm_sigma: float = 0.04        # Geman-McClure scale, in units of the person's 2D height
    w_bend: float = 0.01
    w_prior: float = 0.001        # DPoser (per unit of dposer_loss) / Gaussian; tuned on held-out renders
    t_max: float = 0.15
    t_min: float = 0.02
    prior_draws: int = 1          # noise draws per step for the DPoser term (averaged: less gradient noise)
    w_3d: float = 0.05            # mediapipe world landmarks (helped on the benchmark renders: docs/results_issue13.md)
    gm_sigma_3d: float = 0.1      # metres
    rank_prior: float = 0.01      # ranking: data loss + rank_prior * prior score (+ rank_swap if labels swapped)
    rank_swap: float = 0.1        # trust the detector's left/right labels: a full-body depth flip with swapped
                                  # labels reprojects (almost) exactly like the original, so 2D cannot tell them apart
    focal: float | None = None    # pixels; None -> 50 mm full-frame equivalent of the longer side
    min_depth: float = 0.3


@dataclass
class FitResult:
    """Ranked hypotheses (best first). Arrays are float32 numpy.

    poses (H,63) body pose; root_orient (H,3) world frame (see module doc); root_orient_cam (H,3) camera
    frame; cam_t (H,3) camera-frame translation; focal (float, px); image_size (w,h);
    projected (H,K,2) fitted keypoints in pixels; data_loss (H,), prior_score (H,), scores (H,) (the
    ranking value, lower = better); labels_swapped (H,) bool; init (list of H names);
    keypoints (K,3) the (x, y, confidence) used; seconds (float).
    """

    poses: np.ndarray
    root_orient: np.ndarray
    root_orient_cam: np.ndarray
    cam_t: np.ndarray
    focal: float
    image_size: tuple[int, int]
    projected: np.ndarray
    data_loss: np.ndarray
    prior_score: np.ndarray
    scores: np.ndarray
    labels_swapped: np.ndarray
    init: list[str]
    keypoints: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def default_focal(image_size: tuple[int, int]) -> float:
    """A 50 mm lens on a 36 mm-wide sensor, in pixels of the longer image side."""
    return float(max(image_size)) * 50.0 / 36.0


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def hypothesis_plan(n: int, seed_count: int = 4) -> list[tuple[str, float, bool, bool]]:
    """(name, yaw, labels swapped, random pose start) for ``max(n, 4)`` starts: front/back x labels
    as detected / swapped, then quarter turns, then random pose starts."""
    plan = [("front", 0.0, False, False), ("back", math.pi, False, False),
            ("front_mirrored", 0.0, True, False), ("back_mirrored", math.pi, True, False),
            ("left_side", math.pi / 2, False, False), ("right_side", -math.pi / 2, False, False)]
    k = 0
    while len(plan) < max(n, seed_count):
        yaw = (0.0, math.pi)[k % 2]
        plan.append((f"random_{k}", yaw, bool((k // 2) % 2), True))
        k += 1
    return plan[:max(n, seed_count)]


def _seed(gen: torch.Generator, seed: int | None) -> None:
    """Seed ``gen`` with ``seed``; None: a random seed."""
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))


def _gm(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure on squared residuals, scaled to [0, 1): r^2 / (r^2 + sigma^2)."""
    return r2 / (r2 + sigma * sigma)


def fit_keypoints(prior: PosePrior, keypoints: Keypoints, n_hypotheses: int = 4, config: FitConfig | None = None,
                  gaussian: GaussianPrior | None = None, skeleton: Skeleton | None = None, seed: int | None = None,
                  progress: Callable[[float, str], None] | None = None,
                  should_cancel: Callable[[], bool] | None = None) -> FitResult:
    """Fit ``max(n_hypotheses, 4)`` hypotheses to ``keypoints``; return the best ``n_hypotheses``, ranked.

    ``prior`` supplies the z-space statistics (all variants optimise in z-space) and, for
    ``config.prior == "dposer"``, the regulariser and the ranking score. ``gaussian`` is required for
    ``config.prior == "gaussian"``. ``skeleton``: the body's skeleton (default: the built-in SMPL one;
    pass the skeleton of an SMPL model file to fit that body's proportions). ``seed``: the random pose
    starts and the regulariser's noise (None: random).
    """
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    cfg = config or FitConfig()
    if cfg.prior not in PRIOR_KINDS:
        raise ValueError(f"prior must be one of {', '.join(PRIOR_KINDS)}, got {cfg.prior!r}")
    if cfg.prior == "gaussian" and gaussian is None:
        raise ValueError("the Gaussian prior needs a fitted GaussianPrior")
    if n_hypotheses < 1:
        raise ValueError(f"n_hypotheses must be >= 1, got {n_hypotheses}")

    dev = prior.device
    plan = hypothesis_plan(n_hypotheses)
    B = len(plan)
    body = KeypointBody(skeleton or smpl_skeleton(), dev)
    w_img, h_img = keypoints.image_size
    focal = float(cfg.focal or default_focal((w_img, h_img)))
    cx, cy = 0.5 * w_img, 0.5 * h_img

    # --- targets per hypothesis (labels as detected or swapped)
    kps = [keypoints.mirrored_labels() if swap else keypoints for _, _, swap, _ in plan]
    xy = torch.as_tensor(np.stack([k.xy for k in kps]), dtype=torch.float32, device=dev)          # (B,K,2)
    conf = torch.as_tensor(np.stack([k.conf for k in kps]), dtype=torch.float32, device=dev)      # (B,K)
    wk = conf * torch.as_tensor(KEYPOINT_WEIGHTS, dtype=torch.float32, device=dev)
    world = None
    if cfg.w_3d > 0 and keypoints.world is not None:
        world = torch.as_tensor(np.stack([k.world for k in kps]), dtype=torch.float32, device=dev)
        hips = [TORSO_KEYPOINTS[2], TORSO_KEYPOINTS[3]]
        world = world - world[:, hips].mean(1, keepdim=True)
    c_np = keypoints.conf
    good = c_np > 0.2
    pts = keypoints.xy[good] if good.sum() >= 4 else keypoints.xy
    person_h = float(max(np.ptp(pts[:, 1]), np.ptp(pts[:, 0]), 0.05 * max(w_img, h_img)))
    torso = [TORSO_KEYPOINTS[0], TORSO_KEYPOINTS[1]], [TORSO_KEYPOINTS[2], TORSO_KEYPOINTS[3]]

    # --- initialisation: roll from the 2D torso axis, depth from the 2D torso length
    sh2 = keypoints.xy[torso[0]].mean(0)
    hp2 = keypoints.xy[torso[1]].mean(0)
    up2 = sh2 - hp2
    len2 = float(np.linalg.norm(up2))
    if len2 < 1e-3:
        up2, len2 = np.array([0.0, -1.0]), 0.3 * person_h
    roll = math.atan2(up2[0], -up2[1])  # 0 when the torso points up the image
    depth = max(focal * body.torso_len / len2, cfg.min_depth + 0.5)
    R0 = np.stack([_rot_z(roll) @ FRONT @ _rot_y(yaw) for _, yaw, _, _ in plan])
    R0_t = torch.as_tensor(R0, dtype=torch.float32, device=dev)
    gen = torch.Generator(device=dev)
    _seed(gen, seed)
    z0 = torch.zeros(B, POSE_DIM, device=dev)
    for i, (_, _, _, rnd) in enumerate(plan):
        if rnd:
            z0[i] = 0.7 * torch.randn(POSE_DIM, generator=gen, device=dev)
    with torch.no_grad():
        kp0, J0 = body(prior.denormalize(z0))
        hip_body = kp0[:, list(torso[1])].mean(1)                                         # (B,3)
        hip_rot = (R0_t @ hip_body[..., None])[..., 0]
    t0 = torch.stack([(float(hp2[0]) - cx) * depth / focal - hip_rot[:, 0],
                      (float(hp2[1]) - cy) * depth / focal - hip_rot[:, 1],
                      depth - hip_rot[:, 2]], dim=1)

    z = z0.clone().requires_grad_(True)
    dR = torch.zeros(B, 3, device=dev, requires_grad=True)
    tr = t0.clone().requires_grad_(True)
    sde = prior.sde
    eps_model = prior.fast_eps if cfg.prior == "dposer" else None
    total_steps = cfg.init_steps + cfg.steps
    sched = truncated_schedule(max(cfg.steps, 1), cfg.t_max, cfg.t_min).tolist()
    torso_mask = torch.zeros(NUM_KEYPOINTS, device=dev)
    torso_mask[list(TORSO_KEYPOINTS)] = 1.0
    noise_gen = torch.Generator(device=dev)
    _seed(noise_gen, None if seed is None else int(seed) + 1)
    bend_idx = torch.as_tensor([i for i, _ in BEND_TERMS], device=dev)
    bend_sign = torch.as_tensor([s for _, s in BEND_TERMS], device=dev)

    def project(pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kp, _ = body(pose)
        R = R0_t @ axis_angle_to_matrix(dR)
        cam = (R[:, None] @ kp[..., None])[..., 0] + tr[:, None]
        zc = cam[..., 2].clamp(min=cfg.min_depth)
        uv = torch.stack([focal * cam[..., 0] / zc + cx, focal * cam[..., 1] / zc + cy], -1)
        return uv, cam

    def data_term(uv: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        r2 = ((uv - xy) / person_h).pow(2).sum(-1)                                          # (B,K)
        return (weights * _gm(r2, cfg.gm_sigma)).sum(-1) / weights.sum(-1).clamp(min=1e-6)

    def term_3d(cam: torch.Tensor) -> torch.Tensor:
        rel = cam - cam[:, list(torso[1])].mean(1, keepdim=True)
        r2 = (rel - world).pow(2).sum(-1)
        return (conf * _gm(r2, cfg.gm_sigma_3d)).sum(-1) / conf.sum(-1).clamp(min=1e-6)

    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise TaskCancelled("photo fit cancelled")

    with cpu_threads(prior, B):
        # stage 1: global orientation + translation on the torso, pose at the start value
        opt = torch.optim.Adam([dR, tr], lr=cfg.lr_global * 2)
        pose0 = prior.denormalize(z0)
        w_torso = wk * torso_mask + 0.1 * wk * (1 - torso_mask)
        for i in range(cfg.init_steps):
            check()
            opt.zero_grad(set_to_none=True)
            uv, _ = project(pose0)
            data_term(uv, w_torso).sum().backward()
            opt.step()
            if progress is not None and i % 10 == 0:
                progress(i / total_steps, "fitting the camera")
        # stage 2: everything
        opt = torch.optim.Adam([{"params": [z], "lr": cfg.lr_pose}, {"params": [dR, tr], "lr": cfg.lr_global}])
        for i in range(cfg.steps):
            check()
            opt.zero_grad(set_to_none=True)
            pose = prior.denormalize(z)
            uv, cam = project(pose)
            loss = data_term(uv, wk)
            bend = torch.exp(pose[:, bend_idx] * bend_sign).pow(2).sum(-1)
            loss = loss + cfg.w_bend * bend
            if cfg.prior == "dposer":
                K = max(1, int(cfg.prior_draws))
                zk = z.repeat(K, 1) if K > 1 else z
                lp = dposer_loss(eps_model, sde, zk, sched[i], generator=noise_gen, reduction="none")
                loss = loss + cfg.w_prior * (lp.reshape(K, B).mean(0) if K > 1 else lp)
            elif cfg.prior == "gaussian":
                loss = loss + cfg.w_prior * gaussian.energy(pose)  # type: ignore[union-attr]
            if world is not None:
                loss = loss + cfg.w_3d * term_3d(cam)
            loss.sum().backward()
            opt.step()
            if progress is not None and i % 10 == 0:
                progress((cfg.init_steps + i) / total_steps, "fitting the pose")

        with torch.no_grad():
            pose = prior.denormalize(z)
            uv, cam = project(pose)
            dl = data_term(uv, wk)
            if cfg.prior == "dposer":
                ps = torch.as_tensor(score(prior, pose.cpu().numpy())["pose"], device=dev)
            elif cfg.prior == "gaussian":
                ps = gaussian.energy(pose)  # type: ignore[union-attr]
            else:
                ps = torch.zeros(B, device=dev)
            swapped = torch.as_tensor([float(p[2]) for p in plan], device=dev)
            rank = dl + cfg.rank_prior * ps + cfg.rank_swap * swapped
            R = R0_t @ axis_angle_to_matrix(dR)
            root_cam = matrix_to_axis_angle(R)
            root_world = matrix_to_axis_angle(torch.as_tensor(CAM_TO_WORLD, dtype=torch.float32, device=dev) @ R)

    order = torch.argsort(rank, stable=True)[:n_hypotheses].cpu().numpy()

    def pick(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()[order].astype(np.float32)

    poses = canonical_axis_angle(pick(pose))
    if progress is not None:
        progress(1.0, "done")
    return FitResult(poses=poses, root_orient=pick(root_world), root_orient_cam=pick(root_cam), cam_t=pick(tr),
                     focal=focal, image_size=(int(w_img), int(h_img)), projected=pick(uv), data_loss=pick(dl),
                     prior_score=pick(ps), scores=pick(rank),
                     labels_swapped=np.array([plan[i][2] for i in order], dtype=bool),
                     init=[plan[i][0] for i in order], keypoints=keypoints.as_array(),
                     seconds=time.perf_counter() - t_start,
                     extra={"cpu_seconds": time.process_time() - cpu_start})


def fk_camera_joints(poses: np.ndarray, root_orient_cam: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """(N,63), (N,3) -> (N,22,3) FK joints rotated into the camera frame (pelvis at its rest place)."""
    with torch.no_grad():
        J, _ = forward_kinematics(torch.as_tensor(poses, dtype=torch.float32),
                                  skeleton=skeleton or smpl_skeleton(), num_joints=22)
        R = axis_angle_to_matrix(torch.as_tensor(root_orient_cam, dtype=torch.float32))
        return (R[:, None] @ J[..., None])[..., 0].numpy()


__all__ = ["FitConfig", "FitResult", "GaussianPrior", "KeypointBody", "fit_keypoints",
           "hypothesis_plan", "default_focal", "fk_camera_joints", "CAM_TO_WORLD", "PRIOR_KINDS", "replace"]
