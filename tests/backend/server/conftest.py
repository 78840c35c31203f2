"""Fixtures for the server tests (helpers live in ``server_helpers.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from server_helpers import SHIPPED_WEIGHTS, RawServer, make_tiny_checkpoint, tasks_available


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def weights(tiny_checkpoint: Path) -> Path:
    """``$DPOSER_TEST_WEIGHTS``, else the shipped weights when the lead has trained them, else the tiny
    checkpoint."""
    override = os.environ.get("DPOSER_TEST_WEIGHTS")
    if override:
        return Path(override)
    return SHIPPED_WEIGHTS if SHIPPED_WEIGHTS.is_file() else tiny_checkpoint


@pytest.fixture
def raw_server_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[RawServer] = []

    def make(*args: str, env: dict[str, str] | None = None, stub: bool = False) -> RawServer:
        s = RawServer(*args, log=tmp_path / f"server{len(servers)}.log", env=env, stub=stub)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture(scope="module")
def real_server(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawServer]:
    """One server with the real tasks and weights, shared by a test module."""
    if not tasks_available():
        pytest.skip("backend.tasks is not importable yet")
    s = RawServer("--weights", str(weights), "--device", "cpu",
                  log=tmp_path_factory.mktemp("log") / "server.log")
    yield s
    s.close()


@pytest.fixture(scope="module")
def stub_server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[RawServer]:
    """A server running the stub tasks (fault injection, controllable step time)."""
    s = RawServer("--weights", str(tiny_checkpoint), "--device", "cpu", stub=True,
                  log=tmp_path_factory.mktemp("log") / "server.log", env={"STUB_STEP_S": "0.01"})
    yield s
    s.close()


