"""Tiny random-weight checkpoint for the task / CLI / eval tests (never the shipped weights)."""

from __future__ import annotations

from pathlib import Path

import torch

from backend.engine.checkpoint import Checkpoint, save_checkpoint
from backend.engine.network import NetworkConfig, ScoreMLP


def make_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A ScoreMLP(hidden=32) with random weights and plausible z-score statistics, saved at ``path``."""
    torch.manual_seed(seed)
    cfg = NetworkConfig(hidden=32, n_blocks=1, time_embed_dim=16, groups=8, dropout=0.0)
    net = ScoreMLP(cfg)
    ck = Checkpoint(config=cfg, state_dict=net.state_dict(), mean=torch.randn(63) * 0.05,
                    std=torch.full((63,), 0.2), provenance={"data": "random test weights", "iterations": 0})
    return save_checkpoint(path, ck)
