"""Fixtures for the engine tests (helpers live in engine_helpers.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.engine.sde import SubVPSDE
from engine_helpers import GaussianEps, synthetic_smpl_arrays, write_chumpy_style_pkl


@pytest.fixture(autouse=True)
def _one_thread():
    """The engine tests use tiny tensors; intra-op threads only add contention on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def sde() -> SubVPSDE:
    return SubVPSDE()


@pytest.fixture
def gaussian(sde: SubVPSDE) -> GaussianEps:
    mu = torch.tensor([0.5, -1.0, 0.25])
    L = torch.tensor([[0.6, 0.0, 0.0], [0.3, 0.4, 0.0], [-0.2, 0.1, 0.5]])
    return GaussianEps(sde, mu, L @ L.T)


@pytest.fixture(scope="session")
def smpl_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"npz", "pkl" (plain numpy pickle), "chumpy_pkl"} paths of the synthetic model."""
    d = tmp_path_factory.mktemp("smpl")
    arrays = synthetic_smpl_arrays()
    np.savez(d / "model.npz", **arrays)
    with open(d / "model_plain.pkl", "wb") as fh:
        pickle.dump(arrays, fh, protocol=2)
    write_chumpy_style_pkl(d / "model_chumpy.pkl", arrays)
    return {"npz": d / "model.npz", "pkl": d / "model_plain.pkl", "chumpy_pkl": d / "model_chumpy.pkl"}
