"""PosePrior's cached eps model (``fast_eps``): the same network code as ``ScoreMLP.forward``."""

from __future__ import annotations

import pytest
import torch

from backend.engine.network import NetworkConfig, ScoreMLP
from backend.engine.prior import PosePrior, chunk_listener, set_chunk_listener
from backend.engine.sde import SubVPSDE


@pytest.fixture
def prior() -> PosePrior:
    torch.manual_seed(0)
    net = ScoreMLP(NetworkConfig(hidden=64, time_embed_dim=32, groups=8))
    return PosePrior(net, SubVPSDE(), torch.zeros(63), torch.ones(63))


def test_fast_eps_equals_forward(prior: PosePrior) -> None:
    z = torch.randn(50, 63)
    with torch.no_grad():
        for t in (0.37, 0.9):
            fast = prior.fast_eps(z, t)
            assert torch.equal(fast, prior.net(z, t))  # one time per batch: bit for bit
            assert torch.equal(prior.fast_eps(z, torch.full((50,), t)), fast)
            # per-row times (B,) take the (B,E) time path: the same up to float rounding
            assert torch.allclose(prior.eps_model(z, torch.full((50,), t)), fast, atol=1e-5)
    assert prior.fast_eps is prior.fast_eps and prior.fast_eps.calls == 4
    assert set(prior.fast_eps.cache) == {0.37, 0.9, float(torch.tensor(0.37)), float(torch.tensor(0.9))}


def test_fast_eps_follows_the_weights(prior: PosePrior) -> None:
    """The x path reads the network's layers at call time (no copied weights)."""
    z = torch.randn(4, 63)
    before = prior.fast_eps(z, 0.5)
    with torch.no_grad():
        prior.net.head.bias.add_(1.0)
    assert torch.allclose(prior.fast_eps(z, 0.5), before + 1.0, atol=1e-5)


def test_chunks_are_bit_identical_and_call_the_listener(prior: PosePrior, monkeypatch: pytest.MonkeyPatch) -> None:
    z = torch.randn(100, 63)
    whole = prior.fast_eps(z, 0.2)
    monkeypatch.setattr(prior.fast_eps, "chunk_rows", lambda: 16)
    seen: list[tuple[int, int]] = []
    set_chunk_listener(lambda i, n: seen.append((i, n)))
    try:
        assert torch.equal(prior.fast_eps(z, 0.2), whole)
        assert seen == [(i, 7) for i in range(7)]

        def cancel(i: int, n: int) -> None:
            if i == 2:
                raise KeyboardInterrupt

        set_chunk_listener(cancel)
        with pytest.raises(KeyboardInterrupt):
            prior.fast_eps(z, 0.2)
    finally:
        set_chunk_listener(None)
    assert chunk_listener() is None
    log: list[int] = []
    prior.fast_eps.call_log = log
    prior.fast_eps(z[:5], 0.2)
    assert log == [5]
