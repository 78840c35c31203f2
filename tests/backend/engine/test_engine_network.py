"""Tests for backend.engine.network (ScoreMLP)."""

from __future__ import annotations

import pytest
import torch

from backend.engine.network import (NetworkConfig, ScoreMLP, count_parameters, expected_parameter_count,
                                    timestep_embedding)

SMALL = NetworkConfig(hidden=64, time_embed_dim=32, groups=8)


def test_default_parameter_count() -> None:
    with torch.device("meta"):
        net = ScoreMLP()
    assert count_parameters(net) == 7_227_967 == expected_parameter_count(NetworkConfig())
    assert 7.1e6 < count_parameters(net) < 7.3e6


@pytest.mark.parametrize("cfg", [SMALL, NetworkConfig(hidden=32, n_blocks=0, time_embed_dim=16, groups=4),
                                 NetworkConfig(dim=9, hidden=48, n_blocks=3, time_embed_dim=8, groups=16)])
def test_parameter_count_formula(cfg: NetworkConfig) -> None:
    assert count_parameters(ScoreMLP(cfg)) == expected_parameter_count(cfg)


def test_architecture_layout() -> None:
    net = ScoreMLP(SMALL)
    assert isinstance(net.time_embed[0], torch.nn.Linear) and net.time_embed[0].in_features == 32
    assert net.stem.dense.in_features == 63 and net.stem.dense_t.in_features == 32
    assert net.stem.norm.num_groups == 8 and net.stem.drop.p == 0.1
    assert len(net.blocks) == 2 and net.head.out_features == 63


def test_forward_shapes_and_time_forms() -> None:
    torch.manual_seed(0)
    net = ScoreMLP(SMALL).eval()
    x = torch.randn(5, 63)
    t = torch.full((5,), 0.3)
    out = net(x, t)
    assert out.shape == (5, 63) and torch.isfinite(out).all()
    # a single time takes the (1,E) time path (broadcast over the rows): equal up to float rounding
    assert torch.allclose(net(x, 0.3), out, atol=1e-6) and torch.equal(net(x, torch.tensor(0.3)), net(x, 0.3))
    assert not torch.allclose(net(x, 0.6), out)
    # per-sample times act per sample
    t2 = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    o2 = net(x, t2)
    assert torch.allclose(o2[2], out[2], atol=1e-6)
    with pytest.raises(ValueError):
        net(torch.randn(5, 62), t)


def test_dropout_only_in_train_mode() -> None:
    net = ScoreMLP(SMALL)
    x, t = torch.randn(8, 63), torch.rand(8)
    net.eval()
    assert torch.equal(net(x, t), net(x, t))
    net.train()
    assert not torch.equal(net(x, t), net(x, t))


def test_timestep_embedding() -> None:
    e = timestep_embedding(torch.tensor([0.0, 999.0]), 512)
    assert e.shape == (2, 512)
    assert torch.allclose(e[0, :256], torch.zeros(256)) and torch.allclose(e[0, 256:], torch.ones(256))
    assert torch.allclose(e[1, 0], torch.sin(torch.tensor(999.0)))


def test_config_dict_roundtrip_and_validation() -> None:
    assert NetworkConfig.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(ValueError, match="unknown"):
        NetworkConfig.from_dict({**SMALL.to_dict(), "width": 3})
    with pytest.raises(ValueError):
        NetworkConfig(hidden=100, groups=32)
    with pytest.raises(ValueError):
        NetworkConfig(time_embed_dim=7)


def test_gradients_flow_to_inputs_and_params() -> None:
    net = ScoreMLP(SMALL)
    x = torch.randn(4, 63, requires_grad=True)
    net(x, torch.rand(4)).square().mean().backward()
    assert torch.isfinite(x.grad).all() and all(p.grad is not None for p in net.parameters())


def test_forward_is_time_terms_then_x_path() -> None:
    """forward = forward_with_time_terms(x, time_terms(t)): the pieces the cached eps model reuses."""
    torch.manual_seed(1)
    net = ScoreMLP(SMALL).eval()
    x, t = torch.randn(6, 63), torch.rand(6)
    terms = net.time_terms(t)
    assert len(terms) == 1 + 2 * SMALL.n_blocks and all(c.shape == (6, 64) for c in terms)
    assert torch.equal(net.forward_with_time_terms(x, terms), net(x, t))
    one = net.time_terms(torch.tensor([0.4]))
    assert all(c.shape == (1, 64) for c in one)
    assert torch.equal(net.forward_with_time_terms(x, one), net(x, 0.4))
