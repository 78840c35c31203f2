"""Helpers for the client tests (uniquely named: `conftest` is not importable by name across test dirs).

The client is imported as ``dposer_blender.client``: the extension's ``__init__`` imports bpy only inside
``register()``, so no bpy is needed."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / "dposer_blender" / "client"
SHIPPED_WEIGHTS = REPO / "weights" / "dposer_cmu_bandai.pt"
STUB_SERVER = REPO / "tests" / "backend" / "server" / "stub_server.py"
NO_CACHE = shutil.ignore_patterns("__pycache__", "*.pyc")


def stub_argv(argv):  # noqa: ANN001, ANN201
    """Wrap a client's ``server_argv``: start ``stub_server.py`` (the stub tasks) in place of ``-m backend.server``."""
    return lambda python: [python, "-B", str(STUB_SERVER), *argv(python)[4:]]


def packaged_extension(folder: Path, full_backend: bool = False) -> Path:
    """The zip's layout in ``folder``: the extension's ``__init__.py``, ``client/``, ``dposer_core/`` (a copy)
    and ``backend/`` (only its ``__init__.py`` unless ``full_backend``). Import it as ``<folder.name>``."""
    folder.mkdir(parents=True)
    shutil.copy(REPO / "dposer_blender" / "__init__.py", folder / "__init__.py")
    shutil.copytree(CLIENT_DIR, folder / "client", ignore=NO_CACHE)
    shutil.copytree(REPO / "dposer_core", folder / "dposer_core", ignore=NO_CACHE)
    if full_backend:
        shutil.copytree(REPO / "backend", folder / "backend", ignore=NO_CACHE)
    else:
        (folder / "backend").mkdir()
        shutil.copy(REPO / "backend" / "__init__.py", folder / "backend" / "__init__.py")
    return folder


TINY_CKPT_CODE = """
import sys, torch
from backend.engine.checkpoint import Checkpoint, make_provenance, save_checkpoint
from backend.engine.network import NetworkConfig, ScoreMLP
torch.manual_seed(0)
cfg = NetworkConfig(dim=63, hidden=64, n_blocks=1, time_embed_dim=32, dropout=0.0, groups=8)
save_checkpoint(sys.argv[1], Checkpoint(config=cfg, state_dict=ScoreMLP(cfg).state_dict(), mean=torch.zeros(63),
                std=torch.full((63,), 0.3), provenance=make_provenance("tiny random test network", 0)))
"""
