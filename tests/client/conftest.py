"""Fixtures for the client tests (no bpy; helpers live in ``client_helpers.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

import dposer_blender.client
from client_helpers import REPO, SHIPPED_WEIGHTS, TINY_CKPT_CODE, stub_argv


@pytest.fixture(scope="session")
def client_pkg() -> ModuleType:
    assert "bpy" not in sys.modules
    return dposer_blender.client


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$DPOSER_TEST_WEIGHTS``, else the shipped weights when present, else a tiny random checkpoint
    (made in a subprocess)."""
    override = os.environ.get("DPOSER_TEST_WEIGHTS")
    if override:
        return Path(override)
    if SHIPPED_WEIGHTS.is_file():
        return SHIPPED_WEIGHTS
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    subprocess.run([sys.executable, "-c", TINY_CKPT_CODE, str(path)], cwd=REPO, check=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def client(client_pkg: ModuleType, weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A client on the real tasks, shared by a module."""
    c = client_pkg.BackendClient(python=sys.executable, weights=str(weights), device="cpu",
                                 log_path=str(tmp_path_factory.mktemp("clog") / "server.log"))
    yield c
    c.close()


@pytest.fixture
def stub_client_factory(client_pkg: ModuleType, weights: Path, tmp_path: Path) -> Iterator[object]:
    """Clients whose server runs the stub tasks (``STUB_STEP_S`` seconds per step)."""
    made = []

    def make(step_s: float = 0.01, extra_args: tuple[str, ...] = (), **kw: object) -> object:
        c = client_pkg.BackendClient(python=sys.executable, weights=str(weights), device="cpu",
                                     log_path=str(tmp_path / f"s{len(made)}.log"),
                                     server_args=extra_args, env={"STUB_STEP_S": str(step_s)}, **kw)
        c.server_argv = stub_argv(c.server_argv)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
