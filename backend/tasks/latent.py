"""ODE latents: poses <-> the probability-flow ODE's state at t = 1 (Song et al. 2021, Eq. 13)."""

from __future__ import annotations

import numpy as np
import torch

from backend.engine import samplers
from backend.engine.prior import PosePrior

from ._common import T_EPS, Monitor, Progress, ShouldCancel, cpu_threads, poses_arg, to_numpy, z_to_pose

ODE_DEFAULTS = {"method": "heun", "steps": 20}


def ode_between(prior: PosePrior, x: torch.Tensor, t_from: float, t_to: float, method: str, steps: int | None,
                mon: Monitor | None) -> torch.Tensor:
    """The probability-flow ODE in z-space from ``t_from`` to ``t_to`` with the cached eps model;
    progress per step (fixed-step methods) or by time covered (adaptive). (B,63) -> (B,63)."""
    m = method.lower()
    cb = None
    if mon is not None:
        if m in ("euler", "heun"):
            cb = mon.callback()
        else:  # adaptive: progress by time covered
            span = abs(t_to - t_from)
            base = mon.done

            def cb(info: dict) -> None:
                mon.report((base + mon.total * 0.5 * abs(info["t"] - t_from) / span) / mon.total
                           if mon.total > 1 else abs(info["t"] - t_from) / span)
                mon.check()
    return samplers.ode_solve(prior.fast_eps, prior.sde, x, t_from, t_to, method=method, steps=steps, callback=cb)


def encode(prior: PosePrior, poses: np.ndarray, method: str = ODE_DEFAULTS["method"],
           steps: int | None = ODE_DEFAULTS["steps"], seed: int | None = None,
           progress: Progress = None, should_cancel: ShouldCancel = None) -> np.ndarray:
    """Poses -> ODE latents (probability-flow ODE from t = 1e-3 to 1 in z-space).

    Args:
        poses: (N,63) or (63,).
        method: "heun" (fixed steps, default 20 steps = 40 network calls), "euler" or an adaptive
            scipy method ("RK45", with rtol = atol = 1e-4 as the official code).
        seed: unused (the ODE is deterministic); accepted for a uniform signature.
    Returns:
        (N,63) float32 latents (or (63,) for a single pose).
    """
    p, single = poses_arg(poses, "poses")
    mon = Monitor(progress, should_cancel, steps or 1, "encode")
    mon.check()
    with cpu_threads(prior, len(p)), torch.inference_mode():
        lat = ode_between(prior, prior.normalize(p), T_EPS, prior.sde.T, method, steps, mon)
    mon.finish()
    out = to_numpy(lat)
    return out[0] if single else out


def decode(prior: PosePrior, latents: np.ndarray, method: str = ODE_DEFAULTS["method"],
           steps: int | None = ODE_DEFAULTS["steps"], seed: int | None = None,
           progress: Progress = None, should_cancel: ShouldCancel = None) -> np.ndarray:
    """ODE latents -> poses (the inverse of :func:`encode`). latents (N,63)|(63,) -> (N,63)|(63,)."""
    lat, single = poses_arg(latents, "latents")
    mon = Monitor(progress, should_cancel, steps or 1, "decode")
    mon.check()
    with cpu_threads(prior, len(lat)), torch.inference_mode():
        z = ode_between(prior, torch.as_tensor(lat, device=prior.device), prior.sde.T, T_EPS, method, steps, mon)
        out = z_to_pose(prior, z)
    mon.finish()
    return out[0] if single else out
