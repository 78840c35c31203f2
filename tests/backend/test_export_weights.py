"""export_weights: fp16 export and the std of dims that were constant in training."""

from __future__ import annotations

from pathlib import Path

import torch

from backend.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from backend.engine.network import NetworkConfig, ScoreMLP
from backend.export_weights import main


def test_export_widens_constant_dims_only(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = NetworkConfig(hidden=32, n_blocks=1, time_embed_dim=16, groups=8, dropout=0.0)
    std = torch.full((63,), 0.2)
    std[27:33] = 1e-3  # the toes (body joints 9, 10): constant in training
    src = save_checkpoint(tmp_path / "last.pt", Checkpoint(config=cfg, state_dict=ScoreMLP(cfg).state_dict(),
                                                           mean=torch.zeros(63), std=std, provenance={}))
    assert main([str(src), str(tmp_path / "out.pt")]) == 0
    ck = load_checkpoint(tmp_path / "out.pt")
    assert torch.allclose(ck.std[27:33], torch.full((6,), 0.05))
    assert torch.allclose(ck.std[:27], std[:27]) and torch.allclose(ck.std[33:], std[33:])
    assert ck.provenance["constant_dims_std"]["dims"] == list(range(27, 33))
    assert main([str(src), str(tmp_path / "keep.pt"), "--constant-dim-std", "0"]) == 0
    assert torch.allclose(load_checkpoint(tmp_path / "keep.pt").std, std)
