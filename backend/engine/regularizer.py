"""The DPoser regulariser (paper Algorithm 1, Eq. 8-10): a one-step denoising loss used as a pose
prior when optimising a pose ``x0`` (in z-space) for fitting, completion or denoising.

    step 1 (Eq. 8):   x_t = alpha_t x0 + sigma_t z,               z ~ N(0, I) fresh at every call
    step 2 (Eq. 9):   x0_hat = (x_t - sigma_t eps_hat(x_t, t)) / alpha_t,   gradient stopped
    step 3:           L = w_t || x0 - sg(x0_hat) ||^2

Since x0 - x0_hat = sigma_t / alpha_t (eps_hat - z), the gradient is
dL/dx0 = 2 w_t sigma_t/alpha_t (eps_hat - z) (Eq. 10): a score-distillation-style update that
needs no back-propagation through the network. Time follows the truncated schedule t_max -> t_min.

:func:`dposer_x0_hat` (steps 1-2) is the one step every user shares: :func:`dposer_loss` (autograd,
the photo fit) and, through :func:`dposer_grad` (x0 - sg(x0_hat), Eq. 10 up to the factor 2 w_t),
the tasks' closed-form updates (completion, in-between refinement, motion denoising).
"""

from __future__ import annotations

import torch

from .samplers import EpsModel, GeneratorLike, make_generator
from .sde import SubVPSDE, _bcast, eps_to_x0


def truncated_schedule(n_steps: int, t_max: float = 0.2, t_min: float = 1e-3) -> torch.Tensor:
    """(n_steps,) float32 times running linearly from ``t_max`` down to ``t_min`` (the paper's
    "truncated" schedule; use ``schedule[i]`` at optimisation step i)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    return torch.linspace(float(t_max), float(t_min), int(n_steps))


def dposer_weight(sde: SubVPSDE, t: float | torch.Tensor) -> torch.Tensor:
    """w_t = 0.5 sqrt(1 + alpha_t / sigma_t) (the official completion weight); shaped like ``t``."""
    return 0.5 * torch.sqrt(1.0 + sde.alpha(t) / sde.sigma(t))


def schedule_coefs(sde: SubVPSDE, n_steps: int, t_max: float, t_min: float
                   ) -> tuple[list[float], list[float], list[float], list[float]]:
    """:func:`truncated_schedule` with alpha_t, sigma_t and :func:`dposer_weight` w_t per step, as
    Python floats computed once in float64: (ts, alphas, sigmas, weights)."""
    t = truncated_schedule(n_steps, t_max, t_min).double()
    return t.tolist(), sde.alpha(t).tolist(), sde.sigma(t).tolist(), dposer_weight(sde, t).tolist()


def dposer_x0_hat(eps_model: EpsModel, x0: torch.Tensor, t: float | torch.Tensor, alpha_t: float | torch.Tensor,
                  sigma_t: float | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 steps 1-2: x_t = alpha_t x0 + sigma_t noise (Eq. 8), then the one-step denoised
    x0_hat = (x_t - sigma_t eps(x_t, t)) / alpha_t (Eq. 9). ``t`` is passed to ``eps_model`` as given;
    alpha_t, sigma_t are floats or tensors broadcastable against x0 (B,D); noise broadcasts too."""
    x_t = alpha_t * x0 + sigma_t * noise
    return eps_to_x0(x_t, eps_model(x_t, t), alpha_t, sigma_t)


def dposer_grad(eps_model: EpsModel, x0: torch.Tensor, t: float | torch.Tensor, alpha_t: float | torch.Tensor,
                sigma_t: float | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x0 - sg(x0_hat) (B,D): the gradient of 1/2 ||x0 - sg(x0_hat)||^2 in closed form (Eq. 10 without
    the weight; no back-propagation through the network). Call it without autograd (inference mode)."""
    return x0 - dposer_x0_hat(eps_model, x0, t, alpha_t, sigma_t, noise)


def dposer_loss(eps_model: EpsModel, sde: SubVPSDE, x0: torch.Tensor, t: float | torch.Tensor,
                weight: float | torch.Tensor | None = None, generator: GeneratorLike = None,
                noise: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """DPoser loss (Algorithm 1) of poses ``x0`` (B,D) in z-space at time ``t``.

    Args:
        eps_model: eps(x (B,D), t (B,)) -> (B,D); called under ``no_grad`` on the detached x_t.
        x0: (B,D) poses being optimised (requires_grad for use in an optimiser).
        t: float or (B,) times (e.g. ``truncated_schedule(n)[step]``).
        weight: w_t; None -> :func:`dposer_weight` (a float or (B,) tensor overrides it).
        generator: seed / ``torch.Generator`` for the fresh noise z.
        noise: (B,D) explicit z instead of a fresh draw (tests, common random numbers).
        reduction: "mean" -> scalar: w_t * squared error summed over the D dims, averaged over the
            batch; "none" -> (B,) per pose; "elementwise" -> (B,D) weighted squared errors.
    Returns:
        The loss (see ``reduction``); its gradient w.r.t. x0 is 2 w_t sigma_t/alpha_t (eps_hat - z) / B
        for "mean" (Eq. 10).
    """
    if x0.dim() != 2:
        raise ValueError(f"x0 must be (B, D), got {tuple(x0.shape)}")
    B = x0.shape[0]
    tv = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
    if tv.dim() == 0:
        tv = tv.expand(B)
    if noise is None:
        gen = make_generator(generator, x0.device)
        noise = torch.randn(x0.shape, generator=gen, device=x0.device, dtype=x0.dtype)
    with torch.no_grad():  # Eq. 8-9, stop-gradient
        a_t, s_t = _bcast(sde.alpha(tv), x0), _bcast(sde.sigma(tv), x0)
        x0_hat = dposer_x0_hat(eps_model, x0.detach(), tv, a_t, s_t, noise)
    w = dposer_weight(sde, tv) if weight is None else torch.as_tensor(weight, dtype=x0.dtype, device=x0.device)
    if w.dim() == 0:
        w = w.expand(B)
    sq = (x0 - x0_hat) ** 2 * _bcast(w.to(x0.dtype), x0)
    if reduction == "elementwise":
        return sq
    per = sq.sum(-1)
    if reduction == "none":
        return per
    if reduction == "mean":
        return per.mean()
    raise ValueError(f"reduction must be 'mean', 'none' or 'elementwise', got {reduction!r}")
