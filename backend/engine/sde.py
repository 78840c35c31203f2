"""The sub-VP SDE of DPoser (Song et al. 2021, "Score-Based Generative Modeling through SDEs", Eq. 29;
DPoser Sec. 3.1), continuous time t in [0, T], T = 1.

    beta(t)      = beta_0 + t (beta_1 - beta_0)                     (beta_0 = 0.1, beta_1 = 20)
    log alpha_t  = -1/4 t^2 (beta_1 - beta_0) - 1/2 t beta_0         (= -1/2 int_0^t beta)
    sigma_t      = 1 - alpha_t^2                                     (NO square root, see below)
    forward SDE  dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 beta_0 t - (beta_1-beta_0) t^2))) dw
    x_t | x_0    ~ N(alpha_t x_0, sigma_t^2 I)

Why ``sigma_t = 1 - alpha_t^2`` is a *standard deviation*: with B(t) = int_0^t beta, alpha_t = e^{-B/2}
and g(t)^2 = beta(t) (1 - e^{-2B}). The variance v(t) of x_t | x_0 solves the linear ODE
dv/dt = -beta v + g^2 with v(0) = 0, whose solution is v = (1 - e^{-B})^2 = (1 - alpha_t^2)^2.
So the sub-VP std is 1 - alpha_t^2 itself (the VP SDE would give std sqrt(1 - alpha_t^2)); this is
what ``marginal_prob`` returns in yang-song/score_sde_pytorch ``sde_lib.subVPSDE`` and in the
official DPoser code. ``tests/backend/engine/test_engine_sde.py`` checks the ODE above numerically.

The network predicts the noise eps (x_t = alpha_t x_0 + sigma_t eps); the score is -eps / sigma_t.

Shapes: ``t`` is a Python float, a 0-d tensor or a (B,) tensor matching the first dimension of
``x`` (B, ...); coefficients are broadcast over the trailing dimensions of ``x``.
"""

from __future__ import annotations

import math

import torch

Time = float | torch.Tensor


