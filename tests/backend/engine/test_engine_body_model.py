"""Body model: built-in skeleton vs the smplx SMPL model on a synthetic SMPL file, and the
numpy-only SMPL model-file reader (.npz, plain .pkl, chumpy-style .pkl)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.engine.body_model import BodyOutput, SkeletonBodyModel, load_body_model
from backend.engine.kinematics import forward_kinematics
from dposer_core.smpl_model_file import (SMPLModelFileError, parents, read_smpl_model_file, rest_joints,
                                     write_clean_npz)

from engine_helpers import TETRA, synthetic_smpl_arrays

REPO = Path(__file__).resolve().parents[3]


def _poses(n: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 63, generator=g, dtype=torch.float64).to(dtype) * 0.7,
            torch.randn(n, 3, generator=g, dtype=torch.float64).to(dtype),
            torch.randn(n, 3, generator=g, dtype=torch.float64).to(dtype))


def test_builtin_model() -> None:
    bm = load_body_model(None)
    assert isinstance(bm, SkeletonBodyModel) and not bm.has_mesh
    pose, ro, tr = _poses(5, torch.float32)
    out = bm(pose, ro, tr)
    assert isinstance(out, BodyOutput) and out.vertices is None and out.faces is None
    assert torch.allclose(out.joints, forward_kinematics(pose, ro, tr)[0])
    assert bm(pose, num_joints=24).joints.shape == (5, 24, 3)
    assert bm(pose, betas=torch.zeros(10)).joints.shape == (5, 22, 3)
    with pytest.raises(ValueError, match="shape"):
        bm(pose, betas=torch.ones(10))


@pytest.mark.parametrize("kind", ["npz", "pkl", "chumpy_pkl"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-6)])  # smplx adds 1e-8 to angles
def test_fk_matches_smplx(smpl_files: dict, kind: str, dtype: torch.dtype, tol: float) -> None:
    bm = load_body_model(smpl_files[kind], dtype=dtype)
    assert bm.has_mesh
    pose, ro, tr = _poses(64, dtype, seed=1)
    out = bm(pose, ro, tr, num_joints=24)
    fk, rots = forward_kinematics(pose, ro, tr, num_joints=24)
    assert out.joints.shape == (64, 24, 3) and out.joints.dtype == dtype
    assert (out.joints - fk).abs().max() < tol
    # rigid skinning: every vertex of joint j's tetrahedron is J_j + R_j * offset
    V = out.vertices.reshape(64, 24, 4, 3)
    expect = fk[:, :, None, :] + torch.einsum("bjxy,ky->bjkx", rots, torch.as_tensor(TETRA, dtype=dtype))
    assert (V - expect).abs().max() < 10 * tol
    assert out.faces.shape == (96, 3) and out.faces.dtype == torch.int64
    # default 22 joints, unbatched and (...,21,3) input
    one = bm(pose[0].reshape(21, 3))
    assert one.joints.shape == (22, 3) and one.vertices.shape == (96, 3)
    assert (one.joints - forward_kinematics(pose[0])[0]).abs().max() < tol
    nobatch = bm(pose[:1], ro[:1], tr[:1]).joints
    assert (nobatch[0] - fk[0, :22]).abs().max() < tol


def test_smpl_model_skeleton_and_betas(smpl_files: dict) -> None:
    bm = load_body_model(smpl_files["npz"], num_betas=4)
    assert bm.skeleton.parents[0] == -1 and bm.skeleton.num_joints == 24
    from dposer_core.skeleton import smpl_skeleton
    assert np.allclose(bm.skeleton.rest_joints, smpl_skeleton().rest_joints)
    pose = torch.zeros(2, 5, 63)
    out = bm(pose, betas=torch.zeros(10))  # zero shapedirs: betas have no effect; extra betas dropped
    assert out.joints.shape == (2, 5, 22, 3) and out.vertices.shape == (2, 5, 96, 3)


def test_reader_variants_agree(smpl_files: dict) -> None:
    ref = synthetic_smpl_arrays()
    for kind in ("npz", "pkl", "chumpy_pkl"):
        d = read_smpl_model_file(smpl_files[kind])
        for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"):
            np.testing.assert_allclose(d[k], ref[k], err_msg=f"{kind}:{k}")
        assert d["kintree_table"].dtype == np.int64 and d["f"].dtype == np.int64
        assert parents(d)[0] == -1 and list(parents(d)[1:4]) == [0, 0, 0]
        np.testing.assert_allclose(rest_joints(d), ref["J_regressor"] @ ref["v_template"], atol=1e-12)
    chumpy = read_smpl_model_file(smpl_files["chumpy_pkl"])
    assert "J" in chumpy and chumpy["J"].shape == (24, 3)  # extra numeric entries kept
    assert "bs_style" not in chumpy  # strings dropped
    assert "chumpy" not in sys.modules


def test_write_clean_npz(smpl_files: dict, tmp_path: Path) -> None:
    out = write_clean_npz(smpl_files["chumpy_pkl"], tmp_path / "clean.npz")
    d = read_smpl_model_file(out)
    with np.load(out, allow_pickle=False) as z:  # no pickled objects inside
        assert set(z.files) >= {"v_template", "J_regressor", "f"}
    np.testing.assert_allclose(d["J_regressor"], synthetic_smpl_arrays()["J_regressor"])


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(SMPLModelFileError, match="not found"):
        read_smpl_model_file(tmp_path / "nope.pkl")
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"\x00\x01 definitely not a pickle")
    with pytest.raises(SMPLModelFileError, match="cannot be read"):
        read_smpl_model_file(garbage)
    arrays = synthetic_smpl_arrays()
    del arrays["weights"]
    np.savez(tmp_path / "noweights.npz", **arrays)
    with pytest.raises(SMPLModelFileError, match="missing key 'weights'"):
        load_body_model(tmp_path / "noweights.npz")
    arrays = synthetic_smpl_arrays()
    arrays["J_regressor"] = arrays["J_regressor"][:, :-1]
    np.savez(tmp_path / "badshape.npz", **arrays)
    with pytest.raises(SMPLModelFileError, match="J_regressor"):
        read_smpl_model_file(tmp_path / "badshape.npz")
    with open(tmp_path / "list.pkl", "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    with pytest.raises(SMPLModelFileError, match="not an SMPL model"):
        read_smpl_model_file(tmp_path / "list.pkl")


def test_reader_does_not_execute_pickled_callables(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(tmp_path / "pwned")],))

    d = synthetic_smpl_arrays()
    d["evil"] = Evil()
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump(d, fh, protocol=2)
    with pytest.raises(SMPLModelFileError, match="never hold"):  # only exact allowed classes (issue 12)
        read_smpl_model_file(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()


def test_smpl_model_file_is_numpy_only_and_no_bpy_in_backend() -> None:
    code = ("import sys; import dposer_core.smpl_model_file as m; "
            "bad = [k for k in ('torch', 'scipy', 'chumpy', 'bpy') if k in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    for py in (REPO / "backend").rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        assert "import bpy" not in text and "from bpy" not in text, py
