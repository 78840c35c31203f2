"""Samplers on an analytic Gaussian data distribution whose exact eps(x, t) is known (conftest)."""

from __future__ import annotations

import pytest
import torch

from backend.engine.samplers import (ddim_schedule, ddim_step, decode, encode, make_generator, ode_solve,
                                     sample_ddim, sample_euler_maruyama)
from backend.engine.sde import SubVPSDE

N = 3000


class Cancel(Exception):
    pass


def _moments_ok(y: torch.Tensor, g, mean_tol: float = 0.05, cov_tol: float = 0.06) -> None:
    assert torch.isfinite(y).all()
    assert (y.double().mean(0) - g.mu).abs().max() < mean_tol
    assert (torch.cov(y.double().T) - g.cov).abs().max() < cov_tol


def _x(sde: SubVPSDE, n: int = N, seed: int = 0) -> torch.Tensor:
    return sde.prior_sample((n, 3), generator=make_generator(seed))


def test_make_generator() -> None:
    assert make_generator(None) is None
    g = torch.Generator()
    assert make_generator(g) is g
    a, b = make_generator(5), make_generator(5)
    assert torch.equal(torch.randn(3, generator=a), torch.randn(3, generator=b))
    with pytest.raises(TypeError):
        make_generator("5")


def test_euler_maruyama_recovers_gaussian(sde, gaussian) -> None:
    seen = []
    y = sample_euler_maruyama(gaussian, sde, _x(sde), generator=1, callback=lambda d: seen.append((d["i"], d["t"])))
    _moments_ok(y, gaussian)
    assert len(seen) == 1000 and seen[0] == (0, 1.0) and abs(seen[-1][1] - 1e-3) < 1e-12
    assert gaussian.calls == 1000


