"""Validation during training: left-leg completion MPJPE on held-out poses (the official recipe)."""

from __future__ import annotations

import numpy as np
import torch

from backend.engine.kinematics import forward_kinematics
from backend.engine.prior import PosePrior
from backend.evaluation.metrics import hidden_fk_joints, mpjpe
from backend.tasks import complete
from dposer_core.constants import BODY_MASKS
from dposer_core.keep import keep_from_mask

__all__ = ["left_leg_completion_mm"]


def left_leg_completion_mm(prior: PosePrior, poses: np.ndarray, hypotheses: int, seed: int = 0) -> dict[str, float]:
    """Left-leg completion MPJPE (mm) with :func:`backend.tasks.complete` (the official recipe).

    Args:
        poses: (N,63) ground-truth body poses; the left hip, knee, ankle and foot rotations are hidden.
    Returns:
        {"best": best-of-H, "mean": mean over the H hypotheses}, over the FK joints the hidden
        rotations move (root at the origin).
    """
    hidden = BODY_MASKS["left_leg"]
    keep = keep_from_mask("left_leg")
    out = complete(prior, poses, keep, n_hypotheses=hypotheses, seed=seed)["poses"]  # (N,H,63)
    j_pred = forward_kinematics(torch.as_tensor(out, device=prior.device))[0].cpu().numpy()
    j_gt = forward_kinematics(torch.as_tensor(poses, device=prior.device))[0].cpu().numpy()
    err = mpjpe(j_pred, j_gt[:, None], hidden_fk_joints(hidden))  # (N,H)
    return {"best": float(err.min(1).mean()), "mean": float(err.mean())}

