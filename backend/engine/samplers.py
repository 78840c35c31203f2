"""Samplers for the sub-VP SDE, all driven by one eps-model contract (k-diffusion style):

    eps_model(x: Tensor (B,D), t: Tensor (B,)) -> eps: Tensor (B,D)

* ``sample_euler_maruyama``: the reverse SDE (Song et al. 2021, Eq. 6), 1000 steps on
  linspace(t_start, t_end), returning the noise-free mean of the last step (DPoser's default sampler).
* ``sample_ddim``: few-step DDIM(eta) sampler: x0-prediction (DPoser Eq. 9) re-noised to the next
  time with the sub-VP alpha/sigma; eta = 0 (default) is deterministic, eta = 1 ancestral (the tasks'
  default). ``ddim_step`` is the unit of one step (as diffusers' ``DDIMScheduler.step``).
* ``ode_solve``: the probability-flow ODE dx/dt = f - 1/2 g^2 score (Song et al. 2021, Eq. 13),
  adaptive with ``scipy.integrate.solve_ivp`` (RK45 etc., the batch flattened into one system) or
  fixed-step Euler / Heun in torch (the fast path). ``encode`` / ``decode`` run it between t_eps and T.

All samplers run under ``torch.no_grad()``, take the start state ``x`` (B,D) and return (B,D) in
its dtype/device. ``callback(dict(i=..., t=..., x=..., ...))`` is called once per step (per function
evaluation for the adaptive ODE) and may raise an exception (e.g. ``TaskCancelled``) to cancel; it
propagates to the caller, also out of ``solve_ivp``. ``progress=True`` shows a tqdm bar.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .sde import SubVPSDE, eps_to_x0

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict[str, Any]], None]
GeneratorLike = int | torch.Generator | None


def make_generator(seed_or_generator: GeneratorLike, device: torch.device | str | None = None) -> torch.Generator | None:
    """None -> None (global RNG); an int -> a new ``torch.Generator`` on ``device`` seeded with it;
    a ``torch.Generator`` -> itself."""
    if seed_or_generator is None or isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    if isinstance(seed_or_generator, (int, np.integer)) and not isinstance(seed_or_generator, bool):
        g = torch.Generator(device=torch.device(device) if device is not None else "cpu")
        g.manual_seed(int(seed_or_generator))
        return g
    raise TypeError(f"seed must be None, an int or a torch.Generator, got {type(seed_or_generator).__name__}")


def _tvec(t: float, x: torch.Tensor) -> torch.Tensor:
    """(B,) tensor filled with ``t``, in x's dtype/device."""
    return torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)


