"""Checkpoint round trip and error cases; PosePrior."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.engine.checkpoint import (Checkpoint, CheckpointError, load_checkpoint, make_provenance,
                                       save_checkpoint)
from backend.engine.network import NetworkConfig, ScoreMLP
from backend.engine.prior import PosePrior
from backend.engine.sde import SubVPSDE
from dposer_core.skeleton import smpl_skeleton

CFG = NetworkConfig(hidden=64, time_embed_dim=32, groups=8)


def _ckpt(seed: int = 0) -> Checkpoint:
    torch.manual_seed(seed)
    net = ScoreMLP(CFG)
    g = torch.Generator().manual_seed(seed)
    return Checkpoint(config=CFG, state_dict=net.state_dict(), mean=torch.randn(63, generator=g) * 0.1,
                      std=torch.rand(63, generator=g) + 0.05,
                      provenance=make_provenance("unit-test poses", 12, note="tiny"),
                      sde=SubVPSDE(0.1, 20.0).to_dict())


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Checkpoint]:
    c = _ckpt()
    return save_checkpoint(tmp_path / "model.pt", c), c


def test_round_trip(saved) -> None:
    path, c = saved
    d = load_checkpoint(path)
    assert d.config == CFG and d.sde == c.sde and d.skeleton == smpl_skeleton().to_dict()
    assert torch.equal(d.mean, c.mean) and torch.equal(d.std, c.std)
    assert d.state_dict.keys() == c.state_dict.keys()
    assert all(torch.equal(d.state_dict[k], c.state_dict[k]) for k in c.state_dict)
    p = d.provenance
    assert p["data"] == "unit-test poses" and p["iterations"] == 12 and p["note"] == "tiny"
    assert p["date"] and "git_commit" in p and p["stored_half"] is False
    # plain torch.load(weights_only=True) reads it
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "dposer-blender-checkpoint" and blob["network_config"] == CFG.to_dict()


def test_numpy_inputs_and_dict_config(tmp_path: Path) -> None:
    c = _ckpt()
    c2 = Checkpoint(config=CFG.to_dict(), state_dict=c.state_dict, mean=c.mean.numpy().astype(np.float64),
                    std=c.std.numpy(), provenance={"iterations": np.int64(3), "data": ("a", "b")})
    d = load_checkpoint(save_checkpoint(tmp_path / "sub" / "x.pt", c2))
    assert d.config == CFG and d.mean.dtype == torch.float32
    assert d.provenance["iterations"] == 3 and d.provenance["data"] == ["a", "b"]


def test_half_storage_loads_as_fp32(tmp_path: Path) -> None:
    c = _ckpt()
    full = save_checkpoint(tmp_path / "full.pt", c)
    half = save_checkpoint(tmp_path / "half.pt", c, half=True)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    raw = torch.load(half, weights_only=True)
    assert raw["state_dict"]["head.weight"].dtype == torch.float16 and raw["mean"].dtype == torch.float32
    d = load_checkpoint(half)
    assert all(v.dtype == torch.float32 for v in d.state_dict.values())
    assert d.provenance["stored_half"] is True
    k = "head.weight"
    assert torch.allclose(d.state_dict[k], c.state_dict[k], atol=1e-3, rtol=1e-3)
    assert torch.equal(d.mean, c.mean)


def _expect(path: Path, *words: str) -> None:
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert path.name in msg, msg
    for w in words:
        assert w in msg, msg
    assert "train" in msg or "update" in msg  # says what to do


def test_errors(tmp_path: Path, saved) -> None:
    path, c = saved
    _expect(tmp_path / "missing.pt", "not found")
    (tmp_path / "dir.pt").mkdir()
    _expect(tmp_path / "dir.pt", "not a file")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint at all")
    _expect(junk, "not a DPoser checkpoint")
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[:1000])
    _expect(trunc, "not a DPoser checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(3)}, other)
    _expect(other, "not a DPoser checkpoint")
    lst = tmp_path / "list.pt"
    torch.save([1, 2], lst)
    _expect(lst, "not a DPoser checkpoint")

    blob = torch.load(path, weights_only=True)
    for key in ("std", "state_dict", "provenance"):
        b = dict(blob)
        del b[key]
        p = tmp_path / f"no_{key}.pt"
        torch.save(b, p)
        _expect(p, "missing key", repr(key))

    b = dict(blob, state_dict={k: v for k, v in blob["state_dict"].items() if k != "head.bias"})
    torch.save(b, tmp_path / "nohead.pt")
    _expect(tmp_path / "nohead.pt", "missing key", "'head.bias'")

    b = dict(blob, state_dict=dict(blob["state_dict"], **{"head.weight": torch.zeros(63, 32)}))
    torch.save(b, tmp_path / "shape.pt")
    _expect(tmp_path / "shape.pt", "shape mismatch", "'head.weight'")

    b = dict(blob, network_config=dict(blob["network_config"], hidden=128, groups=8))
    torch.save(b, tmp_path / "cfg.pt")
    _expect(tmp_path / "cfg.pt", "shape mismatch")

    b = dict(blob, mean=torch.zeros(60))
    torch.save(b, tmp_path / "mean.pt")
    _expect(tmp_path / "mean.pt", "shape mismatch", "'mean'")

    b = dict(blob, std=torch.zeros(63))
    torch.save(b, tmp_path / "std0.pt")
    _expect(tmp_path / "std0.pt", "non-positive")

    b = dict(blob, network_config=dict(blob["network_config"], bogus=1))
    torch.save(b, tmp_path / "bogus.pt")
    _expect(tmp_path / "bogus.pt", "bogus")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "evil.pt"
    torch.save({"format": "dposer-blender-checkpoint", "x": Evil()}, p)
    _expect(p, "not a DPoser checkpoint")
    p2 = tmp_path / "evil.pkl"
    p2.write_bytes(pickle.dumps(Evil()))
    _expect(p2, "not a DPoser checkpoint")


def test_pose_prior(saved) -> None:
    path, c = saved
    prior = PosePrior.load(path)
    assert not prior.net.training and prior.device == torch.device("cpu")
    assert all(not p.requires_grad for p in prior.net.parameters())
    assert prior.dim == 63 and prior.skeleton.num_joints == 24 and "iterations=12" in repr(prior)
    assert isinstance(prior.sde, SubVPSDE)
    pose = torch.randn(4, 63)
    z = prior.normalize(pose)
    assert torch.allclose(z, (pose - c.mean) / c.std)
    assert torch.allclose(prior.denormalize(z), pose, atol=1e-6)
    assert torch.allclose(prior.normalize(pose.numpy()), z)
    assert prior.normalize(torch.randn(2, 3, 63)).shape == (2, 3, 63)
    e1 = prior.eps_model(z, 0.3)
    e2 = prior.eps_model(z, torch.full((4,), 0.3))
    assert e1.shape == (4, 63) and torch.allclose(e1, e2) and torch.equal(e1, prior.eps_model(z, 0.3))
    assert prior.eps_model(z[0], 0.3).shape == (63,)
    ref = c.build_network()
    assert torch.allclose(ref(z, torch.full((4,), 0.3)), e1)
    zz = z.clone().requires_grad_(True)
    prior.eps_model(zz, 0.5).sum().backward()
    assert zz.grad is not None and torch.isfinite(zz.grad).all()
    p2 = PosePrior.from_checkpoint(load_checkpoint(path), device="cpu")
    assert torch.allclose(p2.eps_model(z, 0.3), e1)


def test_foreign_files_get_our_advice_not_torchs(tmp_path: Path) -> None:
    """Issue 12, point 9: torch's "Re-running torch.load with weights_only set to False will likely
    succeed" is unsafe advice and never repeated; the flag is --weights; nothing of the file is quoted."""
    import fractions

    p = tmp_path / "pickle.pt"
    torch.save({"x": fractions.Fraction(1, 3)}, p)
    txt = tmp_path / "passwd.pt"
    txt.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for path in (p, txt):
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        msg = str(e.value)
        assert "weights_only" not in msg and "Re-running" not in msg and "--checkpoint" not in msg
        assert "--weights" in msg and "root:" not in msg and len(msg.splitlines()) == 1


def test_fifo_and_devices_do_not_block(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "w.pt"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(CheckpointError, match="not a file"):
            load_checkpoint(path)  # a blocking open/read would hang here
