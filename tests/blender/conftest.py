"""Fixtures for the Blender tests (run with a bpy wheel's Python, e.g. ``.venv-bpy-5.0/bin/python -m pytest
tests/blender``).

* Blender's user folders go to a per-session temp dir (``BLENDER_USER_RESOURCES`` is set before ``bpy``
  is imported), so installing the extension never touches the real user profile.
* Every test starts from factory settings with an empty scene.
* ``backend_fk`` computes reference joints with the backend's torch FK
  (``backend.engine.kinematics.forward_kinematics``) in a subprocess running ``$DPOSER_PYTHON``
  (default ``.venv/bin/python``), since the bpy venvs have no torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

_USER_DIR = tempfile.mkdtemp(prefix="dposer_bpy_user_")
os.environ["BLENDER_USER_RESOURCES"] = _USER_DIR

import bpy  # noqa: E402  (after BLENDER_USER_RESOURCES)

from dposer_blender.dposer_core.constants import shipped_weights  # noqa: E402
from operator_helpers import backend_python  # noqa: E402

_FK_SCRIPT = r"""
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[3])
from backend.engine.kinematics import forward_kinematics
d = np.load(sys.argv[1])
body = torch.tensor(d["body"], dtype=torch.float64)
root = torch.tensor(d["root"], dtype=torch.float64)
trans = torch.tensor(d["trans"], dtype=torch.float64)
joints, _ = forward_kinematics(body, root, trans, num_joints=24)
np.save(sys.argv[2], joints.numpy())
"""


@pytest.fixture(scope="session")
def user_dir() -> str:
    """Blender's user resource folder for this session (a temp dir)."""
    return _USER_DIR


@pytest.fixture(autouse=True)
def factory_scene() -> None:
    """Factory settings, empty scene, frame 1 (per test)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.frame_set(1)


@pytest.fixture(scope="session")
def backend_fk(tmp_path_factory: pytest.TempPathFactory) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """``fk(body (N,21,3), root (N,3), trans (N,3)) -> joints (N,24,3)`` in the SMPL frame, by the backend's
    torch FK in a subprocess (the reference the Blender side is tested against)."""
    py = backend_python()
    if not Path(py).exists():
        pytest.fail(f"backend Python {py} not found; set DPOSER_PYTHON to a Python with torch")
    d = tmp_path_factory.mktemp("fk")

    def fk(body: np.ndarray, root: np.ndarray, trans: np.ndarray) -> np.ndarray:
        inp, out = d / "in.npz", d / "out.npy"
        np.savez(inp, body=np.asarray(body, np.float64), root=np.asarray(root, np.float64),
                 trans=np.asarray(trans, np.float64))
        proc = subprocess.run([py, "-c", _FK_SCRIPT, str(inp), str(out), str(REPO)], capture_output=True,
                              text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
        if proc.returncode != 0:
            pytest.fail(f"backend FK subprocess failed: {proc.stderr[-2000:]}")
        return np.load(out)

    return fk


@pytest.fixture(scope="session")
def random_poses() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """6 random but large poses: body (6,21,3), root (6,3), trans (6,3); pose 0 is the rest pose."""
    rng = np.random.default_rng(1234)
    body = rng.normal(0.0, 0.6, (6, 21, 3))
    root = rng.normal(0.0, 1.0, (6, 3))
    trans = rng.normal(0.0, 0.4, (6, 3))
    body[0], root[0], trans[0] = 0.0, 0.0, 0.0
    return body, root, trans


@pytest.fixture(scope="session")
def expected_joints(backend_fk, random_poses) -> np.ndarray:
    """Backend FK joints (6,24,3) of ``random_poses`` (one subprocess per session)."""
    return backend_fk(*random_poses)


# --------------------------------------------------------------------------- DPoser operators (real backend)

_TINY_SCRIPT = r"""
import sys
from pathlib import Path
sys.path[:0] = [sys.argv[2], sys.argv[3]]
from tiny_checkpoint import make_tiny_checkpoint
make_tiny_checkpoint(Path(sys.argv[1]))
"""


@pytest.fixture(scope="session")
def dposer_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shipped checkpoint when it exists, else a tiny random one made by the backend Python."""
    shipped = shipped_weights(REPO)
    if shipped.is_file():
        return str(shipped)
    py = backend_python()
    if not Path(py).exists():
        pytest.fail(f"backend Python {py} not found; set DPOSER_PYTHON to a Python with torch")
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    proc = subprocess.run([py, "-c", _TINY_SCRIPT, str(path), str(REPO / "tests/backend/evaluation"),
                           str(REPO)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    if proc.returncode != 0:
        pytest.fail(f"making the tiny checkpoint failed: {proc.stderr[-2000:]}")
    return str(path)


@pytest.fixture(scope="session")
def dposer_session_client(dposer_weights: str):
    """Settings for the DPoser operators (env: weights, CPU, backend Python) and a holder for the ONE
    backend client of the session (created by the first ``dposer_addon``; closed at the end)."""
    os.environ["DPOSER_WEIGHTS"] = dposer_weights
    os.environ["DPOSER_DEVICE"] = "cpu"
    os.environ.setdefault("DPOSER_PYTHON", backend_python())
    holder: dict = {"client": None}
    yield holder
    if holder["client"] is not None:
        holder["client"].close()


@pytest.fixture(scope="module")
def dposer_addon(dposer_session_client: dict):
    """The checkout's ``dposer_blender`` registered for one test module, with the session's backend client
    attached (started once). Detached again before ``unregister()`` so the server outlives the module."""
    import dposer_blender
    from dposer_blender import runtime

    dposer_blender.register()
    if dposer_session_client["client"] is None:
        c = runtime.client()
        c.start(timeout=300)
        dposer_session_client["client"] = c
    else:
        runtime.set_client(dposer_session_client["client"])
    yield runtime
    runtime.set_client(None)
    dposer_blender.unregister()
