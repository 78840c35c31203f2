"""Plausibility: the prior's denoising error per pose and joint (lower = more plausible)."""

from __future__ import annotations

import math

import numpy as np
import torch

from backend.engine import samplers
from backend.engine.prior import PosePrior
from dposer_core.constants import NUM_BODY_JOINTS

from ._common import Monitor, Progress, ShouldCancel, cpu_threads, poses_arg, to_numpy

SCORE_TIMES = (0.05, 0.1, 0.15, 0.2)
SCORE_DRAWS = 4
SCORE_SEED = 1234


def score_z(prior: PosePrior, z: torch.Tensor, chunk: int = 8192, mon: Monitor | None = None) -> torch.Tensor:
    """Per-joint plausibility of z-space poses (N,63) -> (N,21): the squared noise-prediction error
    ||eps_hat - eps||^2 (summed over each joint's 3 dims), averaged over ``SCORE_TIMES`` and
    ``SCORE_DRAWS`` noise draws from a fixed seed (deterministic). Lower = more plausible."""
    fe = prior.fast_eps
    dev = z.device
    N = z.shape[0]
    out = torch.zeros(N, NUM_BODY_JOINTS, device=dev)
    gen = samplers.make_generator(SCORE_SEED, dev)
    D = z.shape[1]
    noise_all = torch.randn((len(SCORE_TIMES), SCORE_DRAWS, 1, D), generator=gen, device=dev)
    # common random numbers across poses: the same draws for every pose (comparable scores)
    for s in range(0, N, chunk):
        zz = z[s:s + chunk]
        n = zz.shape[0]
        acc = torch.zeros(n, NUM_BODY_JOINTS, device=dev)
        for i, t in enumerate(SCORE_TIMES):
            eps = noise_all[i].expand(SCORE_DRAWS, n, D).reshape(-1, D)
            x = prior.sde.perturb(zz.repeat(SCORE_DRAWS, 1), t, eps)
            err = (fe(x, t) - eps).reshape(SCORE_DRAWS, n, NUM_BODY_JOINTS, 3).pow(2).sum(-1)
            acc += err.mean(0)
            if mon is not None:
                mon.tick()
        out[s:s + chunk] = acc / len(SCORE_TIMES)
    return out


def score(prior: PosePrior, poses: np.ndarray, seed: int | None = None, progress: Progress = None,
          should_cancel: ShouldCancel = None) -> dict[str, np.ndarray]:
    """Plausibility of each pose and joint under the prior (lower = more plausible).

    The value is the denoising (noise-prediction) error averaged over a few small diffusion times
    and noise draws with a fixed internal seed, so it is deterministic (``seed`` is ignored).
    A typical training pose scores low; implausible joints stand out in ``joints``.

    Args:
        poses: (N,63) or (63,).
    Returns:
        dict(pose (N,) float32: the score of each pose (the mean over its joints),
             joints (N,21) float32: the score of each joint).
    """
    p, _ = poses_arg(poses, "poses")
    mon = Monitor(progress, should_cancel, len(SCORE_TIMES) * math.ceil(len(p) / 8192), "score")
    mon.check()
    with cpu_threads(prior, len(p) * SCORE_DRAWS), torch.inference_mode():
        j = score_z(prior, prior.normalize(p), mon=mon)
    mon.finish()
    jn = to_numpy(j)
    return {"pose": jn.mean(1), "joints": jn}