def _as_t(t: Time, like: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` as a tensor (float64 if it was a Python number and ``like`` is None)."""
    if isinstance(t, torch.Tensor):
        return t if like is None else t.to(dtype=like.dtype, device=like.device)
    if like is None:
        return torch.tensor(float(t), dtype=torch.float64)
    return torch.tensor(float(t), dtype=like.dtype, device=like.device)


def _bcast(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshapes a 0-d or (B,) coefficient to broadcast against ``x`` (B, ...)."""
    if coef.dim() == 0:
        return coef
    if coef.dim() == 1 and x.dim() >= 1 and coef.shape[0] in (x.shape[0], 1):
        return coef.reshape((coef.shape[0],) + (1,) * (x.dim() - 1))
    raise ValueError(f"time of shape {tuple(coef.shape)} does not match x of shape {tuple(x.shape)}")


class SubVPSDE:
    """Sub-VP SDE with a linear beta schedule (the DPoser / score_sde ``subVPSDE``).

    Args:
        beta_min: beta_0 (0.1).
        beta_max: beta_1 (20.0).
        T: end time (1.0).

    Methods taking ``t`` accept a float or a tensor (0-d or (B,)); those taking ``x`` (B, D) return
    tensors shaped like ``x``; pure functions of ``t`` return tensors shaped like ``t``.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0) -> None:
        if not (beta_max > beta_min > 0 and T > 0):
            raise ValueError(f"need beta_max > beta_min > 0 and T > 0, got {beta_min}, {beta_max}, {T}")
        self.beta_min = float(beta_min)
        self.beta_max = float(beta_max)
        self.T = float(T)

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain dict ``{"type": "subvp", "beta_min", "beta_max", "T"}`` (stored in checkpoints)."""
        return {"type": "subvp", "beta_min": self.beta_min, "beta_max": self.beta_max, "T": self.T}

    @staticmethod
    def from_dict(d: dict) -> "SubVPSDE":
        """Inverse of :meth:`to_dict`."""
        if d.get("type", "subvp") != "subvp":
            raise ValueError(f"unsupported SDE type {d.get('type')!r} (only 'subvp')")
        return SubVPSDE(float(d["beta_min"]), float(d["beta_max"]), float(d.get("T", 1.0)))

    def __repr__(self) -> str:
        return f"SubVPSDE(beta_min={self.beta_min}, beta_max={self.beta_max}, T={self.T})"

    # ---- schedule --------------------------------------------------------------------------------
    def beta(self, t: Time) -> torch.Tensor:
        """beta(t) = beta_0 + t (beta_1 - beta_0); shaped like ``t``."""
        t = _as_t(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_alpha(self, t: Time) -> torch.Tensor:
        """log alpha_t = -1/4 t^2 (beta_1 - beta_0) - 1/2 t beta_0 (score_sde's ``log_mean_coeff``)."""
        t = _as_t(t)
        return -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t: Time) -> torch.Tensor:
        """alpha_t = exp(log alpha_t): the mean coefficient of x_t | x_0."""
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: Time) -> torch.Tensor:
        """sigma_t = 1 - alpha_t^2: the *standard deviation* of x_t | x_0 (sub-VP; see module doc).

        Computed as ``-expm1(2 log alpha_t)`` for accuracy at small t.
        """
        return -torch.expm1(2.0 * self.log_alpha(t))

    # ---- forward process -------------------------------------------------------------------------
    def marginal(self, x0: torch.Tensor, t: Time) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean alpha_t x0 (shaped like ``x0``) and std sigma_t (broadcastable against ``x0``)."""
        tt = _as_t(t, x0)
        return _bcast(self.alpha(tt), x0) * x0, _bcast(self.sigma(tt), x0)

    def perturb(self, x0: torch.Tensor, t: Time, noise: torch.Tensor) -> torch.Tensor:
        """x_t = alpha_t x0 + sigma_t noise (DPoser Eq. 8 / Algorithm 1 step 1); shaped like ``x0``."""
        mean, std = self.marginal(x0, t)
        return mean + std * noise

    def drift(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """Forward drift f(x, t) = -1/2 beta(t) x; shaped like ``x``."""
        return -0.5 * _bcast(self.beta(_as_t(t, x)), x) * x

    def diffusion(self, t: Time) -> torch.Tensor:
        """g(t) = sqrt(beta(t) (1 - exp(-2 beta_0 t - (beta_1 - beta_0) t^2))); shaped like ``t``."""
        t = _as_t(t)
        discount = -torch.expm1(-2.0 * self.beta_min * t - (self.beta_max - self.beta_min) * t * t)
        return torch.sqrt(self.beta(t) * discount)

    def prior_sample(self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A draw from the prior p_T = N(0, I) (alpha_1 ~ 0.0066, sigma_1 ~ 1), shape ``shape``."""
        if generator is not None and device is None:
            device = generator.device
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype or torch.float32)

    # ---- reverse process -------------------------------------------------------------------------
    def score_from_eps(self, eps: torch.Tensor, t: Time) -> torch.Tensor:
        """score = -eps / sigma_t; shaped like ``eps`` (B, D)."""
        return -eps / _bcast(self.sigma(_as_t(t, eps)), eps)

    def reverse_drift(self, x: torch.Tensor, t: Time, eps: torch.Tensor,
                      probability_flow: bool = False) -> torch.Tensor:
        """Drift of the reverse-time process (Song et al. 2021, Eq. 6 / Eq. 13), shaped like ``x``.

        SDE: f - g^2 s ; probability-flow ODE: f - 1/2 g^2 s, with s = -eps / sigma_t.
        (The same function with a flag, like ``sde_lib.SDE.reverse``.) The reverse SDE's diffusion is
        g(t); the ODE has none.
        """
        tt = _as_t(t, x)
        g2 = _bcast(self.diffusion(tt) ** 2, x)
        s = self.score_from_eps(eps, tt)
        return self.drift(x, tt) - (0.5 if probability_flow else 1.0) * g2 * s

    def x0_from_eps(self, x_t: torch.Tensor, t: Time, eps: torch.Tensor) -> torch.Tensor:
        """x0-prediction (x_t - sigma_t eps) / alpha_t (DPoser Eq. 9 / Algorithm 1 step 2), the
        coefficients computed at ``t`` in x_t's dtype (see :func:`eps_to_x0` for given ones)."""
        tt = _as_t(t, x_t)
        return eps_to_x0(x_t, eps, _bcast(self.alpha(tt), x_t), _bcast(self.sigma(tt), x_t))

    def eps_from_x0(self, x_t: torch.Tensor, t: Time, x0: torch.Tensor) -> torch.Tensor:
        """The eps that maps ``x0`` to ``x_t``: (x_t - alpha_t x0) / sigma_t."""
        tt = _as_t(t, x_t)
        return (x_t - _bcast(self.alpha(tt), x_t) * x0) / _bcast(self.sigma(tt), x_t)

    def t_from_sigma(self, sigma: float) -> float:
        """The time t at which sigma_t = ``sigma`` (0 < sigma < 1), by solving the quadratic in t."""
        if not 0.0 < sigma < 1.0:
            raise ValueError(f"sigma must be in (0, 1), got {sigma}")
        b = -0.5 * math.log(1.0 - sigma)  # = -log alpha = 1/4 t^2 d + 1/2 t b0
        d = self.beta_max - self.beta_min
        return (-0.5 * self.beta_min + math.sqrt(0.25 * self.beta_min ** 2 + d * b)) / (0.5 * d)


def eps_to_x0(x_t: torch.Tensor, eps: torch.Tensor, alpha_t: float | torch.Tensor,
              sigma_t: float | torch.Tensor) -> torch.Tensor:
    """x0-prediction (x_t - sigma_t eps) / alpha_t (DPoser Eq. 9) with given coefficients (Python
    floats, e.g. from a float64 schedule, or tensors broadcastable against ``x_t``)."""
    return (x_t - sigma_t * eps) / alpha_t