def test_euler_maruyama_deterministic_under_seed(sde, gaussian) -> None:
    x = _x(sde, 50)
    a = sample_euler_maruyama(gaussian, sde, x, steps=30, generator=7)
    b = sample_euler_maruyama(gaussian, sde, x, steps=30, generator=torch.Generator().manual_seed(7))
    c = sample_euler_maruyama(gaussian, sde, x, steps=30, generator=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    d = sample_euler_maruyama(gaussian, sde, x, steps=30)
    torch.manual_seed(3)
    assert torch.equal(d, sample_euler_maruyama(gaussian, sde, x, steps=30))


def test_ddim_deterministic_and_recovers_gaussian(sde, gaussian) -> None:
    x = _x(sde)
    a = sample_ddim(gaussian, sde, x, steps=10)
    assert torch.equal(a, sample_ddim(gaussian, sde, x, steps=10)) and gaussian.calls == 20
    assert (a.double().mean(0) - gaussian.mu).abs().max() < 0.05  # 10 steps: mean right, spread rougher
    _moments_ok(sample_ddim(gaussian, sde, x, steps=50), gaussian, cov_tol=0.06)
    # one step is the x0-prediction at t_start
    one = sample_ddim(gaussian, sde, x[:4], steps=1, t_start=0.5)
    t = torch.full((4,), 0.5)
    assert torch.allclose(one, sde.x0_from_eps(x[:4], t, gaussian(x[:4], t)))


def test_ddim_eta_recovers_gaussian_and_is_seeded(sde, gaussian) -> None:
    x = _x(sde)
    y = sample_ddim(gaussian, sde, x, steps=200, eta=1.0, generator=3)  # converges slower than eta 0
    _moments_ok(y, gaussian)
    a = sample_ddim(gaussian, sde, x[:20], steps=8, eta=1.0, generator=3)
    assert torch.equal(a, sample_ddim(gaussian, sde, x[:20], steps=8, eta=1.0, generator=3))
    assert not torch.equal(a, sample_ddim(gaussian, sde, x[:20], steps=8, eta=1.0, generator=4))
    assert not torch.equal(a, sample_ddim(gaussian, sde, x[:20], steps=8))


def test_ddim_step(sde, gaussian) -> None:
    ts, al, sg = ddim_schedule(sde, 3, 0.8, 0.1)
    assert ts == pytest.approx([0.8, 0.45, 0.1]) and al[0] == pytest.approx(sde.alpha(0.8).item())
    x = _x(sde, 6)
    tv = torch.full((6,), ts[0])
    eps = gaussian(x, tv)
    x1, x0 = ddim_step(x, eps, 0, al, sg, eta=0.0)
    assert torch.allclose(x0, sde.x0_from_eps(x, tv, eps), atol=1e-5)
    assert torch.allclose(x1, al[1] * x0 + sg[1] * eps, atol=1e-5)  # eta 0: re-noised with the same eps
    last, x0_last = ddim_step(x, eps, 2, al, sg, eta=1.0)
    assert torch.equal(last, x0_last)


@pytest.mark.parametrize("method,steps", [("RK45", None), ("heun", 50), ("euler", 100)])
def test_probability_flow_ode_recovers_gaussian(sde, gaussian, method: str, steps) -> None:
    y = ode_solve(gaussian, sde, _x(sde), 1.0, 1e-3, method=method, steps=steps)
    _moments_ok(y, gaussian)
    assert y.dtype == torch.float32 and y.shape == (N, 3)


def test_encode_decode_round_trip(sde, gaussian) -> None:
    x0 = (torch.randn(300, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
          @ torch.linalg.cholesky(gaussian.cov).T + gaussian.mu).float()
    z = encode(gaussian, sde, x0, rtol=1e-6, atol=1e-6)
    assert (decode(gaussian, sde, z, rtol=1e-6, atol=1e-6) - x0).abs().max() < 1e-3
    # the latent of data is ~ N(0, I)
    assert z.mean(0).abs().max() < 0.2 and (z.std(0) - 1).abs().max() < 0.15
    # fixed-step Heun round trip too
    zh = encode(gaussian, sde, x0, method="heun", steps=100)
    assert (decode(gaussian, sde, zh, method="heun", steps=100) - x0).abs().max() < 1e-3
    # default tolerances (1e-4) are close enough for poses
    zd = encode(gaussian, sde, x0)
    assert (decode(gaussian, sde, zd) - x0).abs().max() < 2e-2


@pytest.mark.parametrize("run", [
    lambda m, s, x, cb: sample_euler_maruyama(m, s, x, steps=20, callback=cb, generator=0),
    lambda m, s, x, cb: sample_ddim(m, s, x, steps=20, callback=cb),
    lambda m, s, x, cb: sample_ddim(m, s, x, steps=20, callback=cb, eta=1.0, generator=0),
    lambda m, s, x, cb: ode_solve(m, s, x, 1.0, 1e-3, method="euler", steps=20, callback=cb),
    lambda m, s, x, cb: ode_solve(m, s, x, 1.0, 1e-3, method="heun", steps=20, callback=cb),
    lambda m, s, x, cb: ode_solve(m, s, x, 1.0, 1e-3, method="RK45", callback=cb),
    lambda m, s, x, cb: encode(m, s, x, callback=cb),
], ids=["em", "ddim", "ddim_eta", "euler", "heun", "rk45", "encode"])
def test_callback_can_cancel(sde, gaussian, run) -> None:
    seen = []

    def cb(d: dict) -> None:
        assert {"i", "t", "x"} <= set(d) and d["x"].shape == (8, 3)
        seen.append(d["i"])
        if len(seen) == 3:
            raise Cancel("stop")

    with pytest.raises(Cancel):
        run(gaussian, sde, _x(sde, 8), cb)
    assert len(seen) == 3


def test_progress_bar_and_bad_input(sde, gaussian) -> None:
    y = sample_ddim(gaussian, sde, _x(sde, 4), steps=3, progress=True)
    assert y.shape == (4, 3)
    ode_solve(gaussian, sde, _x(sde, 4), 1.0, 0.5, progress=True)
    with pytest.raises(ValueError):
        sample_ddim(gaussian, sde, torch.zeros(3), steps=3)
    with pytest.raises(ValueError):
        sample_euler_maruyama(gaussian, sde, _x(sde, 2), steps=0)


def test_samplers_work_with_a_network_eps_model(sde) -> None:
    from backend.engine.network import NetworkConfig, ScoreMLP
    net = ScoreMLP(NetworkConfig(dim=3, hidden=32, time_embed_dim=16, groups=4)).eval()
    x = _x(sde, 5)
    for y in (sample_ddim(net, sde, x, steps=5), sample_euler_maruyama(net, sde, x, steps=5, generator=0),
              ode_solve(net, sde, x, 1.0, 1e-3, method="heun", steps=5)):
        assert y.shape == (5, 3) and torch.isfinite(y).all() and not y.requires_grad
