"""The DPoser regulariser (Algorithm 1, Eq. 8-10)."""

from __future__ import annotations

import math

import pytest
import torch

from backend.engine.network import NetworkConfig, ScoreMLP
from backend.engine.regularizer import (dposer_grad, dposer_loss, dposer_weight, dposer_x0_hat, schedule_coefs,
                                        truncated_schedule)


def test_truncated_schedule() -> None:
    s = truncated_schedule(100)
    assert s.shape == (100,) and s[0].item() == pytest.approx(0.2) and s[-1].item() == pytest.approx(1e-3)
    assert (s[1:] < s[:-1]).all()
    assert torch.allclose(truncated_schedule(3, 0.3, 0.05), torch.tensor([0.3, 0.175, 0.05]))
    assert truncated_schedule(1).tolist() == pytest.approx([0.2])
    with pytest.raises(ValueError):
        truncated_schedule(0)


def test_weight(sde) -> None:
    for t in (0.05, 0.2, 0.5):
        a, s = sde.alpha(t).item(), sde.sigma(t).item()
        assert dposer_weight(sde, t).item() == pytest.approx(0.5 * math.sqrt(1 + a / s))
    assert dposer_weight(sde, torch.tensor([0.1, 0.2])).shape == (2,)


@pytest.mark.parametrize("t", [0.1, 0.3])
def test_gradient_is_proportional_to_eps_error(sde, gaussian, t: float) -> None:
    """dL/dx0 = 2 w sigma/alpha (eps_hat - z) / B  (Eq. 10), with a fixed z."""
    g = torch.Generator().manual_seed(0)
    B = 6
    x0 = torch.randn(B, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    z = torch.randn(B, 3, generator=g, dtype=torch.float64)
    loss = dposer_loss(gaussian, sde, x0, t, noise=z)
    loss.backward()
    tv = torch.full((B,), t, dtype=torch.float64)
    xt = sde.perturb(x0.detach(), tv, z)
    eps_hat = gaussian(xt, tv)
    a, s, w = sde.alpha(t), sde.sigma(t), dposer_weight(sde, t)
    expect = 2 * w * s / a * (eps_hat - z) / B
    assert torch.allclose(x0.grad, expect, atol=1e-10)
    # the loss value: w * ||x0 - x0_hat||^2 summed over dims, averaged over the batch
    x0_hat = sde.x0_from_eps(xt, tv, eps_hat)
    assert loss.item() == pytest.approx((w * ((x0.detach() - x0_hat) ** 2).sum(-1)).mean().item())


def test_fresh_noise_generator_weight_and_reductions(sde, gaussian) -> None:
    x0 = torch.randn(4, 3)
    a = dposer_loss(gaussian, sde, x0, 0.2, generator=1)
    assert a.item() == dposer_loss(gaussian, sde, x0, 0.2, generator=1).item()
    assert a.item() != dposer_loss(gaussian, sde, x0, 0.2, generator=2).item()
    z = torch.randn(4, 3)
    base = dposer_loss(gaussian, sde, x0, 0.2, noise=z, weight=1.0)
    assert dposer_loss(gaussian, sde, x0, 0.2, noise=z, weight=3.0).item() == pytest.approx(3 * base.item(), rel=1e-5)
    per = dposer_loss(gaussian, sde, x0, 0.2, noise=z, weight=1.0, reduction="none")
    el = dposer_loss(gaussian, sde, x0, 0.2, noise=z, weight=1.0, reduction="elementwise")
    assert per.shape == (4,) and el.shape == (4, 3)
    assert torch.allclose(per.mean(), base) and torch.allclose(el.sum(-1), per)
    tb = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert dposer_loss(gaussian, sde, x0, tb, noise=z, reduction="none").shape == (4,)
    with pytest.raises(ValueError):
        dposer_loss(gaussian, sde, x0, 0.2, reduction="sum")


def test_no_gradient_into_network_and_optimiser_step(sde) -> None:
    net = ScoreMLP(NetworkConfig(dim=3, hidden=32, time_embed_dim=16, groups=4)).eval()
    x0 = torch.zeros(5, 3, requires_grad=True)
    opt = torch.optim.SGD([x0], lr=0.1)
    for i, t in enumerate(truncated_schedule(3)):
        opt.zero_grad()
        dposer_loss(net, sde, x0, float(t), generator=i).backward()
        opt.step()
    assert all(p.grad is None for p in net.parameters())
    assert x0.grad is not None and torch.isfinite(x0).all() and x0.abs().sum() > 0


def test_pulls_towards_data(sde, gaussian) -> None:
    """Gradient descent on the expected loss moves an outlier towards the data mean."""
    x0 = torch.tensor([[4.0, 4.0, 4.0]], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x0], lr=0.05)
    start = (x0.detach() - gaussian.mu).norm()
    for i, t in enumerate(truncated_schedule(200, 0.3, 0.05)):
        opt.zero_grad()
        dposer_loss(gaussian, sde, x0, float(t), generator=i).backward()
        opt.step()
    assert (x0.detach() - gaussian.mu).norm() < 0.5 * start


def test_closed_form_step_matches_autograd(sde, gaussian) -> None:
    """The tasks' step (dposer_grad, no autograd) is the gradient of dposer_loss / (2 w_t) (Eq. 10)."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64)
    tv = torch.full((5,), 0.15, dtype=torch.float64)
    dposer_loss(gaussian, sde, x0, tv, noise=z, weight=1.0, reduction="none").sum().backward()
    a, s = sde.alpha(0.15).item(), sde.sigma(0.15).item()
    step = dposer_grad(gaussian, x0.detach(), tv, a, s, z)
    assert torch.allclose(x0.grad, 2 * step, atol=1e-10)
    assert torch.equal(step, x0.detach() - dposer_x0_hat(gaussian, x0.detach(), tv, a, s, z))
    # one shared noise row broadcasts over the batch
    assert dposer_grad(gaussian, x0.detach(), tv, a, s, z[:1]).shape == (5, 3)


def test_schedule_coefs(sde) -> None:
    ts, al, sg, w = schedule_coefs(sde, 4, 0.2, 0.05)
    t = truncated_schedule(4, 0.2, 0.05).double()
    assert ts == t.tolist() and al == sde.alpha(t).tolist() and sg == sde.sigma(t).tolist()
    assert w == dposer_weight(sde, t).tolist() and all(isinstance(v, float) for v in al)