def _check_x(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a (B, D) tensor, got {getattr(x, 'shape', type(x))}")


@torch.no_grad()
def sample_euler_maruyama(eps_model: EpsModel, sde: SubVPSDE, x: torch.Tensor, steps: int = 1000,
                          t_start: float = 1.0, t_end: float = 1e-3, generator: GeneratorLike = None,
                          callback: Callback | None = None, progress: bool = False) -> torch.Tensor:
    """Euler-Maruyama on the reverse SDE dx = [f - g^2 score] dt + g dw-bar (score = -eps/sigma).

    The model is evaluated at the ``steps`` times linspace(t_start, t_end, steps); each step moves
    by the grid spacing h = (t_start - t_end)/(steps - 1) except the last, which goes from t_end to 0
    (so the whole of [0, t_start] is covered). Each step: x_mean = x - h * drift,
    x = x_mean + g sqrt(h) z. Returns the final noise-free ``x_mean`` (as score_sde / DPoser).

    Args:
        x: (B,D) start state, normally ``sde.prior_sample`` (or a noised pose for variations).
        generator: a seed or ``torch.Generator`` for the noise (``make_generator``); None = global RNG.
        callback: gets dict(i, t, x (after the step), x_mean, steps).
    Returns:
        (B,D) sample.
    """
    _check_x(x)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    gen = make_generator(generator, x.device)
    ts = np.linspace(t_start, t_end, steps)
    h_grid = (t_start - t_end) / (steps - 1) if steps > 1 else t_start - t_end
    x_mean = x
    for i in tqdm(range(steps), disable=not progress, desc="Euler-Maruyama", leave=False):
        t = float(ts[i])
        h = h_grid if i < steps - 1 else t  # last step: t_end -> 0
        tv = _tvec(t, x)
        eps = eps_model(x, tv)
        drift = sde.reverse_drift(x, tv, eps)
        x_mean = x - h * drift
        if i < steps - 1:
            z = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            x = x_mean + sde.diffusion(tv)[:, None] * (h ** 0.5) * z
        else:
            x = x_mean
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x_mean": x_mean, "steps": steps})
    return x_mean


def ddim_schedule(sde: SubVPSDE, steps: int, t_start: float, t_end: float
                  ) -> tuple[list[float], list[float], list[float]]:
    """The times linspace(t_start, t_end, steps) with alpha_t and sigma_t (computed in float64), as
    Python floats: the schedule of :func:`ddim_step`."""
    ts = np.linspace(t_start, t_end, steps).tolist()
    co = torch.tensor(ts, dtype=torch.float64)
    return ts, sde.alpha(co).tolist(), sde.sigma(co).tolist()


def ddim_step(x: torch.Tensor, eps: torch.Tensor, i: int, alphas: list[float], sigmas: list[float],
              eta: float = 1.0, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM(eta) step from t_i to t_{i+1} of the schedule (``alphas``, ``sigmas``; see
    :func:`ddim_schedule`) (Song et al. 2021, DDIM Eq. 12, with the sub-VP alpha_t and std sigma_t):
    x0 = (x - sigma_t eps)/alpha_t (DPoser Eq. 9), then
    x_s = alpha_s x0 + sqrt(sigma_s^2 - c^2) eps + c z with c = eta sigma_s/sigma_t
    sqrt(sigma_t^2 - (alpha_t/alpha_s)^2 sigma_s^2) (the forward transition's std) and one fresh draw
    z from ``generator``. Returns (x_s, x0); the last step (i = len - 1) returns (x0, x0)."""
    x0 = eps_to_x0(x, eps, alphas[i], sigmas[i])
    if i == len(alphas) - 1:
        return x0, x0
    a_t, s_t, a_s, s_s = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
    c = eta * s_s / s_t * math.sqrt(max(s_t ** 2 - (a_t / a_s) ** 2 * s_s ** 2, 0.0))
    z = torch.randn(tuple(x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return a_s * x0 + math.sqrt(max(s_s ** 2 - c * c, 0.0)) * eps + c * z, x0


@torch.no_grad()
def sample_ddim(eps_model: EpsModel, sde: SubVPSDE, x: torch.Tensor, steps: int = 10, t_start: float = 1.0,
                t_end: float = 1e-3, callback: Callback | None = None, progress: bool = False,
                eta: float = 0.0, generator: GeneratorLike = None) -> torch.Tensor:
    """DDIM-style sampler on the sub-VP schedule, at the ``steps`` times t_i = linspace(t_start, t_end, steps).

    eta = 0 (deterministic): eps = eps_model(x, t_i); x0 = (x - sigma_i eps) / alpha_i (DPoser Eq. 9);
    x <- alpha_{i+1} x0 + sigma_{i+1} eps. eta > 0: :func:`ddim_step` (fresh noise from ``generator``;
    eta = 1 is ancestral sampling). The last step returns x0 (noise-free).

    Args:
        x: (B,D) start state.
        callback: gets dict(i, t, x (after the step), x0 (the prediction), steps).
    Returns:
        (B,D) sample.
    """
    _check_x(x)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if eta != 0.0:
        gen = make_generator(generator, x.device)
        times, al, sg = ddim_schedule(sde, steps, t_start, t_end)
        for i in tqdm(range(steps), disable=not progress, desc=f"DDIM eta={eta:g}", leave=False):
            x, x0 = ddim_step(x, eps_model(x, _tvec(times[i], x)), i, al, sg, eta, gen)
            if callback is not None:
                callback({"i": i, "t": times[i], "x": x, "x0": x0, "steps": steps})
        return x
    ts = np.linspace(t_start, t_end, steps)
    for i in tqdm(range(steps), disable=not progress, desc="DDIM", leave=False):
        t = float(ts[i])
        tv = _tvec(t, x)
        eps = eps_model(x, tv)
        x0 = sde.x0_from_eps(x, tv, eps)
        if i < steps - 1:
            tn = _tvec(float(ts[i + 1]), x)
            x = sde.perturb(x0, tn, eps)
        else:
            x = x0
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x0": x0, "steps": steps})
    return x


def _ode_drift(eps_model: EpsModel, sde: SubVPSDE, x: torch.Tensor, t: float) -> torch.Tensor:
    """Probability-flow drift f - 1/2 g^2 score at scalar time ``t``; (B,D) -> (B,D)."""
    tv = _tvec(t, x)
    return sde.reverse_drift(x, tv, eps_model(x, tv), probability_flow=True)


@torch.no_grad()
def ode_solve(eps_model: EpsModel, sde: SubVPSDE, x: torch.Tensor, t_from: float, t_to: float,
              method: str = "RK45", steps: int | None = None, rtol: float = 1e-4, atol: float = 1e-4,
              callback: Callback | None = None, progress: bool = False) -> torch.Tensor:
    """Integrates the probability-flow ODE (Song et al. 2021, Eq. 13) from ``t_from`` to ``t_to``
    (either direction).

    Args:
        x: (B,D) state at ``t_from``.
        method: "euler" or "heun" (fixed steps in torch; ``steps`` defaults to 100 / 50), or any
            ``scipy.integrate.solve_ivp`` method ("RK45", "RK23", "DOP853", ...) with ``rtol`` /
            ``atol``; the batch is flattened into one system (as the official code).
        callback: fixed-step: dict(i, t, x) after each step; adaptive: dict(i = function
            evaluation count, t, x = the state evaluated) per evaluation. An exception raised by it
            propagates out (cancels).
    Returns:
        (B,D) state at ``t_to``.
    """
    _check_x(x)
    t_from, t_to = float(t_from), float(t_to)
    m = method.lower()
    if m in ("euler", "heun"):
        n = int(steps or (100 if m == "euler" else 50))
        if n < 1:
            raise ValueError(f"steps must be >= 1, got {n}")
        ts = np.linspace(t_from, t_to, n + 1)
        for i in tqdm(range(n), disable=not progress, desc=f"ODE {m}", leave=False):
            t0, t1 = float(ts[i]), float(ts[i + 1])
            h = t1 - t0
            d1 = _ode_drift(eps_model, sde, x, t0)
            if m == "euler":
                x = x + h * d1
            else:
                d2 = _ode_drift(eps_model, sde, x + h * d1, t1)
                x = x + 0.5 * h * (d1 + d2)
            if callback is not None:
                callback({"i": i, "t": t1, "x": x, "steps": n})
        return x

    from scipy.integrate import solve_ivp

    shape, dtype, device = x.shape, x.dtype, x.device
    nfe = [0]
    bar = tqdm(total=abs(t_to - t_from), disable=not progress, desc=f"ODE {method}", leave=False,
               bar_format="{l_bar}{bar}| t={n:.3f}/{total:.3f}")
    last_t = [t_from]

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(np.ascontiguousarray(y)).reshape(shape).to(device=device, dtype=dtype)
        d = _ode_drift(eps_model, sde, xt, float(t))
        nfe[0] += 1
        if callback is not None:
            callback({"i": nfe[0], "t": float(t), "x": xt})
        if progress and abs(t - t_from) > abs(last_t[0] - t_from):
            bar.update(abs(t - last_t[0]))
            last_t[0] = t
        return d.detach().to("cpu", torch.float64).numpy().reshape(-1)

    try:
        y0 = x.detach().to("cpu", torch.float64).numpy().reshape(-1)
        sol = solve_ivp(fun, (t_from, t_to), y0, method=method, rtol=rtol, atol=atol)
    finally:
        bar.close()
    if not sol.success:
        raise RuntimeError(f"probability-flow ODE solver failed: {sol.message}")
    return torch.from_numpy(sol.y[:, -1]).reshape(shape).to(device=device, dtype=dtype)


def encode(eps_model: EpsModel, sde: SubVPSDE, x0: torch.Tensor, t_eps: float = 1e-3, **ode_kwargs: Any) -> torch.Tensor:
    """Data -> latent: the probability-flow ODE from t = ``t_eps`` (x0 taken as x_{t_eps}) to T.
    (B,D) -> (B,D). ``ode_kwargs`` go to :func:`ode_solve` (method, steps, rtol, atol, callback, progress)."""
    return ode_solve(eps_model, sde, x0, t_eps, sde.T, **ode_kwargs)


def decode(eps_model: EpsModel, sde: SubVPSDE, x1: torch.Tensor, t_eps: float = 1e-3, **ode_kwargs: Any) -> torch.Tensor:
    """Latent -> data: the probability-flow ODE from T to ``t_eps``; the inverse of :func:`encode`.
    (B,D) -> (B,D)."""
    return ode_solve(eps_model, sde, x1, sde.T, t_eps, **ode_kwargs)
