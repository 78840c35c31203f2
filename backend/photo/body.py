"""The posed body as the photo fit sees it: keypoints (joints plus offset virtual points) of the SMPL
skeleton under a body pose, by forward kinematics batched over the tree depth."""

from __future__ import annotations

import numpy as np
import torch

from backend.engine.rotations import axis_angle_to_matrix
from dposer_core.skeleton import Skeleton

from .keypoints import KEYPOINT_JOINTS, KEYPOINT_OFFSETS


class KeypointBody:
    """Keypoints of the posed skeleton: FK joints and virtual points in the body frame.

    Forward kinematics batched by tree depth (8 levels for the 22 body joints instead of 21 sequential
    joint updates); the same result as ``kinematics.forward_kinematics`` (tested), about 3x faster
    with autograd at the small batches of a fit.
    """

    def __init__(self, skeleton: Skeleton, device: torch.device) -> None:
        self.skeleton = skeleton
        self.device = device
        self.joints = torch.as_tensor(KEYPOINT_JOINTS, device=device)
        self.offsets = torch.as_tensor(KEYPOINT_OFFSETS, dtype=torch.float32, device=device)
        rest = torch.as_tensor(np.asarray(skeleton.rest_joints[:22]), dtype=torch.float32)
        sh = 0.5 * (rest[16] + rest[17])
        hp = 0.5 * (rest[1] + rest[2])
        self.torso_len = float(torch.linalg.norm(sh - hp))
        parents = list(skeleton.parents[:22])
        depth = [0] * 22
        for j in range(1, 22):
            depth[j] = depth[parents[j]] + 1
        self.levels: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        order: list[int] = [0]
        prev = [0]
        for d in range(1, max(depth) + 1):
            idx = [j for j in range(22) if depth[j] == d]
            ppos = [prev.index(parents[j]) for j in idx]
            off = torch.stack([rest[j] - rest[parents[j]] for j in idx]).to(device)
            self.levels.append((torch.as_tensor(idx, device=device), torch.as_tensor(ppos, device=device), off))
            order += idx
            prev = idx
        self.inv_order = torch.as_tensor(np.argsort(order), device=device)
        self.root = rest[0].to(device)

    def fk(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pose (B,63) -> joints (B,22,3), global rotations (B,22,3,3) (zero root orientation)."""
        B = pose.shape[0]
        local = axis_angle_to_matrix(pose.reshape(B, 21, 3))                          # joints 1..21
        G_prev = torch.eye(3, device=pose.device, dtype=pose.dtype).expand(B, 1, 3, 3)
        J_prev = self.root.to(pose.dtype).expand(B, 1, 3)
        Gs, Js = [G_prev], [J_prev]
        for idx, ppos, off in self.levels:
            Gp = G_prev[:, ppos]
            J_prev = J_prev[:, ppos] + (Gp @ off[None, :, :, None])[..., 0]
            G_prev = Gp @ local[:, idx - 1]
            Gs.append(G_prev)
            Js.append(J_prev)
        J = torch.cat(Js, 1)[:, self.inv_order]
        G = torch.cat(Gs, 1)[:, self.inv_order]
        return J, G

    def __call__(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pose (B,63) -> keypoints (B,K,3), joints (B,22,3) (body frame, root unrotated)."""
        J, G = self.fk(pose)
        kp = J[:, self.joints] + (G[:, self.joints] @ self.offsets[None, :, :, None])[..., 0]
        return kp, J
