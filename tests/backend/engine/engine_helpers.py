"""Helpers shared by the engine tests (imported by conftest.py and the tests): an analytic
Gaussian eps-model and a synthetic SMPL model file. (A uniquely named module, not ``conftest``,
so that imports cannot pick up another directory's conftest.)"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch

from backend.engine.sde import SubVPSDE
from dposer_core.skeleton import smpl_skeleton


class GaussianEps:
    """Exact eps(x, t) for data ~ N(mu, Sigma) under the sub-VP SDE:
    x_t ~ N(alpha mu, C_t), C_t = alpha^2 Sigma + sigma^2 I, score = -C_t^{-1}(x - alpha mu),
    eps = -sigma * score. Records every t it is called with (must be (B,))."""

    def __init__(self, sde: SubVPSDE, mu: torch.Tensor, cov: torch.Tensor) -> None:
        self.sde, self.mu, self.cov = sde, mu.double(), cov.double()
        self.lam, self.U = torch.linalg.eigh(self.cov)  # C_t^{-1} = U diag(1/(a^2 lam + s^2)) U^T
        self.calls = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert isinstance(t, torch.Tensor) and t.shape == (x.shape[0],), t
        self.calls += 1
        xd, td = x.double(), t.double()
        a, s = self.sde.alpha(td)[:, None], self.sde.sigma(td)[:, None]
        r = (xd - a * self.mu) @ self.U
        eps = s * (r / (a * a * self.lam + s * s)) @ self.U.T
        return eps.to(x.dtype)


# ---- synthetic SMPL model ----------------------------------------------------------------------
TETRA = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64) * 0.02


def synthetic_smpl_arrays() -> dict[str, np.ndarray]:
    """An SMPL-format model whose rest joints are the built-in skeleton's: a small tetrahedron
    (centred on its joint, rigidly skinned to it) per joint; J_regressor averages each tetrahedron,
    which reproduces the joints exactly; zero shape and pose blend shapes."""
    skel = smpl_skeleton()
    J = skel.num_joints
    v = (skel.rest_joints[:, None, :] + TETRA[None]).reshape(-1, 3)  # (4J, 3)
    V = v.shape[0]
    jreg = np.zeros((J, V))
    weights = np.zeros((V, J))
    faces = []
    for j in range(J):
        jreg[j, 4 * j: 4 * j + 4] = 0.25
        weights[4 * j: 4 * j + 4, j] = 1.0
        b = 4 * j
        faces += [[b, b + 1, b + 2], [b, b + 3, b + 1], [b, b + 2, b + 3], [b + 1, b + 3, b + 2]]
    kin = np.stack([np.array(skel.parents, dtype=np.int64), np.arange(J)])
    kin[0, 0] = 4294967295
    return {"v_template": v, "shapedirs": np.zeros((V, 3, 10)), "posedirs": np.zeros((V, 3, 9 * (J - 1))),
            "J_regressor": jreg, "weights": weights, "kintree_table": kin, "f": np.asarray(faces, dtype=np.uint32)}


def write_chumpy_style_pkl(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Pickles like the original SMPL files: protocol 2, ``chumpy.ch.Ch`` objects holding the dense
    arrays in ``.x`` and a ``scipy.sparse`` csc J_regressor; a fake ``chumpy`` module is registered
    only while pickling, so reading must work without chumpy."""
    import scipy.sparse

    ch_mod = types.ModuleType("chumpy.ch")

    class Ch:  # noqa: D401 - stand-in for chumpy.ch.Ch
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch_mod.Ch = Ch
    pkg = types.ModuleType("chumpy")
    pkg.ch = ch_mod
    old = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, ch_mod
    try:
        def ch(a: np.ndarray) -> Ch:
            o = Ch()
            o.__dict__.update({"x": a, "_dirty_vars": set(), "_itr": None})
            return o

        d = {k: ch(arrays[k]) for k in ("v_template", "shapedirs", "posedirs")}
        d["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        d["weights"] = ch(arrays["weights"])
        d["kintree_table"] = arrays["kintree_table"]
        d["f"] = arrays["f"]
        d["J"] = ch(arrays["J_regressor"] @ arrays["v_template"])
        d["bs_style"] = "lbs"
        d["bs_type"] = "lrotmin"
        with open(path, "wb") as fh:
            pickle.dump(d, fh, protocol=2)
    finally:
        for k, m in old.items():
            if m is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = m
