"""Tests for backend.engine.sde: closed forms, the sub-VP std (no square root), simulation."""

from __future__ import annotations

import math

import pytest
import torch

from backend.engine.sde import SubVPSDE, eps_to_x0


def test_paper_table(sde: SubVPSDE) -> None:
    table = {0.05: (0.985, 0.029), 0.1: (0.947, 0.104), 0.2: (0.811, 0.342), 0.3: (0.630, 0.604)}
    for t, (a, s) in table.items():
        assert abs(sde.alpha(t).item() - a) < 6e-4 and abs(sde.sigma(t).item() - s) < 6e-4


def test_closed_forms(sde: SubVPSDE) -> None:
    t = torch.linspace(1e-4, 1.0, 50, dtype=torch.float64)
    b0, b1 = 0.1, 20.0
    assert torch.allclose(sde.beta(t), b0 + t * (b1 - b0))
    la = -0.25 * t**2 * (b1 - b0) - 0.5 * t * b0
    assert torch.allclose(sde.log_alpha(t), la)
    assert torch.allclose(sde.alpha(t), torch.exp(la))
    assert torch.allclose(sde.sigma(t), 1 - torch.exp(la) ** 2)  # no square root
    g = torch.sqrt((b0 + t * (b1 - b0)) * (1 - torch.exp(-2 * b0 * t - (b1 - b0) * t**2)))
    assert torch.allclose(sde.diffusion(t), g)
    # -1/2 int beta = log alpha
    assert torch.allclose(la, -0.5 * (b0 * t + 0.5 * (b1 - b0) * t**2))
    assert abs(sde.sigma(1.0).item() - 1.0) < 1e-4 and sde.alpha(1.0).item() < 0.01
    assert sde.sigma(0.0).item() == 0.0 and sde.alpha(0.0).item() == 1.0


def test_sigma_is_the_std_of_the_forward_sde(sde: SubVPSDE) -> None:
    """v(t) = sigma_t^2 solves dv/dt = -beta v + g^2 (the variance ODE of dx = -1/2 beta x dt + g dw);
    sqrt(1 - alpha^2) (the VP std) does not."""
    t = torch.linspace(1e-3, 1.0, 200, dtype=torch.float64, requires_grad=True)
    v = sde.sigma(t) ** 2
    dv = torch.autograd.grad(v.sum(), t)[0]
    rhs = -sde.beta(t) * v + sde.diffusion(t) ** 2
    assert torch.allclose(dv, rhs, atol=1e-10)
    v_vp = 1 - sde.alpha(t) ** 2
    dv_vp = torch.autograd.grad(v_vp.sum(), t)[0]
    assert not torch.allclose(dv_vp, -sde.beta(t) * v_vp + sde.diffusion(t) ** 2, atol=1e-3)
    # the mean coefficient solves dm/dt = -1/2 beta m
    a = sde.alpha(t)
    da = torch.autograd.grad(a.sum(), t)[0]
    assert torch.allclose(da, -0.5 * sde.beta(t) * a, atol=1e-10)


def test_simulated_forward_sde_matches_marginal(sde: SubVPSDE) -> None:
    g = torch.Generator().manual_seed(0)
    n, t_end, steps = 10000, 0.3, 150
    x0 = torch.tensor([1.5, -0.5], dtype=torch.float64)
    x = x0.expand(n, 2).clone()
    h = t_end / steps
    for i in range(steps):
        t = torch.tensor(i * h, dtype=torch.float64)
        x = x + sde.drift(x, t) * h + sde.diffusion(t) * math.sqrt(h) * torch.randn(n, 2, generator=g, dtype=torch.float64)
    mean, std = sde.marginal(x0[None], t_end)
    assert torch.allclose(x.mean(0), mean[0], atol=0.02)
    assert torch.allclose(x.std(0), std.expand(2), rtol=0.03)
    # and it is NOT the VP std sqrt(1 - alpha^2)
    assert not torch.allclose(x.std(0), torch.sqrt(1 - sde.alpha(t_end) ** 2).expand(2), rtol=0.1)


def test_perturb_marginal_and_eps_inversions(sde: SubVPSDE) -> None:
    x0 = torch.randn(6, 63, dtype=torch.float64)
    z = torch.randn(6, 63, dtype=torch.float64)
    t = torch.rand(6, dtype=torch.float64) * 0.9 + 0.05
    xt = sde.perturb(x0, t, z)
    assert torch.allclose(xt, sde.alpha(t)[:, None] * x0 + sde.sigma(t)[:, None] * z)
    assert torch.allclose(sde.x0_from_eps(xt, t, z), x0)
    a, s = sde.alpha(t)[:, None], sde.sigma(t)[:, None]
    assert torch.equal(eps_to_x0(xt, z, a, s), sde.x0_from_eps(xt, t, z))  # Eq. 9 with given coefficients
    assert torch.allclose(sde.eps_from_x0(xt, t, x0), z)
    mean, std = sde.marginal(x0, 0.3)  # float t
    assert torch.allclose(mean, sde.alpha(0.3).item() * x0) and std.shape == ()
    assert torch.allclose(sde.score_from_eps(z, t), -z / sde.sigma(t)[:, None])
    with pytest.raises(ValueError):
        sde.perturb(x0, torch.rand(5), z)


def test_reverse_drift(sde: SubVPSDE) -> None:
    x = torch.randn(4, 3, dtype=torch.float64)
    eps = torch.randn(4, 3, dtype=torch.float64)
    t = torch.full((4,), 0.4, dtype=torch.float64)
    f = -0.5 * sde.beta(0.4) * x
    s = -eps / sde.sigma(0.4)
    g2 = sde.diffusion(0.4) ** 2
    assert torch.allclose(sde.drift(x, t), f)
    assert torch.allclose(sde.reverse_drift(x, t, eps), f - g2 * s)
    assert torch.allclose(sde.reverse_drift(x, 0.4, eps, probability_flow=True), f - 0.5 * g2 * s)


def test_prior_sample_dict_and_t_from_sigma(sde: SubVPSDE) -> None:
    a = sde.prior_sample((3, 63), generator=torch.Generator().manual_seed(1))
    b = sde.prior_sample((3, 63), generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 63) and a.dtype == torch.float32 and torch.equal(a, b)
    assert SubVPSDE.from_dict(sde.to_dict()).to_dict() == sde.to_dict()
    for t in (0.01, 0.2, 0.7):
        assert abs(sde.t_from_sigma(sde.sigma(t).item()) - t) < 1e-9
    with pytest.raises(ValueError):
        SubVPSDE(beta_min=1.0, beta_max=0.5)
    with pytest.raises(ValueError):
        SubVPSDE.from_dict({"type": "ve", "beta_min": 0.1, "beta_max": 20})
