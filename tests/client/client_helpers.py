"""Helpers for the client tests (uniquely named: `conftest` is not importable by name across test dirs).

The client package is loaded by path (as its own package) so the extension's ``__init__`` (which
imports bpy) is never run and bpy is never needed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / "dposer_blender" / "client"
SHIPPED_WEIGHTS = REPO / "weights" / "dposer_cmu_bandai.pt"
STUB_TASKS = REPO / "tests" / "backend" / "server" / "stub_tasks.py"

TINY_CKPT_CODE = """
import sys, torch
from backend.engine.checkpoint import Checkpoint, make_provenance, save_checkpoint
from backend.engine.network import NetworkConfig, ScoreMLP
torch.manual_seed(0)
cfg = NetworkConfig(dim=63, hidden=64, n_blocks=1, time_embed_dim=32, dropout=0.0, groups=8)
save_checkpoint(sys.argv[1], Checkpoint(config=cfg, state_dict=ScoreMLP(cfg).state_dict(), mean=torch.zeros(63),
                std=torch.full((63,), 0.3), provenance=make_provenance("tiny random test network", 0)))
"""


def load_client_package(client_dir: Path = CLIENT_DIR, name: str = "dposer_client_under_test") -> ModuleType:
    """Import ``client_dir`` as the package ``name`` (relative imports inside work as usual)."""
    if name in sys.modules:
        return sys.modules[name]
    init = client_dir / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(client_dir)])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


